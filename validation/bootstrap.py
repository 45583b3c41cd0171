"""Bootstrap intervals over galaxies for any metric whose states are sums.

Every ``PhysicsMetrics`` state is a sum (per-bin power, score totals and counts,
histograms), so the metrics of a resample of galaxies are the metrics of the summed
per-galaxy states: each galaxy's maps are scored once, and a resample costs one
``compute``. Views of one galaxy resample together (they are not independent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_sum

__all__ = ["Interval", "bootstrap_scores"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Interval:
    """A score on all maps and its bootstrap interval (``lo``, ``hi``) at ``level``."""

    value: float
    lo: float
    hi: float
    level: float

    def __str__(self) -> str:
        def fmt(x: float) -> str:
            return "0" if abs(x) < 1e-12 else f"{x:.3g}"  # float round-off of an exact zero

        return f"{fmt(self.value)} [{fmt(self.lo)}, {fmt(self.hi)}]"


def _metrics(module: nn.Module) -> list[tuple[str, Metric]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, Metric)]


def _states(module: nn.Module) -> dict[str, tuple[torch.Tensor, bool]]:
    """Every metric state, and whether it is summed over updates."""
    out = {}
    for name, m in _metrics(module):
        for s, reduce in m._reductions.items():
            value = getattr(m, s)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"bootstrap needs tensor states; {name}.{s} is a {type(value).__name__}")
            out[f"{name}.{s}"] = (value.detach().clone(), reduce is dim_zero_sum)
        out[f"{name}._update_count"] = (torch.tensor(float(m._update_count)), True)
    return out


def _stack(per_group: list[dict[str, tuple[torch.Tensor, bool]]]) -> dict[str, tuple[torch.Tensor, bool]]:
    """Summed states stacked over groups; other states must be constants (e.g. a data range)."""
    out = {}
    for k, (first, summed) in per_group[0].items():
        values = torch.stack([g[k][0] for g in per_group])
        if not summed and not bool((values == first).all()):
            raise ValueError(f"bootstrap needs summed states; {k} is neither summed nor constant")
        out[k] = (values if summed else first, summed)
    return out


def _load(module: nn.Module, states: dict[str, torch.Tensor]) -> None:
    for name, m in _metrics(module):
        for s in m._reductions:
            setattr(m, s, states[f"{name}.{s}"].clone())
        m._update_count = int(states[f"{name}._update_count"])  # 0 for a metric never updated
        m._computed = None
    for sub in module.modules():  # MetricCollection: do not re-link compute groups to stale states
        if hasattr(sub, "_state_is_copy"):
            sub._state_is_copy = True


def bootstrap_scores(
    make_metrics: Callable[[], nn.Module],
    update: Callable[[nn.Module, np.ndarray], None],
    groups: Sequence[object],
    n_boot: int = 200,
    level: float = 0.68,
    seed: int = 0,
) -> dict[str, Interval]:
    """Scores on all maps with ``level`` percentile intervals from ``n_boot`` galaxy resamples.

    Args:
        make_metrics: a fresh metrics module (e.g. ``PhysicsMetrics``) whose ``compute()``
            returns ``{name: scalar}``.
        update: ``update(metrics, idx)`` feeds the maps at indices ``idx`` (one galaxy).
        groups: ``(N,)`` galaxy label of each map.
    """
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got {level}, {n_boot}")
    labels = list(dict.fromkeys(groups))
    if not labels:
        raise ValueError("bootstrap_scores: no maps")
    per_group = []
    for g in labels:
        m = make_metrics()
        update(m, np.array([i for i, x in enumerate(groups) if x == g]))
        per_group.append(_states(m))
    stacked = _stack(per_group)
    probe = make_metrics()

    def score(weights: torch.Tensor) -> dict[str, float]:
        _load(probe, {k: torch.tensordot(weights.to(v.dtype), v, dims=1) if summed else v
                      for k, (v, summed) in stacked.items()})  # fmt: skip
        return {k: float(v) for k, v in probe.compute().items()}

    full = score(torch.ones(len(labels)))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, len(labels), len(labels)), minlength=len(labels))
        try:
            draws.append(score(torch.from_numpy(counts)))
        except ValueError:  # a resample where a score is undefined (e.g. no true power): skip it
            continue
    if len(draws) < n_boot:
        log.warning(
            "bootstrap: %d of %d resamples had an undefined score and were left out",
            n_boot - len(draws),
            n_boot,
        )
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = {}
    for k, v in full.items():
        vals = np.array([d[k] for d in draws if k in d])
        lo, hi = np.percentile(vals, q) if vals.size else (np.nan, np.nan)
        out[k] = Interval(v, float(lo), float(hi), level)
    return out
