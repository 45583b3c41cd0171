"""torchmetrics metrics over ``physics``, computed on maps in physical units.

Spectral metrics accumulate per-bin sums of ``P_pred``, ``P_true`` and ``P_cross`` (in units
of ``k_F``, so maps of different pixel scale share bins) with ``sum`` reduction: dataset
ratios are ratios of sums and DDP synchronisation is exact. Per-map scores accumulate a
sum and a count. The pixel-distribution distance accumulates histograms of ``log10``
values on fixed edges. Every metric is lower-is-better and 0 for a perfect prediction.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric

import physics

__all__ = [
    "CrossCorrelationError",
    "HalfMassRadiusError",
    "HalfMassRadiusErrorDex",
    "HalfMassRadiusErrors",
    "MassBiasDex",
    "MassErrorDex",
    "PixelW1Dex",
    "PowerSpectrumError",
    "ProfileErrorDex",
    "RelativeMassError",
    "TransferFunctionError",
]

def _maps(x: torch.Tensor) -> torch.Tensor:
    """``(..., H, W)`` → ``(N, H, W)`` float64."""
    return x.detach().to(torch.float64).reshape(-1, *x.shape[-2:])


class _SpectralMetric(Metric):
    """Per-bin sums of auto and cross power for maps of a fixed ``shape`` ``(H, W)``.

    ``k_range`` is in units of ``k_F`` (default ``[3, min(H, W)/4]``, i.e. up to ``k_Nyq/2``).
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(
        self, shape: tuple[int, int], k_range: tuple[float, float | None] = (3.0, None), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        k_over_kf, _ = physics.mode_bins(shape)
        hi = min(shape[-2:]) / 4 if k_range[1] is None else k_range[1]
        use = torch.from_numpy((k_over_kf >= k_range[0]) & (k_over_kf <= hi))
        if not bool(use.any()):
            raise ValueError(f"k_range {k_range} selects no bins for maps of shape {tuple(shape)}")
        self.shape = tuple(shape[-2:])
        self.register_buffer("use", use, persistent=False)
        n = len(k_over_kf)
        for name in ("sum_pred", "sum_true", "sum_cross"):
            self.add_state(name, default=torch.zeros(n, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """``pred``, ``true``: ``(..., H, W)`` maps in physical units."""
        if tuple(pred.shape[-2:]) != self.shape:
            raise ValueError(
                f"{type(self).__name__} was built for {self.shape} maps, got {tuple(pred.shape[-2:])}"
            )
        cs = physics.cross_power(_maps(pred), _maps(true), 1.0)  # pixel units: bins are k/k_F
        self.sum_pred += cs.power_a.sum(0)
        self.sum_true += cs.power_b.sum(0)
        self.sum_cross += cs.cross.sum(0)

    def _in_range(self, values: torch.Tensor) -> torch.Tensor:
        keep = self.use & (self.sum_true > 0)
        if not bool(keep.any()):
            raise ValueError("the truth has no power in k_range: the spectral error is undefined")
        return values[keep]


class PowerSpectrumError(_SpectralMetric):
    """Mean over bins in range of ``|log10 ΣP_pred / ΣP_true|`` [dex] (ratio floored at
    ``physics.POWER_RATIO_FLOOR``)."""

    def compute(self) -> torch.Tensor:
        """Mean ``|log10 ΣP_pred / ΣP_true|`` [dex] over the bins in ``k_range``: a float64 scalar."""
        return self._in_range(physics.log_power_ratio(self.sum_pred, self.sum_true).abs()).mean()


class CrossCorrelationError(_SpectralMetric):
    """Mean over bins in range of ``1 − r(k)``, ``r = ΣP_× / sqrt(ΣP_pred ΣP_true)`` (a prediction without power has r = 0)."""

    def compute(self) -> torch.Tensor:
        """Mean ``1 − r(k)`` over the bins in ``k_range``: a float64 scalar."""
        r = physics.correlation_from_power(self.sum_cross, self.sum_pred, self.sum_true, empty=0.0)
        return self._in_range(1 - r).mean()


class TransferFunctionError(_SpectralMetric):
    """Mean over bins in range of ``|log10 T(k)|`` [dex], ``T = sqrt(ΣP_pred / ΣP_true)``.

    Symmetric in over- and under-prediction (``T`` and ``1/T`` score the same); bin by bin
    it is half of ``PowerSpectrumError``, which is why the composite score leaves it out.
    """

    def compute(self) -> torch.Tensor:
        """Mean ``|log10 T(k)|`` [dex] over the bins in ``k_range``: a float64 scalar."""
        return self._in_range(0.5 * physics.log_power_ratio(self.sum_pred, self.sum_true).abs()).mean()


class _PerMapMean(Metric):
    """Mean over maps of a per-map score (sum and count states)."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """``pred``, ``true``: ``(..., H, W)`` maps in physical units."""
        values = self.score(_maps(pred), _maps(true))
        self.total += values.sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.count


class RelativeMassError(_PerMapMean):
    """Mean ``|M_pred/M_true − 1|`` (dimensionless; asymmetric: a reported column, not scored)."""

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Per-map ``|M_pred/M_true − 1|`` ``(N,)`` for float64 maps ``(N, H, W)`` (physical units)."""
        return physics.relative_mass_error(pred, true).abs()


class MassErrorDex(_PerMapMean):
    """Mean ``|log10 M_pred/M_true|`` [dex] (symmetric; the pixel area cancels)."""

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Per-map ``|log10 M_pred/M_true|`` [dex] ``(N,)`` for float64 maps ``(N, H, W)``."""
        return physics.mass_log_error(pred, true).abs()


class MassBiasDex(_PerMapMean):
    """Mean signed ``log10 M_pred/M_true`` [dex]: > 0 over-, < 0 under-predicts mass."""

    higher_is_better = None

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Per-map signed ``log10 M_pred/M_true`` [dex] ``(N,)`` for float64 maps ``(N, H, W)``."""
        return physics.mass_log_error(pred, true)


class ProfileErrorDex(_PerMapMean):
    """Mean over maps of ``physics.profile_error_dex`` [dex] (annuli with Σ_true > 1e-3 max)."""

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Per-map radial-profile error [dex] ``(N,)`` for maps ``(N, H, W)`` (``pred`` clamped at 0)."""
        return physics.profile_error_dex(pred.clamp(min=0), true)


class HalfMassRadiusError(_PerMapMean):
    """Mean ``|R50_pred/R50_true − 1|`` about the map centre (dimensionless; a reported column)."""

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Per-map ``|R50_pred/R50_true − 1|`` ``(N,)`` for maps ``(N, H, W)`` (``pred`` clamped at 0)."""
        return physics.r50_error(pred.clamp(min=0), true).abs()


class HalfMassRadiusErrorDex(_PerMapMean):
    """Mean ``|log10 R50_pred/R50_true|`` [dex] about the map centre (symmetric)."""

    def score(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Per-map ``|log10 R50_pred/R50_true|`` [dex] ``(N,)`` for maps ``(N, H, W)`` (pred clamped at 0)."""
        return physics.r50_log_error(pred.clamp(min=0), true).abs()


class HalfMassRadiusErrors(Metric):
    """Both R50 columns from one R50 pair per map: ``compute`` gives ``{"r50_dex": mean
    |log10 R50_pred/R50_true| [dex], "r50_rel": mean |R50_pred/R50_true − 1|}``.

    The same numbers as ``HalfMassRadiusErrorDex`` and ``HalfMassRadiusError`` at half their
    cost together (the R50 search is most of the metrics' time); sum states,
    so bootstrap resampling and DDP reduction are exact.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("total_dex", "total_rel", "count"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """``pred``, ``true``: ``(..., H, W)`` maps in physical units (``pred`` clamped at 0)."""
        rel, dex = physics.r50_errors(_maps(pred).clamp(min=0), _maps(true))
        self.total_dex += dex.abs().sum()
        self.total_rel += rel.abs().sum()
        self.count += rel.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        return {"r50_dex": self.total_dex / self.count, "r50_rel": self.total_rel / self.count}


class PixelW1Dex(Metric):
    """Wasserstein-1 [dex] between the pooled ``log10`` pixel distributions of prediction and truth.

    Histograms on fixed edges (``value_range`` in dex, ``bins``) are summed over batches and
    processes; W1 is ``Σ |CDF_pred − CDF_true| Δ`` over the edges (exact to the bin width).
    Zero (and negative) pixels are excluded; their fractions are kept in the state.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, value_range: tuple[float, float], bins: int = 400, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        lo, hi = value_range
        if not hi > lo or bins < 1:
            raise ValueError(
                f"PixelW1Dex: need value_range (lo, hi) with hi > lo and bins >= 1, got {value_range}, {bins}"
            )
        self.register_buffer("edges", torch.linspace(lo, hi, bins + 1, dtype=torch.float64), persistent=False)
        for name in ("hist_pred", "hist_true"):
            self.add_state(name, default=torch.zeros(bins, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("zeros_pred", "zeros_true", "pixels"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def _hist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _maps(x)
        dist = physics.pixel_distribution(x.clamp(min=0), edges=self.edges.cpu())
        return torch.as_tensor(dist.counts).to(self.edges).sum(0), (x <= 0).sum().to(torch.float64)

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """Add the ``log10`` pixel histograms and zero-pixel counts of ``pred``, ``true`` ``(..., H, W)``
        in physical units."""
        hp, zp = self._hist(pred)
        ht, zt = self._hist(true)
        self.hist_pred += hp
        self.hist_true += ht
        self.zeros_pred += zp
        self.zeros_true += zt
        self.pixels += float(_maps(true).numel())

    def compute(self) -> torch.Tensor:
        """W1 [dex] between the pooled histograms (float64 scalar); the whole ``value_range`` width when
        no predicted pixel falls inside it."""
        if float(self.hist_true.sum()) == 0:
            raise ValueError("PixelW1Dex: no positive true pixel inside value_range")
        if float(self.hist_pred.sum()) == 0:
            return torch.tensor(
                float(self.edges[-1] - self.edges[0]), dtype=torch.float64
            )  # all mass outside: maximal
        cp = torch.cumsum(self.hist_pred, 0) / self.hist_pred.sum()
        ct = torch.cumsum(self.hist_true, 0) / self.hist_true.sum()
        return ((cp - ct).abs() * torch.diff(self.edges)).sum()
