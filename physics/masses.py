"""Integrated quantities: total mass, mass-weighted means, thermal and magnetic energy.

Surface densities are in Msun/kpc², temperatures in K and field strengths in G (the
units of the IllustrisTNG maps); T and |B| maps are already line-of-sight mass-weighted,
so their galaxy-wide averages are weighted again by the gas surface density.
"""

from __future__ import annotations

import math
from typing import Any

from astropy import constants as const
from astropy import units as u

from physics._arrays import as_map, check_same_shape, give_back
from physics.grid import resolve_scale

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


def total_mass(surface_density: Any, pixel_size: Any = None, *, extent: Any = None) -> Any:
    """``M = A_pix Σ_pixels Σ`` for maps ``(..., H, W)`` → ``(...,)``.

    Msun for a map in Msun/kpc² with a pixel size in kpc. With Quantities the result
    carries ``[map]·[length]²`` converted to Msun when possible.
    """
    t, boundary = as_map(surface_density, "surface_density")
    scale = resolve_scale(pixel_size, extent, tuple(t.shape), t.device)
    mass = t.sum(dim=(-2, -1)) * scale.area
    if boundary.wants_units(u.kpc if scale.has_units else None):
        unit = (boundary.unit or u.dimensionless_unscaled) * scale.unit**2
        q = give_back(mass, boundary, unit)
        return q.to(u.Msun) if q.unit.is_equivalent(u.Msun) else q
    return give_back(mass, boundary)


def mass_weighted_mean(values: Any, weights: Any) -> Any:
    """``Σ w·v / Σ w`` over each map; ``values`` and ``weights`` ``(..., H, W)`` → ``(...,)``.

    Raises:
        ValueError: shapes differ, negative weights, or a map with zero total weight.
    """
    v, boundary = as_map(values, "values")
    w, _ = as_map(weights, "weights")
    check_same_shape(v, w, "values", "weights")
    if bool((w < 0).any()):
        raise ValueError(f"weights has {int((w < 0).sum())} negative pixel(s)")
    total = w.sum(dim=(-2, -1))
    if bool((total <= 0).any()):
        raise ValueError("weights is all zero in at least one map: the weighted mean is undefined")
    mean = (w * v).sum(dim=(-2, -1)) / total
    return give_back(mean, boundary, boundary.unit)


def mass_weighted_temperature(temperature: Any, gas: Any) -> Any:
    """Gas-mass-weighted temperature ``T_mw = Σ Σ_gas T / Σ Σ_gas`` [K], maps ``(..., H, W)`` → ``(...,)``."""
    return mass_weighted_mean(temperature, gas)


def mass_weighted_bfield(bfield: Any, gas: Any) -> Any:
    """Gas-mass-weighted field strength ``Σ Σ_gas |B| / Σ Σ_gas`` [G], maps ``(..., H, W)`` → ``(...,)``."""
    return mass_weighted_mean(bfield, gas)


def thermal_energy(
    gas: Any,
    temperature: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    mu: float = MU_IONISED,
) -> Any:
    """``E_th = (3/2) k_B Σ_pix m T / (μ m_p)`` in erg, ``(...,)``.

    ``gas`` in Msun/kpc², ``temperature`` in K (mass-weighted along the line of sight).
    """
    if mu <= 0:
        raise ValueError(f"mu must be positive, got {mu}")
    g, boundary = as_map(gas, "gas")
    temp, _ = as_map(temperature, "temperature")
    check_same_shape(g, temp, "gas", "temperature")
    if bool((temp < 0).any()):
        raise ValueError("temperature has negative pixels")
    scale = resolve_scale(pixel_size, extent, tuple(g.shape), g.device)
    if scale.unit is not u.kpc:
        raise ValueError("thermal_energy needs a physical pixel size (length), not an angle")
    energy = _THERMAL_ERG_PER_MSUN_K / mu * (g * temp).sum(dim=(-2, -1)) * scale.area
    unit = u.erg if boundary.wants_units(u.kpc if scale.has_units else None) else None
    return give_back(energy, boundary, unit)


def magnetic_energy(bfield: Any, depth: Any, pixel_size: Any = None, *, extent: Any = None) -> Any:
    """``E_B = Σ_pix |B|² / (8π) · A_pix · depth`` in erg, ``(...,)``.

    A projected map cannot give the volume, so the field is assumed uniform over a
    line-of-sight ``depth`` [kpc] (e.g. the map width). ``bfield`` in G.
    """
    b, boundary = as_map(bfield, "bfield")
    scale = resolve_scale(pixel_size, extent, tuple(b.shape), b.device)
    if scale.unit is not u.kpc:
        raise ValueError("magnetic_energy needs a physical pixel size (length), not an angle")
    d = depth.to_value(u.kpc) if isinstance(depth, u.Quantity) else float(depth)
    if not d > 0:
        raise ValueError(f"depth must be positive, got {depth!r}")
    volume_cm3 = scale.area * d * _KPC_CM**3
    energy = (b**2).sum(dim=(-2, -1)) / (8 * math.pi) * volume_cm3
    unit = u.erg if boundary.wants_units(u.kpc if scale.has_units else None) else None
    return give_back(energy, boundary, unit)
