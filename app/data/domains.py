"""The map domains of the IllustrisTNG galaxy set, their units and how they pool.

``kind`` says how a map combines over pixels: ``surface_density`` maps are averaged
(which conserves mass when pixels merge), ``mass_weighted`` maps (T, |B|) are averaged
with the gas surface density as weight, ``brightness`` maps are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOMAINS", "Domain", "get_domain"]


@dataclass(frozen=True)
class Domain:
    """One map domain: its HDF5 key, astropy unit string, pooling kind and default transform."""

    key: str
    unit: str
    kind: str
    transform: str
    description: str


DOMAINS: dict[str, Domain] = {
    d.key: d
    for d in (
        Domain("dm", "solMass / kpc2", "surface_density", "log10", "dark-matter surface density"),
        Domain("star", "solMass / kpc2", "surface_density", "log10", "stellar surface density"),
        Domain("gas", "solMass / kpc2", "surface_density", "log10", "gas surface density"),
        Domain("hi", "solMass / kpc2", "surface_density", "power", "neutral-hydrogen surface density"),
        Domain("hi/21cm", "mK", "brightness", "log10", "21-cm brightness temperature"),
        Domain("temp", "K", "mass_weighted", "log10", "gas-mass-weighted temperature"),
        Domain("bfield", "G", "mass_weighted", "log10", "gas-mass-weighted |B|"),
    )
}


def get_domain(key: str) -> Domain:
    """The domain called ``key``; ValueError listing the known ones otherwise."""
    try:
        return DOMAINS[key]
    except KeyError:
        raise ValueError(f"unknown domain {key!r}; choose one of {sorted(DOMAINS)}") from None
