"""Integrated quantities: total mass, mass-weighted means, thermal and magnetic energy.

Surface densities are in Msun/kpc², temperatures in K and field strengths in G (the
units of the IllustrisTNG maps); T and |B| maps are already line-of-sight mass-weighted,
so their galaxy-wide averages are weighted again by the gas surface density.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from astropy import constants as const
from astropy import units as u

from physics._arrays import as_float_tensor, as_map, check_same_shape, give_back
from physics._finite import map_exponent, require_finite, split_pow2, times_pow2
from physics.grid import PixelScale, resolve_scale

__all__ = [
    "MU_IONISED",
    "magnetic_energy",
    "mass_weighted_bfield",
    "mass_weighted_mean",
    "mass_weighted_temperature",
    "thermal_energy",
    "total_mass",
]

MU_IONISED = 0.59  # mean molecular weight of a fully ionised primordial plasma

_KPC_CM = float(u.kpc.to(u.cm))
_THERMAL_ERG_PER_MSUN_K = float((1.5 * const.k_B * u.Msun / const.m_p).to_value(u.erg / u.K))


def _non_negative(t: torch.Tensor, name: str, what: str) -> None:
    n_neg = int((t < 0).sum())
    if n_neg:
        raise ValueError(
            f"{name} has {n_neg} negative pixel(s) (min {float(t.min()):.3g}); {what} must be >= 0"
        )


def _area(scale: PixelScale) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel area as ``(mantissa, exponent)`` (``A = m · 2^e``), so that no square overflows."""
    m, e = split_pow2(scale.size)
    return m * m, 2 * e


def total_mass(
    surface_density: Any, pixel_size: Any = None, *, extent: Any = None, allow_negative: bool = False
) -> Any:
    """``M = A_pix Σ_pixels Σ`` for maps ``(..., H, W)`` → ``(...,)``.

    Msun for a map in Msun/kpc² with a pixel size in kpc. With Quantities the result
    carries ``[map]·[length]²`` converted to Msun when possible. The sum is taken on the
    map scaled by a power of two, so it is finite whenever the mass is representable.

    Args:
        surface_density: non-negative map(s) ``(..., H, W)``, e.g. Msun/kpc².
        pixel_size, extent: the pixel scale (kpc, or a length Quantity).
        allow_negative: sum signed maps (e.g. a generator's output) instead of raising.

    Raises:
        ValueError: negative pixels (unless ``allow_negative``), or a mass beyond float64.
    """
    t, boundary = as_map(surface_density, "surface_density")
    if not allow_negative:
        _non_negative(t, "surface_density", "a surface density")
    scale = resolve_scale(pixel_size, extent, tuple(t.shape), t.device)
    e = map_exponent(t)
    summed = times_pow2(t, -e[..., None, None]).sum(dim=(-2, -1))
    m_area, e_area = _area(scale)
    mass = times_pow2(summed * m_area, e + e_area)
    require_finite(
        mass, "the total mass of surface_density", "surface_density or pixel_size", mantissa=summed
    )
    if boundary.wants_units(u.kpc if scale.has_units else None):
        unit = (boundary.unit or u.dimensionless_unscaled) * scale.unit**2
        q = give_back(mass, boundary, unit)
        return q.to(u.Msun) if q.unit.is_equivalent(u.Msun) else q
    return give_back(mass, boundary)


def _weighted_mean(values: Any, weights: Any, names: tuple[str, str], what: str | None) -> Any:
    v, boundary = as_map(values, names[0])
    w, _ = as_map(weights, names[1])
    check_same_shape(v, w, *names)
    if what is not None:
        _non_negative(v, names[0], what)
    _non_negative(w, names[1], "a weight")
    # scale both maps by powers of two (exact): the products and sums cannot overflow
    ev = map_exponent(v)
    v = times_pow2(v, -ev[..., None, None])
    w = times_pow2(w, -map_exponent(w)[..., None, None])
    total = w.sum(dim=(-2, -1))
    if bool((total <= 0).any()):
        raise ValueError(f"{names[1]} is all zero in at least one map: the weighted mean is undefined")
    mean = times_pow2((w * v).sum(dim=(-2, -1)) / total, ev)
    return give_back(mean, boundary, boundary.unit)


def mass_weighted_mean(values: Any, weights: Any) -> Any:
    """``Σ w·v / Σ w`` over each map; ``values`` and ``weights`` ``(..., H, W)`` → ``(...,)``.

    In the unit of ``values`` (which may be signed); finite for any finite input.

    Raises:
        ValueError: shapes differ, negative weights, or a map with zero total weight.
    """
    return _weighted_mean(values, weights, ("values", "weights"), None)


def mass_weighted_temperature(temperature: Any, gas: Any) -> Any:
    """Gas-mass-weighted temperature ``T_mw = Σ Σ_gas T / Σ Σ_gas`` [K], maps ``(..., H, W)`` → ``(...,)``.

    Raises:
        ValueError: negative ``temperature`` or ``gas`` pixels, different shapes, or an
            all-zero ``gas`` map.
    """
    return _weighted_mean(temperature, gas, ("temperature", "gas"), "a temperature in K")


def mass_weighted_bfield(bfield: Any, gas: Any) -> Any:
    """Gas-mass-weighted field strength ``Σ Σ_gas |B| / Σ Σ_gas`` [G], maps ``(..., H, W)`` → ``(...,)``.

    Raises:
        ValueError: negative ``bfield`` (|B|) or ``gas`` pixels, different shapes, or an
            all-zero ``gas`` map.
    """
    return _weighted_mean(bfield, gas, ("bfield", "gas"), "a field strength |B|")


def _physical_scale(
    pixel_size: Any, extent: Any, shape: tuple[int, ...], device: torch.device, fn: str
) -> PixelScale:
    scale = resolve_scale(pixel_size, extent, shape, device)
    if scale.unit is not u.kpc:
        raise ValueError(f"{fn} needs a physical pixel_size (a length), not an angle")
    return scale


def thermal_energy(
    gas: Any,
    temperature: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    mu: float = MU_IONISED,
) -> Any:
    """``E_th = (3/2) k_B Σ_pix m T / (μ m_p)`` in erg, ``(...,)``.

    ``gas`` ``(..., H, W)`` in Msun/kpc², ``temperature`` of the same shape in K
    (mass-weighted along the line of sight), both non-negative; ``mu`` positive.

    Raises:
        ValueError: negative pixels, different shapes, a non-positive ``mu``, an angular
            pixel scale, or an energy beyond float64.
    """
    if isinstance(mu, bool) or not (isinstance(mu, numbers.Real) and math.isfinite(mu) and mu > 0):
        raise ValueError(f"mu must be a positive finite number, got {mu!r}")
    g, boundary = as_map(gas, "gas")
    temp, _ = as_map(temperature, "temperature")
    check_same_shape(g, temp, "gas", "temperature")
    _non_negative(g, "gas", "a surface density")
    _non_negative(temp, "temperature", "a temperature in K")
    scale = _physical_scale(pixel_size, extent, tuple(g.shape), g.device, "thermal_energy")
    eg, et = map_exponent(g), map_exponent(temp)
    summed = (times_pow2(g, -eg[..., None, None]) * times_pow2(temp, -et[..., None, None])).sum(dim=(-2, -1))
    m_area, e_area = _area(scale)
    mantissa = _THERMAL_ERG_PER_MSUN_K / mu * summed * m_area
    energy = times_pow2(mantissa, eg + et + e_area)
    require_finite(
        energy, "the thermal energy of gas and temperature", "gas, temperature or pixel_size", mantissa
    )
    unit = u.erg if boundary.wants_units(u.kpc if scale.has_units else None) else None
    return give_back(energy, boundary, unit)


def magnetic_energy(bfield: Any, depth: Any, pixel_size: Any = None, *, extent: Any = None) -> Any:
    """``E_B = Σ_pix |B|² / (8π) · A_pix · depth`` in erg, ``(...,)``.

    A projected map cannot give the volume, so the field is assumed uniform over a
    line-of-sight ``depth`` (e.g. the map width): positive, in kpc or a length Quantity,
    scalar or per map ``(...,)``. ``bfield`` ``(..., H, W)`` in G.

    Raises:
        ValueError: a ``depth`` that is not a positive finite length, an angular pixel
            scale, or an energy beyond float64.
    """
    b, boundary = as_map(bfield, "bfield")
    scale = _physical_scale(pixel_size, extent, tuple(b.shape), b.device, "magnetic_energy")
    if isinstance(depth, u.Quantity):
        if depth.unit.physical_type != "length":
            raise ValueError(f"depth must be a length (e.g. kpc), got unit '{depth.unit}'")
        depth_kpc = depth.to_value(u.kpc)
    else:
        depth_kpc = depth
    d, _ = as_float_tensor(depth_kpc, "depth", b.device)
    if bool((d <= 0).any()):
        raise ValueError(f"depth must be positive, got {depth!r}")
    eb = map_exponent(b)
    summed = (times_pow2(b, -eb[..., None, None]) ** 2).sum(dim=(-2, -1))
    m_area, e_area = _area(scale)
    m_depth, e_depth = split_pow2(d)
    mantissa = summed / (8 * math.pi) * m_area * m_depth * _KPC_CM**3
    energy = times_pow2(mantissa, 2 * eb + e_area + e_depth)
    require_finite(energy, "the magnetic energy of bfield", "bfield, depth or pixel_size", mantissa)
    unit = u.erg if boundary.wants_units(u.kpc if scale.has_units else None) else None
    return give_back(energy, boundary, unit)
