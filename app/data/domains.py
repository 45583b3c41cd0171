"""The map domains as the app sees them: ``validation.domains``' table plus a default transform.

Keys, astropy units, kinds (how a map pools; ``SURFACE_DENSITY``, ``MASS_WEIGHTED``,
``BRIGHTNESS``), descriptions and histogram ranges live in one table,
``validation.domains.DOMAINS``, re-exported here. The app adds one column of its own, the
default network transform of each domain (``DEFAULT_TRANSFORMS``), a training choice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from validation import domains as _table
from validation.domains import BRIGHTNESS, DOMAIN_KINDS, MASS_WEIGHTED, PROFILED_KINDS, SURFACE_DENSITY

__all__ = [
    "BRIGHTNESS",
    "DEFAULT_TRANSFORMS",
    "DOMAINS",
    "DOMAIN_KINDS",
    "MASS_WEIGHTED",
    "PROFILED_KINDS",
    "SURFACE_DENSITY",
    "Domain",
    "get_domain",
]

#: default transform (``app.data.transforms``, fitted on the training maps) of each domain
DEFAULT_TRANSFORMS: dict[str, str] = {
    "dm": "log10", "star": "log10", "gas": "log10", "hi": "power", "hi/21cm": "log10", "temp": "log10",
    "bfield": "log10",
}  # fmt: skip


@dataclass(frozen=True)
class Domain(_table.Domain):
    """A row of ``validation.domains.DOMAINS`` (key, unit, kind, description, value range)
    plus ``transform``, the name of the domain's default network transform."""

    transform: str


if set(DEFAULT_TRANSFORMS) != set(_table.DOMAINS):
    raise ValueError(f"DEFAULT_TRANSFORMS must name every domain of {sorted(_table.DOMAINS)} once")

DOMAINS: dict[str, Domain] = {
    key: Domain(**asdict(row), transform=DEFAULT_TRANSFORMS[key]) for key, row in _table.DOMAINS.items()
}


def get_domain(key: str) -> Domain:
    """The domain called ``key``; ValueError listing the known ones otherwise."""
    try:
        return DOMAINS[key]
    except KeyError:
        raise ValueError(f"unknown domain {key!r}; choose one of {sorted(DOMAINS)}") from None
