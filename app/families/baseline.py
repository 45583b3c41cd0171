"""Baselines as a family: fitted on the training split at set-up, scored like any model.

``python -m app validate --config configs/baseline.yaml --model.init_args.method lookup``
scores a baseline on the validation split with exactly the metrics, transforms and
reports of the trained families (``validation.baselines`` holds the predictors).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from app.families.base import Translator
from validation.baselines import BASELINES, Baseline, Units, make_baseline

__all__ = ["BaselineModel", "FittedBaseline", "data_units", "fit_baseline"]


def data_units(dm: Any) -> Units:
    """Normalised ↔ physical conversions of a ``GalaxyDataModule``'s fitted transforms."""

    def from_physical(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([dm.transforms[d].forward(x[:, c]) for c, d in enumerate(dm.targets)], dim=1)

    return Units(
        source_to_physical=lambda x: dm.to_physical(x.double(), [dm.source]),
        target_to_physical=lambda y: dm.to_physical(y.double()),
        target_from_physical=from_physical,
    )


def fit_baseline(method: str, dm: Any, bins: int = 64, train: dict[str, Any] | None = None) -> Baseline:
    """Baseline ``method`` fitted on every (unaugmented) training view of ``dm``
    (``train``: ``dm.maps("train")``, if already loaded)."""
    options = {"bins": bins} if method == "lookup" else {}
    train = dm.maps("train") if train is None else train
    return make_baseline(method, data_units(dm), **options).fit(train["source"], train["target"])


class FittedBaseline:
    """A fitted baseline with a family's ``generate`` signature (for ``generate_physical``)."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def generate(self, source: torch.Tensor, generator=None, noise=None, **overrides: Any) -> torch.Tensor:
        return self.baseline.predict(source)


class BaselineModel(Translator):
    """A trivial predictor (``method``: ``mean_map``, ``scaling``, ``log_linear``, ``lookup``).

    Fitted on the training split in ``setup``; use it with ``validate`` and ``test`` (and
    ``predict``). It has no weights to train: ``fit`` stops with an error.

    Args:
        method: which baseline (``validation.baselines.BASELINES``).
        bins: source bins of the lookup table.
        target_channels, val_maps, score_weights, sample_seed: as for every family.
    """

    def __init__(
        self,
        method: str = "lookup",
        bins: int = 64,
        target_channels: int = 1,
        val_maps: int = 64,
        score_weights: dict[str, float] | None = None,
        sample_seed: int = 0,
    ) -> None:
        super().__init__()
        if method not in BASELINES:
            raise ValueError(f"model.method: unknown baseline {method!r}; choose one of {sorted(BASELINES)}")
        self.save_hyperparameters()
        self.net = nn.Identity()
        self._init_common(target_channels, 0.0)
        self.baseline: Baseline | None = None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            raise ValueError(
                "baselines are fitted on the training split, not trained: use validate, test or predict"
            )
        dm = self.trainer.datamodule
        self.baseline = fit_baseline(self.hparams.method, dm, self.hparams.bins)

    def generate(self, source: torch.Tensor, generator=None, noise=None, **overrides: Any) -> torch.Tensor:
        if self.baseline is None:
            raise RuntimeError("the baseline is not fitted (run it through a Trainer with a data module)")
        return self.baseline.predict(source)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error of the prediction in normalised units (logged as ``val/loss``)."""
        return torch.mean((self.generate(batch["source"]) - batch["target"]) ** 2)
