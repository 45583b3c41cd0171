"""Invertible normalising transforms, fitted on the training split and saved with the data.

Each transform maps physical values ``x`` to network values ``y`` and back exactly:
``y = (f(x) − shift) / scale`` where ``f`` is one of

* ``log10``: ``f = log10(x + floor)``, ``floor`` > 0 keeps empty pixels finite;
* ``asinh``: ``f = asinh(x / softening)``, linear near 0, logarithmic far from it;
* ``power``: ``f = (x / c)^(1/γ)``, the authors' "HEP" transform (``c ≳ max x``);
* ``identity``: ``f = x``;

and ``shift``/``scale`` are the mean and standard deviation of ``f(x)`` over the training
pixels. Forward and inverse run in float64 and return the input's dtype. For ``log10``
and ``power`` a round trip is exact to ~1e-12 per pixel in float64 and ~1e-6 in float32;
for ``asinh`` and ``identity`` (linear near zero) the error is that size relative to the
map's largest value. The inverse of ``log10`` is clamped at 0: a surface density is ≥ 0.

The ``floor`` (a tenth of the 1st percentile of the positive training pixels unless given)
is also the transforms' resolution: with ``snap = True`` (the default) the inverse of
``log10`` and ``power`` returns 0 for values below it, since the data hold almost no
positive pixels there (< 1 %) and a network's output that lands there is an empty pixel,
not a detection 10⁻⁵ times fainter than anything in the training set. Round trips are
exact for 0 and for x ≥ floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

__all__ = ["TRANSFORMS", "MapTransform", "RunningMoments", "make_transform"]


@dataclass
class RunningMoments:
    """Streaming mean/variance (Chan et al.) of float64 values; one ``update`` per map."""

    count: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: torch.Tensor) -> None:
        """Merge the count, mean and M2 of ``values`` (any shape, taken as float64) into the totals."""
        v = values.detach().to(torch.float64).flatten()
        n = float(v.numel())
        if n == 0:
            return
        mean = float(v.mean())
        m2 = float(((v - mean) ** 2).sum())
        delta = mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        """Population standard deviation of the values seen so far (1.0 before any)."""
        return math.sqrt(self.m2 / self.count) if self.count > 0 else 1.0


@dataclass
class MapTransform:
    """A fitted (or to-be-fitted) transform of one domain; see the module docstring.

    ``floor``/``softening``/``c`` may be ``"auto"`` until :meth:`fit`: the floor becomes a
    tenth of the 1st percentile of positive training pixels, the softening their median
    and ``c`` their maximum.
    """

    name: str = "log10"
    floor: float | str = "auto"
    softening: float | str = "auto"
    c: float | str = "auto"
    gamma: float = 10.0
    snap: bool = True
    shift: float = 0.0
    scale: float = 1.0
    fitted: bool = False
    domain: str = ""
    _positives: list[torch.Tensor] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.name!r}; choose one of {TRANSFORMS}")
        if self.name == "power" and self.gamma <= 0:
            raise ValueError(f"gamma must be positive for the power transform, got {self.gamma}")

    # ------------------------------------------------------------------ the maps
    def _f(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "log10":
            return torch.log10(x + float(self.floor))
        if self.name == "asinh":
            return torch.asinh(x / float(self.softening))
        if self.name == "power":
            return (x / float(self.c)) ** (1.0 / self.gamma)
        return x

    def _f_inv(self, f: torch.Tensor) -> torch.Tensor:
        if self.name == "log10":  # x >= 0 by construction; clamp the rounding of 10^log10(floor) − floor
            return self._snap(torch.clamp(10.0**f - float(self.floor), min=0.0))
        if self.name == "asinh":
            return torch.sinh(f) * float(self.softening)
        if self.name == "power":
            return self._snap(torch.clamp(f, min=0.0) ** self.gamma * float(self.c))
        return f

    def _snap(self, x: torch.Tensor) -> torch.Tensor:
        """Values below the resolution ``floor`` are empty pixels (when ``snap``)."""
        cut = float(self.floor) * (1 - 1e-9)  # round-off of a value at the floor keeps it
        return torch.where(x < cut, torch.zeros_like(x), x) if self.snap else x

    def check_input(self, x: torch.Tensor, where: str) -> None:
        """Raise a ValueError naming ``where`` if ``x`` has values the transform cannot take."""
        if self.name in ("log10", "power"):
            n_neg = int((x < 0).sum())
            if n_neg:
                raise ValueError(
                    f"{where}: {n_neg} negative pixel(s) (min {float(x.min()):.3g}) but the "
                    f"{self.name} transform of domain {self.domain!r} needs x >= 0"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Physical → network values (same dtype as ``x``)."""
        self._require_fitted()
        y = (self._f(x.to(torch.float64)) - self.shift) / self.scale
        return y.to(x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Network → physical values (same dtype as ``y``)."""
        self._require_fitted()
        x = self._f_inv(y.to(torch.float64) * self.scale + self.shift)
        return x.to(y.dtype)

    # ------------------------------------------------------------------ fitting
    def observe(self, x: torch.Tensor) -> None:
        """First fitting pass: remember a subsample of positive pixels for the 'auto' constants."""
        pos = x[x > 0].to(torch.float64).flatten()
        if pos.numel() > 4096:
            pos = pos[torch.linspace(0, pos.numel() - 1, 4096).long()]
        self._positives.append(pos)

    def settle(self) -> None:
        """Fix the 'auto' constants from what :meth:`observe` saw."""
        pos = torch.cat(self._positives) if self._positives else torch.zeros(0, dtype=torch.float64)
        if pos.numel() > 2**22:  # torch.quantile takes at most 2**24 values; an even subsample is plenty
            pos = pos[torch.linspace(0, pos.numel() - 1, 2**22).long()]
        if pos.numel() == 0 and "auto" in (self.floor, self.softening, self.c):
            raise ValueError(f"domain {self.domain!r}: no positive training pixels to fit the transform")
        if self.floor == "auto":
            self.floor = float(torch.quantile(pos, 0.01)) / 10
        if self.softening == "auto":
            self.softening = float(pos.median())
        if self.c == "auto":
            self.c = float(pos.max())
        for name in ("floor", "softening", "c"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(
                    f"domain {self.domain!r}: {name} must be positive, got {getattr(self, name)}"
                )
        self._positives.clear()

    def fit_moments(self, moments: RunningMoments) -> None:
        """Second pass result: the standardising shift and scale."""
        self.shift = moments.mean
        self.scale = moments.std if moments.std > 0 else 1.0
        self.fitted = True

    def fit(self, maps: Callable[[], Iterable[torch.Tensor]]) -> MapTransform:
        """Fit on physical maps in two passes (``maps()`` yields them afresh each pass): the 'auto'
        constants, then the standardising moments. Returns ``self``."""
        for x in maps():
            self.observe(x)
        self.settle()
        moments = RunningMoments()
        for x in maps():
            moments.update(self.f(x))
        self.fit_moments(moments)
        return self

    def f(self, x: torch.Tensor) -> torch.Tensor:
        """The un-standardised transform ``f(x)`` in float64 (used while fitting)."""
        return self._f(x.to(torch.float64))

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"transform of domain {self.domain!r} is used before it was fitted")

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Plain-data state for checkpoints."""
        d = asdict(self)
        d.pop("_positives")
        return d

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MapTransform:
        """The transform saved by :meth:`state`; states saved before ``snap`` existed keep
        their exact inverse (``snap = False``), so an old checkpoint predicts what it did."""
        return cls(**{"snap": False, **state})


TRANSFORMS = ("log10", "asinh", "power", "identity")


def make_transform(domain: str, spec: str | dict[str, Any] | None, default: str) -> MapTransform:
    """A transform for ``domain`` from a name, a dict of fields, or None (the domain default)."""
    if spec is None:
        spec = default
    if isinstance(spec, str):
        return MapTransform(name=spec, domain=domain)
    if isinstance(spec, dict):
        allowed = {"name", "floor", "softening", "c", "gamma", "snap"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(
                f"transforms.{domain}: unknown field(s) {sorted(unknown)}; allowed {sorted(allowed)}"
            )
        return MapTransform(domain=domain, **spec)
    raise TypeError(f"transforms.{domain} must be a name or a mapping, got {type(spec).__name__}")
