"""Radial profiles, curves of growth, half-mass radii and centres of maps.

Pixel centres sit at ``(i + 0.5)`` pixels from the map edge and positions are offsets
from the map centre, ``(row, column)`` in kpc (or rad). Radii are measured from a centre
that is the map centre (``"image"``), the centre of mass (``"com"``), the brightest pixel
(``"peak"``) or given explicitly as ``(..., 2)`` offsets.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from astropy import units as u

from physics._arrays import Boundary, as_float_tensor, as_map, check_same_shape, give_back
from physics._finite import map_exponent, require_finite, split_pow2, times_pow2
from physics._kernels import enclosed, pixel_radii, radius_at_fraction
from physics.grid import PixelScale, pixel_offsets, resolve_scale

__all__ = [
    "CENTERS",
    "CurveOfGrowth",
    "RadialProfile",
    "center_offset",
    "concentration",
    "curve_of_growth",
    "find_center",
    "half_mass_radius",
    "radial_profile",
    "radius_enclosing",
]

CENTERS = ("image", "com", "peak")


class RadialProfile(NamedTuple):
    """Azimuthally averaged profile.

    Attributes:
        radius: mean radius of the pixels in each annulus ``(..., n_bins)`` [kpc]; NaN
            for empty annuli.
        value: mean map value in each annulus ``(..., n_bins)`` [map units]; NaN if empty.
        edges: annulus edges ``(..., n_bins + 1)`` [kpc].
        n_pixels: pixels per annulus ``(..., n_bins)``.
    """

    radius: Any
    value: Any
    edges: Any
    n_pixels: Any


class CurveOfGrowth(NamedTuple):
    """Enclosed mass ``M(<R)``: ``radius`` ``(..., n)`` [kpc], ``mass`` ``(..., n)`` [map·kpc²]."""

    radius: Any
    mass: Any


def _non_negative(t: torch.Tensor, name: str) -> None:
    n_neg = int((t < 0).sum())
    if n_neg:
        raise ValueError(f"{name} has {n_neg} negative pixel(s); a mass-like map must be >= 0")


def _positive_total(t: torch.Tensor, name: str) -> None:
    if bool((t.sum(dim=(-2, -1)) <= 0).any()):
        raise ValueError(f"{name} is all zero (no mass): this quantity is undefined")


def _center_px(t: torch.Tensor, center: Any, scale: PixelScale, name: str) -> torch.Tensor:
    """Centre ``(..., 2)`` as (row, col) offsets from the map centre, in pixels."""
    height, width = t.shape[-2:]
    rows, cols = pixel_offsets(height, width, t.device)
    batch = t.shape[:-2]
    if isinstance(center, str):
        if center == "image":
            return torch.zeros(*batch, 2, dtype=torch.float64, device=t.device)
        if center == "com":
            _non_negative(t, name)
            _positive_total(t, name)
            t = times_pow2(t, -map_exponent(t)[..., None, None])  # exact; the sums cannot overflow
            total = t.sum(dim=(-2, -1))
            cy = (t * rows).sum(dim=(-2, -1)) / total
            cx = (t * cols).sum(dim=(-2, -1)) / total
            return torch.stack([cy, cx], dim=-1)
        if center == "peak":
            flat = t.reshape(*batch, -1).argmax(dim=-1)
            return torch.stack([rows.flatten()[flat // width], cols.flatten()[flat % width]], dim=-1)
        raise ValueError(f"unknown center {center!r}; choose one of {CENTERS} or give (row, col) offsets")
    c, _ = as_float_tensor(_length_value(center, scale, "center"), "center", t.device)
    if c.shape[-1:] != (2,):
        raise ValueError(
            f"center must be 'image', 'com', 'peak' or (..., 2) offsets; got shape {tuple(c.shape)}"
        )
    return c / scale.per_map()


def _length_value(value: Any, scale: PixelScale, name: str) -> Any:
    """A length argument as a plain number in the pixel scale's unit (kpc or rad)."""
    if not isinstance(value, u.Quantity):
        return value
    try:
        return value.to_value(scale.unit)
    except u.UnitConversionError:
        raise ValueError(
            f"{name} must be a {scale.unit.physical_type} (e.g. {scale.unit}), got unit '{value.unit}'"
        ) from None


def _aperture_px(t: torch.Tensor, aperture: Any, scale: PixelScale, name: str = "aperture") -> torch.Tensor:
    """Aperture radius ``(...,)`` in pixels: the inscribed radius ``min(H, W)/2`` by default.

    ``aperture`` [kpc, or a Quantity] may be per map; ``name`` is the caller's argument name.
    """
    if aperture is None:
        return torch.full(t.shape[:-2], min(t.shape[-2:]) / 2, dtype=torch.float64, device=t.device)
    a, _ = as_float_tensor(_length_value(aperture, scale, name), name, t.device)
    if bool((a <= 0).any()):
        raise ValueError(f"{name} must be positive, got {aperture!r}")
    try:
        return (a / scale.size).expand(t.shape[:-2]).clone()
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(a.shape)} does not broadcast against the batch shape "
            f"{tuple(t.shape[:-2])}"
        ) from None


def _setup(field: Any, name: str, pixel_size: Any, extent: Any) -> tuple[torch.Tensor, Boundary, PixelScale]:
    t, boundary = as_map(field, name)
    scale = resolve_scale(pixel_size, extent, tuple(t.shape), t.device)
    return t, boundary, scale


def _length_unit(boundary: Boundary, scale: PixelScale) -> u.UnitBase | None:
    return scale.unit if boundary.wants_units(u.kpc if scale.has_units else None) else None


def _mass_unit(boundary: Boundary, scale: PixelScale) -> u.UnitBase | None:
    if _length_unit(boundary, scale) is None:
        return None
    map_unit = boundary.unit if boundary.unit is not None else u.dimensionless_unscaled
    return map_unit * scale.unit**2


def find_center(field: Any, pixel_size: Any = None, *, extent: Any = None, center: Any = "com") -> Any:
    """Centre of ``field`` ``(..., H, W)`` as (row, col) offsets from the map centre ``(..., 2)`` [kpc]."""
    t, boundary, scale = _setup(field, "field", pixel_size, extent)
    c = _center_px(t, center, scale, "field") * scale.per_map()
    return give_back(c, boundary, _length_unit(boundary, scale))


def radial_profile(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    center: Any = "image",
    bins: int | None = None,
    r_max: Any = None,
) -> RadialProfile:
    """Mean of ``field`` in ``bins`` equal-width annuli from 0 to ``r_max`` (pixel-centre assignment).

    Args:
        field: map(s) ``(..., H, W)``, e.g. surface density in Msun/kpc².
        center: ``"image"``, ``"com"``, ``"peak"`` or ``(..., 2)`` (row, col) offsets [kpc].
        bins: positive number of annuli (default ``min(H, W) // 2``, one pixel wide; one
            annulus for maps narrower than 2 pixels).
        r_max: positive outer radius [kpc, or a length Quantity], scalar or ``(...,)``
            (default: inscribed radius ``min(H, W)·Δ/2``).

    Returns:
        RadialProfile: ``radius`` [kpc], ``value`` [map] and ``n_pixels``, ``(..., bins)``;
        ``edges`` ``(..., bins + 1)`` [kpc].

    Raises:
        ValueError: a bad map, pixel scale or centre, ``bins`` not a positive integer, or
            ``r_max`` not a positive finite length (each named).
    """
    t, boundary, scale = _setup(field, "field", pixel_size, extent)
    c = _center_px(t, center, scale, "field")
    r = pixel_radii(t, c)
    if bins is None:
        n_bins = max(1, min(t.shape[-2:]) // 2)
    elif isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    else:
        n_bins = int(bins)
    r_out = _aperture_px(t, r_max, scale, "r_max")  # (...,) pixels
    e = map_exponent(t)[..., None]
    t = times_pow2(t, -e[..., None])  # exact scaling: the annulus sums cannot overflow
    width = (r_out / n_bins)[..., None, None]
    idx = torch.floor(r / width).long().clamp(max=n_bins)  # n_bins = outside
    batch = t.shape[:-2]
    flat_idx = idx.reshape(-1, idx.shape[-2] * idx.shape[-1])
    n_maps = flat_idx.shape[0]
    offset = (torch.arange(n_maps, device=t.device) * (n_bins + 1))[:, None]
    keys = (flat_idx + offset).reshape(-1)

    def per_bin(v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(n_maps * (n_bins + 1), dtype=torch.float64, device=t.device)
        out.index_add_(0, keys, v.reshape(-1))
        return out.reshape(n_maps, n_bins + 1)[:, :n_bins].reshape(*batch, n_bins)

    count = per_bin(torch.ones_like(t))
    safe = torch.where(count > 0, count, torch.nan)
    radius = per_bin(r.expand_as(t)) / safe * scale.per_map()
    value = times_pow2(per_bin(t) / safe, e)
    edges = (
        torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=t.device)
        * (r_out * scale.size)[..., None]
    )
    length = _length_unit(boundary, scale)
    value_unit = (boundary.unit or u.dimensionless_unscaled) if length is not None else None
    return RadialProfile(
        radius=give_back(radius, boundary, length),
        value=give_back(value, boundary, value_unit),
        edges=give_back(edges, boundary, length),
        n_pixels=give_back(count, boundary),
    )


def radius_enclosing(
    field: Any,
    fraction: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    center: Any = "image",
    aperture: Any = None,
) -> Any:
    """Radius enclosing ``fraction`` of the mass within ``aperture``.

    Args:
        field: non-negative mass-like map(s) ``(..., H, W)``.
        fraction: scalar or sequence in (0, 1]; a sequence adds a trailing axis.
        aperture: radius [kpc] of the normalising aperture (default: inscribed radius).

    Returns:
        ``(...,)`` or ``(..., n_fractions)`` radii in kpc.
    """
    t, boundary, scale = _setup(field, "field", pixel_size, extent)
    _non_negative(t, "field")
    _positive_total(t, "field")
    fr, _ = as_float_tensor(fraction, "fraction", t.device)
    if bool(((fr <= 0) | (fr > 1)).any()):
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    c = _center_px(t, center, scale, "field")
    r_ap = _aperture_px(t, aperture, scale)
    radius = radius_at_fraction(t, c, r_ap, fr.reshape(-1)) * scale.per_map()
    if fr.ndim == 0:
        radius = radius[..., 0]
    return give_back(radius, boundary, _length_unit(boundary, scale))


def half_mass_radius(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    center: Any = "image",
    aperture: Any = None,
) -> Any:
    """``R50``: radius enclosing half the mass within the aperture, ``(...,)`` in kpc."""
    return radius_enclosing(field, 0.5, pixel_size, extent=extent, center=center, aperture=aperture)


def concentration(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    center: Any = "image",
    aperture: Any = None,
) -> Any:
    """CAS concentration ``C = 5 log10(R80 / R20)`` (dimensionless, ``(...,)``)."""
    radii = radius_enclosing(field, [0.2, 0.8], pixel_size, extent=extent, center=center, aperture=aperture)
    if isinstance(radii, torch.Tensor):
        return 5 * torch.log10(radii[..., 1] / radii[..., 0])
    r = u.Quantity(radii).value if isinstance(radii, u.Quantity) else radii
    return 5 * np.log10(r[..., 1] / r[..., 0])


def curve_of_growth(
    field: Any, radii: Any, pixel_size: Any = None, *, extent: Any = None, center: Any = "image"
) -> CurveOfGrowth:
    """Enclosed mass ``M(<R)`` of ``field`` ``(..., H, W)`` at ``radii`` ``(n,)`` [kpc].

    Each pixel counts with the exact fraction of its square inside the circle (its
    content taken as uniform over the square; ``physics._kernels.enclosed``), so a
    uniform field of value ``Σ`` gives exactly ``π R² Σ`` for circles inside the map.

    Returns:
        CurveOfGrowth(radius ``(..., n)`` [kpc], mass ``(..., n)`` in ``[map]·kpc²``, Msun for
        a map in Msun/kpc²).

    Raises:
        ValueError: negative or non-finite ``radii``, radii not a scalar or 1-D sequence,
            or a mass beyond float64 (naming ``field``).
    """
    t, boundary, scale = _setup(field, "field", pixel_size, extent)
    c = _center_px(t, center, scale, "field")
    rq, _ = as_float_tensor(_length_value(radii, scale, "radii"), "radii", t.device)
    if rq.ndim == 0:
        rq = rq[None]
    if rq.ndim != 1:
        raise ValueError(f"radii must be a scalar or 1-D sequence, got shape {tuple(rq.shape)}")
    if bool((rq < 0).any()):
        raise ValueError(f"radii must be non-negative, got {radii!r}")
    radius_px = rq / scale.per_map()
    e = map_exponent(t)[..., None]
    mantissa = enclosed(times_pow2(t, -e[..., None]), c, radius_px.expand(*t.shape[:-2], -1))
    m_area, e_area = split_pow2(scale.area[..., None])
    mass = times_pow2(mantissa * m_area, e + e_area)
    require_finite(mass, "the enclosed mass of field", "field or pixel_size (extent)", mantissa=mantissa)
    radius_out = rq.expand(*t.shape[:-2], -1)
    return CurveOfGrowth(
        radius=give_back(radius_out, boundary, _length_unit(boundary, scale)),
        mass=give_back(mass, boundary, _mass_unit(boundary, scale)),
    )


def center_offset(
    pred: Any,
    true: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    center: str = "com",
    normalize: bool = False,
) -> Any:
    """Distance between the centres of ``pred`` and ``true`` ``(...,)`` [kpc].

    With ``normalize=True`` it is in units of the true map's R50 (dimensionless).
    """
    tp, boundary, scale = _setup(pred, "pred", pixel_size, extent)
    tt, _ = as_map(true, "true")
    check_same_shape(tp, tt, "pred", "true")
    cp = _center_px(tp, center, scale, "pred")
    ct = _center_px(tt, center, scale, "true")
    d = torch.linalg.vector_norm(cp - ct, dim=-1) * scale.size
    if normalize:
        r50 = half_mass_radius(tt, scale.size, center=center)
        return give_back(d / r50, boundary)
    return give_back(d, boundary, _length_unit(boundary, scale))
