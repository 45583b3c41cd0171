"""Baselines as a family: fitted on the training split at set-up, scored like any model.

``python -m app validate --config configs/baseline.yaml --model.init_args.method lookup``
scores a baseline on the validation split with exactly the metrics, transforms and
reports of the trained families (``validation.baselines`` holds the predictors).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from app.data.contract import DataContract, fit_picks
from app.data.transforms import MapTransform, make_transform
from app.families.base import Translator
from validation.baselines import BASELINES, Units, make_baseline

__all__ = ["BaselineModel", "FittedBaseline", "log_transforms"]


def log_transforms(data: DataContract, train: dict[str, Any]) -> dict[str, MapTransform]:
    """``log10`` transforms (automatic floor) of the source and target domains fitted on the
    physical training maps: the baselines' own working space, whatever the data's transforms."""
    picks = fit_picks(len(train["physical_source"]), data.fit_maps)  # the views the data's transforms saw
    stacks = {data.source: train["physical_source"][picks, None],
              **{d: train["physical_target"][picks][:, [c]] for c, d in enumerate(data.targets)}}  # fmt: skip
    return {d: make_transform(d, "log10", "log10").fit(lambda x=x: iter(x)) for d, x in stacks.items()}


class FittedBaseline:
    """A baseline fitted in its own log10 space, with a family's ``generate`` signature.

    ``generate`` takes and returns maps normalised by the *data's* transforms (so baselines go
    through ``generate_physical`` like any model); inside, the source is taken to physical
    units, then to the baselines' log10 space, and the prediction back. The baselines are
    therefore the same predictors whatever transforms a model was trained with.
    """

    def __init__(
        self, method: str, data: DataContract, bins: int = 64, train: dict[str, Any] | None = None,
        own: dict[str, MapTransform] | None = None,
    ) -> None:  # fmt: skip
        """``train``: ``data.maps("train")`` and ``own``: its ``log_transforms``, when the caller
        fits several baselines on the same split (computed here otherwise)."""
        train = data.maps("train") if train is None else train
        self.own = log_transforms(data, train) if own is None else own
        self.source, self.targets = data.source, list(data.targets)
        self.data_transforms = data.transforms
        # the source back to physical units exactly (no snap: the baseline was fitted on the read maps)
        self.data_source = dataclasses.replace(data.transforms[data.source], snap=False)
        units = Units(
            source_to_physical=lambda x: self.own[self.source].inverse(x),
            target_to_physical=lambda y: self._each(y, "inverse"),
            target_from_physical=lambda x: self._each(x, "forward"),
        )
        options = {"bins": bins} if method == "lookup" else {}
        self.baseline = make_baseline(method, units, **options)
        phys_source = train["physical_source"][:, None]
        self.baseline.fit(
            self.own[self.source].forward(phys_source), self._each(train["physical_target"], "forward")
        )

    def _each(
        self, x: torch.Tensor, how: str, transforms: dict[str, MapTransform] | None = None
    ) -> torch.Tensor:
        t = self.own if transforms is None else transforms
        return torch.stack([getattr(t[d], how)(x[:, c]) for c, d in enumerate(self.targets)], dim=1)

    def generate(self, source: torch.Tensor, generator=None, noise=None, **overrides: Any) -> torch.Tensor:
        """Prediction normalised by the data's transforms for ``source`` normalised by them."""
        own_source = self.own[self.source].forward(self.data_source.inverse(source.double()))
        physical = self._each(self.baseline.predict(own_source), "inverse")
        return self._each(physical, "forward", self.data_transforms).to(source.dtype)


class BaselineModel(Translator):
    """A trivial predictor (``method``: ``mean_map``, ``scaling``, ``log_linear``, ``lookup``).

    Fitted on the training split in ``setup``; use it with ``validate`` and ``test`` (and
    ``predict``). It has no weights to train: ``fit`` stops with an error.

    Args:
        method: which baseline (``validation.baselines.BASELINES``).
        bins: source bins of the lookup table.
        target_channels, val_maps, score_weights, sample_seed: as for every family
            (``Translator``); a baseline has no weights, so no ``lr`` and no EMA.
    """

    def __init__(
        self,
        method: str = "lookup",
        bins: int = 64,
        *,
        target_channels: int = 1,
        val_maps: int = 64,
        score_weights: dict[str, float] | None = None,
        sample_seed: int = 0,
    ) -> None:
        super().__init__(target_channels=target_channels, lr=0.0, ema_decay=0.0, val_maps=val_maps,
                         score_weights=score_weights, sample_seed=sample_seed)  # fmt: skip
        if method not in BASELINES:
            raise ValueError(f"model.method: unknown baseline {method!r}; choose one of {sorted(BASELINES)}")
        self.net = nn.Identity()
        self.fitted: FittedBaseline | None = None

    def setup(self, stage: str) -> None:
        """Take the data contract, then fit the baseline on the training split; ``fit`` is refused."""
        super().setup(stage)
        if stage == "fit":
            raise ValueError(
                "baselines are fitted on the training split, not trained: use validate, test or predict"
            )
        self.fitted = FittedBaseline(self.hparams.method, self.data, self.hparams.bins)

    def generate(self, source: torch.Tensor, generator=None, noise=None, **overrides: Any) -> torch.Tensor:
        """Normalised prediction ``(B, C, H, W)`` of the fitted baseline for normalised ``source``
        ``(B, 1, H, W)`` (deterministic: ``generator``/``noise`` are ignored)."""
        if self.fitted is None:
            raise RuntimeError("the baseline is not fitted (run it through a Trainer with a data module)")
        return self.fitted.generate(source)

    def validation_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error of the prediction in normalised units (logged as ``val/loss``)."""
        return torch.mean((self.generate(batch["source"]) - batch["target"]) ** 2)
