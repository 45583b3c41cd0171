"""Trivial predictors that every model must beat, fitted on the training split only.

A baseline maps normalised source maps ``(N, 1, H, W)`` to normalised target maps
``(N, C, H, W)`` — the same space, transforms and scoring path as a trained network — so
its numbers sit in the same tables as a model's. Where a baseline needs physical units
(mass scaling, the lookup's mean correction) it uses the ``Units`` conversions of the data.

* ``mean_map``: the per-pixel mean of the normalised training targets (with the default
  ``log10`` transform, the log-mean training map), whatever the source.
* ``scaling``: ``t = k_c · s`` in physical units, ``k_c = Σ t / Σ s`` summed over the
  training pixels (for surface densities a mass ratio with each pixel weighted equally).
* ``log_linear``: ``y_c = a_c x + b_c`` per pixel, least squares over all training pixels
  (with ``log10`` transforms a power law ``t ∝ s^a``).
* ``lookup``: the binned conditional mean ``E[t | s]``: the source is cut into ``bins``
  equal-count bins; each bin holds the mean *physical* target of its training pixels
  (mean-corrected, so the expected mass is unbiased), stored transformed; prediction
  interpolates linearly between bin centres in normalised source units (and extrapolates
  the end bins' slope beyond them, so the brightest pixels keep their structure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["BASELINES", "BASELINE_ORDER", "Baseline", "Units", "make_baseline"]

Convert = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class Units:
    """Conversions between normalised and physical maps (identity by default).

    ``source_to_physical``: ``(N, 1, H, W)`` → physical; ``target_to_physical`` and
    ``target_from_physical``: ``(N, C, H, W)`` ↔ physical, channel by channel.
    """

    source_to_physical: Convert = _identity
    target_to_physical: Convert = _identity
    target_from_physical: Convert = _identity


def _check(source: torch.Tensor, target: torch.Tensor | None = None) -> None:
    if source.ndim != 4 or source.shape[1] != 1:
        raise ValueError(f"baseline source must be (N, 1, H, W), got {tuple(source.shape)}")
    if target is not None and (target.ndim != 4 or target.shape[0] != source.shape[0]
                               or target.shape[-2:] != source.shape[-2:]):  # fmt: skip
        raise ValueError(
            f"baseline target must be (N, C, H, W) matching source {tuple(source.shape)}, got {tuple(target.shape)}"
        )
    if not bool(torch.isfinite(source).all()) or (
        target is not None and not bool(torch.isfinite(target).all())
    ):
        raise ValueError("baseline inputs contain NaN/Inf")


class Baseline:
    """Base class: ``fit(source, target)`` on training maps, then ``predict(source)``."""

    name = "baseline"

    def __init__(self, units: Units | None = None) -> None:
        self.units = units or Units()
        self.fitted = False

    def fit(self, source: torch.Tensor, target: torch.Tensor) -> Baseline:
        """Fit on normalised training maps: ``source`` ``(N, 1, H, W)``, ``target`` ``(N, C, H, W)``."""
        _check(source, target)
        self._fit(source.double(), target.double())
        self.fitted = True
        return self

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        """Normalised prediction ``(N, C, H, W)`` (source's dtype) for normalised ``source`` ``(N, 1, H, W)``."""
        if not self.fitted:
            raise RuntimeError(
                f"baseline {self.name!r} is not fitted: call fit() on the training split first"
            )
        _check(source)
        return self._predict(source.double()).to(source.dtype)

    def _fit(self, source: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def _predict(self, source: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MeanMap(Baseline):
    """Per-pixel mean of the normalised training targets, whatever the source."""

    name = "mean_map"

    def _fit(self, source: torch.Tensor, target: torch.Tensor) -> None:
        self.mean = target.mean(0, keepdim=True)

    def _predict(self, source: torch.Tensor) -> torch.Tensor:
        if source.shape[-2:] != self.mean.shape[-2:]:
            raise ValueError(
                f"mean_map was fitted on {tuple(self.mean.shape[-2:])} maps, got {tuple(source.shape[-2:])}"
            )
        return self.mean.to(source.device).expand(source.shape[0], -1, -1, -1).clone()


class MassScaling(Baseline):
    """``t = k_c s`` in physical units with ``k_c = Σ t / Σ s`` over the training maps."""

    name = "scaling"

    def _fit(self, source: torch.Tensor, target: torch.Tensor) -> None:
        s = self.units.source_to_physical(source).sum()
        if not float(s) > 0:
            raise ValueError("scaling baseline: the training sources have no positive total")
        self.ratio = self.units.target_to_physical(target).sum(dim=(0, 2, 3)) / s

    def _predict(self, source: torch.Tensor) -> torch.Tensor:
        phys = self.units.source_to_physical(source) * self.ratio.to(source)[None, :, None, None]
        return self.units.target_from_physical(phys)


class LogLinear(Baseline):
    """``y_c = a_c x + b_c`` per pixel (least squares over every training pixel)."""

    name = "log_linear"

    def _fit(self, source: torch.Tensor, target: torch.Tensor) -> None:
        x = source.flatten()
        xc = x - x.mean()
        var = (xc**2).mean()
        y = target.transpose(0, 1).flatten(1)  # (C, N·H·W)
        self.slope = ((y - y.mean(1, keepdim=True)) * xc).mean(1) / torch.clamp(var, min=1e-30)
        self.intercept = y.mean(1) - self.slope * x.mean()

    def _predict(self, source: torch.Tensor) -> torch.Tensor:
        a, b = self.slope.to(source)[None, :, None, None], self.intercept.to(source)[None, :, None, None]
        return a * source + b


class Lookup(Baseline):
    """Binned conditional mean ``E[t | s]`` (mean-corrected in physical units), interpolated."""

    name = "lookup"

    def __init__(self, units: Units | None = None, bins: int = 64) -> None:
        super().__init__(units)
        if bins < 2:
            raise ValueError(f"lookup baseline: bins must be >= 2, got {bins}")
        self.bins = bins

    def _fit(self, source: torch.Tensor, target: torch.Tensor) -> None:
        x = source.flatten()
        edges = torch.quantile(x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))[:2**20]],
                               torch.linspace(0, 1, self.bins + 1, dtype=x.dtype))  # fmt: skip
        edges = torch.unique(edges)
        if edges.numel() < 2:
            raise ValueError("lookup baseline: the training source is constant")
        idx = torch.clamp(torch.bucketize(x, edges[1:-1]), 0, edges.numel() - 2)
        n_bins = edges.numel() - 1
        count = torch.zeros(n_bins, dtype=x.dtype).index_add_(0, idx, torch.ones_like(x))
        keep = count > 0
        if int(keep.sum()) < 2:
            raise ValueError("lookup baseline: the training source takes fewer than two distinct values")
        self.centres = (torch.zeros(n_bins, dtype=x.dtype).index_add_(0, idx, x) / count.clamp(min=1))[keep]
        phys = self.units.target_to_physical(target).transpose(0, 1).flatten(1)  # (C, N·H·W)
        sums = torch.zeros(phys.shape[0], n_bins, dtype=x.dtype).index_add_(1, idx, phys)
        mean = (sums / count.clamp(min=1))[:, keep]  # (C, n_kept) physical
        self.table = self.units.target_from_physical(mean[None, :, None, :])[0, :, 0, :]

    def _predict(self, source: torch.Tensor) -> torch.Tensor:
        x = source.flatten()
        c, table = self.centres.to(x), self.table.to(x)
        j = torch.clamp(torch.searchsorted(c, x), 1, c.numel() - 1)
        w = (x - c[j - 1]) / (c[j] - c[j - 1])  # linear extrapolation beyond the end bins
        out = table[:, j - 1] * (1 - w) + table[:, j] * w
        n, _, h, wd = source.shape
        return out.reshape(-1, n, h, wd).transpose(0, 1)


#: the baselines in the order reports list them
BASELINE_ORDER = ("lookup", "log_linear", "scaling", "mean_map")
#: name → baseline class
BASELINES: dict[str, type[Baseline]] = {b.name: b for b in (MeanMap, MassScaling, LogLinear, Lookup)}


def make_baseline(name: str, units: Units | None = None, **options: int) -> Baseline:
    """The baseline called ``name`` (``mean_map``, ``scaling``, ``log_linear``, ``lookup``)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name](units, **options)
