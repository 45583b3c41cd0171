"""The map domains of the IllustrisTNG galaxy set: one table of keys, units, kinds and ranges.

Every fact about a domain that is not a training choice lives here, once: its HDF5 key,
its astropy unit string, its *kind*, a description and the log10 range of its pixel
histograms. ``validation`` reads it directly; ``app.data.domains`` re-exports it and adds
the default transform of each domain (a training choice).

The kind says how a map combines over pixels and which metrics apply to it:

* ``SURFACE_DENSITY`` (Σ, ``solMass / kpc2``): pooled by averaging, which conserves mass
  when pixels merge; has a radial profile and a half-mass radius.
* ``BRIGHTNESS`` (e.g. 21-cm ``mK``): pooled by averaging; has a profile and a radius.
* ``MASS_WEIGHTED`` (T in ``K``, |B| in ``G``): averaged with the gas surface density as
  weight; no profile or half-mass radius is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BRIGHTNESS",
    "DOMAINS",
    "DOMAIN_KINDS",
    "FALLBACK_VALUE_RANGE",
    "MASS_WEIGHTED",
    "PROFILED_KINDS",
    "SURFACE_DENSITY",
    "VALUE_RANGES",
    "Domain",
    "DomainKind",
    "get_domain",
    "value_range",
]

#: maps pooled by plain averaging (mass-conserving): projected surface densities
SURFACE_DENSITY = "surface_density"
#: maps averaged with the gas surface density as weight (temperature, |B|)
MASS_WEIGHTED = "mass_weighted"
#: surface-brightness maps (21-cm brightness temperature), pooled by averaging
BRIGHTNESS = "brightness"
#: every domain kind
DOMAIN_KINDS = (SURFACE_DENSITY, MASS_WEIGHTED, BRIGHTNESS)
#: kinds whose maps get a radial-profile and a half-mass-radius score
PROFILED_KINDS = frozenset({SURFACE_DENSITY, BRIGHTNESS})

DomainKind = Literal["surface_density", "mass_weighted", "brightness"]

#: fallback log10 histogram range [dex] for a unit that no domain has
FALLBACK_VALUE_RANGE = (-15.0, 15.0)


@dataclass(frozen=True)
class Domain:
    """One map domain.

    Attributes:
        key: HDF5 group of the maps (``dm``, ``hi/21cm``, …) and the domain's name everywhere.
        unit: astropy unit string of the stored maps (``solMass / kpc2``, ``K``, ``G``, ``mK``).
        kind: ``SURFACE_DENSITY``, ``MASS_WEIGHTED`` or ``BRIGHTNESS`` (module docstring).
        description: a few words for tables and figure labels.
        value_range: ``(lo, hi)`` log10 range [dex of ``unit``] of the pixel histograms (W1).
    """

    key: str
    unit: str
    kind: str
    description: str
    value_range: tuple[float, float]

    def __post_init__(self) -> None:
        if self.kind not in DOMAIN_KINDS:
            raise ValueError(f"domain {self.key!r}: unknown kind {self.kind!r}; choose one of {DOMAIN_KINDS}")

    @property
    def profiled(self) -> bool:
        """Whether radial-profile and half-mass-radius scores apply (``kind in PROFILED_KINDS``)."""
        return self.kind in PROFILED_KINDS

    @property
    def mass_weighted(self) -> bool:
        """Whether pixels merge with the gas surface density as weight (``kind == MASS_WEIGHTED``)."""
        return self.kind == MASS_WEIGHTED


_SIGMA = "solMass / kpc2"

DOMAINS: dict[str, Domain] = {
    d.key: d
    for d in (
        Domain("dm", _SIGMA, SURFACE_DENSITY, "dark-matter surface density", (-1.0, 12.0)),
        Domain("star", _SIGMA, SURFACE_DENSITY, "stellar surface density", (-1.0, 12.0)),
        Domain("gas", _SIGMA, SURFACE_DENSITY, "gas surface density", (-1.0, 12.0)),
        Domain("hi", _SIGMA, SURFACE_DENSITY, "neutral-hydrogen surface density", (-1.0, 12.0)),
        Domain("hi/21cm", "mK", BRIGHTNESS, "21-cm brightness temperature", (-12.0, 4.0)),
        Domain("temp", "K", MASS_WEIGHTED, "gas-mass-weighted temperature", (1.0, 9.0)),
        Domain("bfield", "G", MASS_WEIGHTED, "gas-mass-weighted |B|", (-12.0, -1.0)),
    )
}


def _ranges_by_unit(domains: dict[str, Domain]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for d in domains.values():
        if out.setdefault(d.unit, d.value_range) != d.value_range:
            raise ValueError(f"domains of unit {d.unit!r} disagree on their value range")
    return out


#: log10 histogram range [dex] by unit string, derived from ``DOMAINS`` (one range per unit)
VALUE_RANGES: dict[str, tuple[float, float]] = _ranges_by_unit(DOMAINS)


def get_domain(key: str) -> Domain:
    """The domain called ``key``; ValueError listing the known ones otherwise."""
    try:
        return DOMAINS[key]
    except KeyError:
        raise ValueError(f"unknown domain {key!r}; choose one of {sorted(DOMAINS)}") from None


def value_range(unit: str, overrides: dict[str, tuple[float, float]] | None = None) -> tuple[float, float]:
    """The log10 histogram range [dex] of maps in ``unit``: ``overrides``, then the table, then ±15."""
    if overrides and unit in overrides:
        return overrides[unit]
    return VALUE_RANGES.get(unit, FALLBACK_VALUE_RANGE)
