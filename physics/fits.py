"""Quantities derived from a measured power spectrum: ``Δ²(k)`` and power-law fits.

Both take a :class:`physics.spectra.PowerSpectrum` (numpy, Quantity or torch) and return
the same library.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from astropy import units as u

from physics._arrays import Boundary, give_back
from physics.spectra import PowerSpectrum, SpectralCurve

__all__ = ["PowerLawFit", "dimensionless_power", "power_law_slope"]


class PowerLawFit(NamedTuple):
    """``P = amplitude · k^slope`` fitted to a spectrum.

    Attributes:
        slope: dimensionless power-law index ``(...,)`` (one per spectrum).
        amplitude: ``P`` at ``k = 1`` in the spectrum's power unit (``[map]²·kpc²``), ``(...,)``.
        slope_error: standard error of ``slope`` from the weighted residual scatter, ``(...,)``.
    """

    slope: Any
    amplitude: Any
    slope_error: Any


def _plain(x: Any) -> tuple[torch.Tensor, u.UnitBase | None, Boundary]:
    """``x`` as a float64 tensor, its unit (or None) and the boundary to hand results back."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64), None, Boundary("torch", x.device)
    if isinstance(x, u.Quantity):
        return (
            torch.as_tensor(x.value, dtype=torch.float64),
            x.unit,
            Boundary("numpy", torch.device("cpu"), x.unit),
        )
    return torch.as_tensor(x, dtype=torch.float64), None, Boundary("numpy", torch.device("cpu"))


def dimensionless_power(spectrum: PowerSpectrum) -> SpectralCurve:
    """2-D dimensionless power ``Δ²(k) = k² P(k) / (2π)``, so ``σ² = ∫ Δ² d ln k``.

    ``value`` has the shape of ``spectrum.power`` ``(..., n_bins)``, in ``[map]²``
    (dimensionless for a dimensionless field); ``k`` and ``n_modes`` are passed through.

    Raises:
        ValueError: ``k² P`` beyond float64.
    """
    k, ku, boundary = _plain(spectrum.k)
    p, pu, _ = _plain(spectrum.power)
    value = k**2 * p.to(k.device) / (2 * math.pi)
    if bool(torch.isinf(value).any()):
        raise ValueError("dimensionless_power: k² P overflows float64; rescale the spectrum's map or k unit")
    unit = ku**2 * pu if (ku is not None and pu is not None) else None
    return SpectralCurve(k=spectrum.k, value=give_back(value, boundary, unit), n_modes=spectrum.n_modes)


def power_law_slope(spectrum: PowerSpectrum, k_min: Any = None, k_max: Any = None) -> PowerLawFit:
    """Weighted least-squares fit of ``log10 P = log10 A + n log10 k`` over ``[k_min, k_max]``.

    Each bin is weighted by its ``n_modes`` (the inverse variance of ``ln P̂``). Bins
    with zero power are skipped. ``k_min``/``k_max`` are in the units of ``spectrum.k``
    (1/kpc, or Quantities). A batch of spectra ``(..., n_bins)`` gives ``(...,)`` fits.

    Returns:
        PowerLawFit(slope, amplitude at k = 1 in the power's units, slope_error).

    Raises:
        ValueError: ``k_min``/``k_max`` NaN, in a unit that is not the spectrum's, or not
            ``k_min < k_max``; fewer than three usable bins in the range; or an amplitude
            beyond float64.
    """
    k, ku, boundary = _plain(spectrum.k)
    p, pu, _ = _plain(spectrum.power)
    n, _, _ = _plain(spectrum.n_modes)
    p, n = p.to(k.device), n.to(k.device)

    def limit(v: Any, name: str) -> float | None:
        if v is None:
            return None
        if isinstance(v, u.Quantity):
            if ku is None:
                raise ValueError(f"{name} has units but spectrum.k does not")
            try:
                value = float(v.to_value(ku))
            except u.UnitConversionError:
                raise ValueError(f"{name} must be a wavenumber in {ku}, got unit '{v.unit}'") from None
        else:
            value = float(v)
        if math.isnan(value):
            raise ValueError(f"{name} must be a number, got {v!r}")
        return value

    lo, hi = limit(k_min, "k_min"), limit(k_max, "k_max")
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"k_min must be below k_max, got k_min={k_min!r}, k_max={k_max!r}")
    k, p = torch.broadcast_tensors(k, p)
    use = p > 0
    if lo is not None:
        use &= k >= lo
    if hi is not None:
        use &= k <= hi
    if bool((use.sum(dim=-1) < 3).any()):
        raise ValueError(f"power_law_slope needs at least 3 bins with power in [{k_min}, {k_max}]")
    w = torch.where(use, n.expand_as(p), 0.0)
    x = torch.log10(torch.where(use, k, 1.0))
    y = torch.log10(torch.where(use, p, 1.0))
    s, sx, sy = w.sum(-1), (w * x).sum(-1), (w * y).sum(-1)
    sxx, sxy = (w * x * x).sum(-1), (w * x * y).sum(-1)
    det = s * sxx - sx**2
    slope = (s * sxy - sx * sy) / det
    intercept = (sy - slope * sx) / s
    resid = y - intercept[..., None] - slope[..., None] * x
    dof = use.sum(-1) - 2
    sigma2 = (w * resid**2).sum(-1) / dof * (use.sum(-1) / s)  # scatter per unit mean weight
    slope_err = torch.sqrt(sigma2 * s / det * (s / use.sum(-1)))
    amp = 10**intercept
    if not bool(torch.isfinite(amp).all()):
        raise ValueError(
            "the fitted amplitude at k = 1 overflows float64: rescale the spectrum's map or k unit"
        )
    return PowerLawFit(
        slope=give_back(slope, boundary),
        amplitude=give_back(amp, boundary, pu),
        slope_error=give_back(slope_err, boundary),
    )
