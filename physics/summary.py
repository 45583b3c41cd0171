"""A table of the standard statistics of one map, with units."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy import units as u

from physics.distributions import pixel_distribution
from physics.fits import power_law_slope
from physics.fourier import fundamental_frequency, nyquist_frequency
from physics.masses import total_mass
from physics.morphology import asymmetry, clumpiness
from physics.profiles import concentration, radius_enclosing
from physics.spectra import power_spectrum

__all__ = ["summarize"]

_SURFACE_DENSITY = u.Msun / u.kpc**2


def _fmt(q: Any) -> tuple[str, str]:
    if isinstance(q, u.Quantity):
        return f"{q.value:.6g}", q.unit.to_string()
    return f"{float(q):.6g}", ""


def summarize(
    data: np.ndarray, unit: u.UnitBase | None, pixel_size: u.Quantity
) -> list[tuple[str, str, str]]:
    """Rows ``(statistic, value, unit)`` for one map ``(H, W)`` with a pixel side Quantity."""
    field = u.Quantity(data, unit) if unit is not None else data
    height, width = data.shape
    rows: list[tuple[str, str, str]] = [
        ("shape", f"{height} x {width}", "pixel"),
        ("pixel size", *_fmt(pixel_size)),
        ("field of view", *_fmt(pixel_size * width)),
        ("minimum", *_fmt(u.Quantity(data.min(), unit) if unit else data.min())),
        ("maximum", *_fmt(u.Quantity(data.max(), unit) if unit else data.max())),
        ("mean", *_fmt(u.Quantity(data.mean(), unit) if unit else data.mean())),
    ]
    if (data >= 0).all() and (data > 0).any():
        dist = pixel_distribution(data)
        rows.append(("zero-pixel fraction", f"{float(dist.zero_fraction):.4g}", ""))
        positive = data[data > 0]
        rows.append(
            (
                "median of positive pixels (log10)",
                f"{np.log10(np.median(positive)):.4f}",
                f"dex({unit or ''})",
            )
        )
    is_mass = unit is None or unit.is_equivalent(_SURFACE_DENSITY)
    if is_mass and (data >= 0).all() and data.sum() > 0:
        rows.append(("total", *_fmt(total_mass(field, pixel_size))))
        r = radius_enclosing(field, [0.5, 0.9], pixel_size)
        rows.append(("R50 (map centre)", *_fmt(r[0])))
        rows.append(("R90 (map centre)", *_fmt(r[1])))
        rows.append(("concentration 5 log10(R80/R20)", *_fmt(concentration(field, pixel_size))))
        rows.append(("asymmetry A (1.5 R50)", *_fmt(asymmetry(data))))
        rows.append(("clumpiness S (0.2-1.5 R50)", *_fmt(clumpiness(data))))
    if data.std() > 0:
        ps = power_spectrum(field, pixel_size)
        k_f = fundamental_frequency(data.shape, pixel_size)
        k_n = nyquist_frequency(pixel_size)
        rows.append(("k_F = 2pi/L", *_fmt(k_f)))
        rows.append(("k_Nyquist = pi/dx", *_fmt(k_n)))
        try:
            fit = power_law_slope(ps, k_min=2 * k_f, k_max=k_n)
            slope = float(fit.slope)
            if math.isfinite(slope):
                rows.append(("P(k) slope over [2 k_F, k_Nyq]", f"{slope:.4f}", ""))
        except ValueError:
            pass
    return rows
