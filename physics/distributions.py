"""One-point statistics: pixel distributions on log bins and distances between them.

Histograms are of ``log10(x)`` for positive pixels, on shared edges; exact zeros (empty
pixels, common at the edges of star and HI maps) are reported as ``zero_fraction`` rather
than hidden by a floor. Negative values under a log raise.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from physics._arrays import as_map, give_back
from physics._kernels import check_log_domain, paired_distance

__all__ = ["PixelDistribution", "ks_distance", "pixel_distribution", "wasserstein_1"]


class PixelDistribution(NamedTuple):
    """Histogram of ``log10`` pixel values.

    Attributes:
        edges: ``(n_bins + 1,)`` bin edges in dex of the map unit.
        density: ``(..., n_bins)`` probability density per dex of the positive pixels.
        counts: ``(..., n_bins)`` pixel counts.
        zero_fraction: ``(...,)`` fraction of pixels that are exactly zero.
    """

    edges: Any
    density: Any
    counts: Any
    zero_fraction: Any


def pixel_distribution(
    field: Any, bins: int = 50, *, edges: Any = None, value_range: tuple[float, float] | None = None
) -> PixelDistribution:
    """Histogram of ``log10(field)`` over the positive pixels of each map ``(..., H, W)``.

    Args:
        bins: number of equal bins in dex (ignored if ``edges`` is given).
        edges: explicit edges in dex (e.g. taken from the true set, to compare sets).
        value_range: ``(lo, hi)`` in dex; default: the min/max over all positive pixels.
    """
    t, boundary = as_map(field, "field")
    check_log_domain(t, "field")
    positive = t > 0
    if edges is not None:
        e = torch.as_tensor(edges, dtype=torch.float64, device=t.device).flatten()
        if e.numel() < 2 or bool((torch.diff(e) <= 0).any()):
            raise ValueError("edges must be at least two strictly increasing values (dex)")
    else:
        if not bool(positive.any()):
            raise ValueError("field has no positive pixels: give edges or value_range")
        if value_range is None:
            logs = torch.log10(t[positive])
            lo, hi = float(logs.min()), float(logs.max())
            if hi == lo:
                lo, hi = lo - 0.5, hi + 0.5
        else:
            lo, hi = map(float, value_range)
            if not hi > lo:
                raise ValueError(f"value_range must be (lo, hi) with hi > lo, got {value_range}")
        if bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins}")
        e = torch.linspace(lo, hi, bins + 1, dtype=torch.float64, device=t.device)
    n_bins = e.numel() - 1
    logs = torch.log10(torch.where(positive, t, 1.0))
    idx = _bin_index(logs, e)
    idx = torch.where(logs == e[-1], n_bins - 1, idx)  # include the right edge
    valid = positive & (idx >= 0) & (idx < n_bins)
    batch = t.shape[:-2]
    flat_idx = torch.where(valid, idx, n_bins).reshape(-1, t.shape[-2] * t.shape[-1])
    counts = torch.zeros(flat_idx.shape[0], n_bins + 1, dtype=torch.float64, device=t.device)
    counts.scatter_add_(1, flat_idx, torch.ones_like(flat_idx, dtype=torch.float64))
    counts = counts[:, :n_bins].reshape(*batch, n_bins)
    n_pos = positive.sum(dim=(-2, -1)).to(torch.float64)
    width = torch.diff(e)
    density = counts / torch.where(n_pos > 0, n_pos, 1.0)[..., None] / width
    zero_fraction = (t == 0).sum(dim=(-2, -1)) / float(t.shape[-2] * t.shape[-1])
    return PixelDistribution(
        edges=give_back(e, boundary),
        density=give_back(density, boundary),
        counts=give_back(counts, boundary),
        zero_fraction=give_back(zero_fraction.to(torch.float64), boundary),
    )


def _bin_index(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``searchsorted(edges, values, right=True) − 1``: the bin of each value, −1 below the first
    edge, ``n`` at or above the last (``n`` bins). Evenly spaced edges (``torch.linspace``) are
    indexed arithmetically, then moved by one bin where rounding put a value next to its bin
    (tested equal to ``searchsorted`` on values at and around every edge and ±∞); other edges are
    searched. ``values`` must not be NaN (the maps are checked finite before)."""
    n = edges.numel() - 1
    lo, hi = edges[0], edges[-1]
    step = (hi - lo) / n
    even = torch.linspace(float(lo), float(hi), n + 1, dtype=edges.dtype, device=edges.device)
    if not bool(((edges - even).abs() <= 1e-9 * step).all()):
        return torch.searchsorted(edges, values.contiguous(), right=True) - 1
    guess = torch.floor((values - lo) / step).clamp(-1, n).to(torch.int64)
    inf = torch.full((1,), torch.inf, dtype=edges.dtype, device=edges.device)
    padded = torch.cat([-inf, edges, inf])  # padded[i + 1] = edges[i]
    guess = torch.where(values < padded[guess + 1], guess - 1, guess)  # edges[guess] > value: one down
    return torch.where(values >= padded[guess + 2], guess + 1, guess).clamp(max=n)  # edges[guess + 1] <= value: up


def wasserstein_1(a: Any, b: Any, *, log: bool = True, per_map: bool = False) -> Any:
    """Wasserstein-1 distance between the pixel distributions of ``a`` and ``b``.

    With ``log=True`` (default) it compares ``log10`` of the positive pixels and is in dex;
    zeros are excluded (see :func:`pixel_distribution` for their fraction). With
    ``per_map=False`` all maps of each argument are pooled (a set-vs-set distance, the
    two sets may differ in size); with ``per_map=True`` it returns one value per map pair.

    Args:
        a, b: maps ``(..., H, W)`` (any batch shapes when pooled; equal batch shapes per map).

    Returns:
        A scalar (pooled) or ``(...,)`` (per map), in dex (map units with ``log=False``).
    """
    return paired_distance(a, b, log, per_map, "w1")


def ks_distance(a: Any, b: Any, *, log: bool = True, per_map: bool = False) -> Any:
    """Kolmogorov–Smirnov statistic ``sup |F_a − F_b|`` between pixel distributions.

    Dimensionless, in [0, 1]; arguments and shapes as in :func:`wasserstein_1`.
    """
    return paired_distance(a, b, log, per_map, "ks")
