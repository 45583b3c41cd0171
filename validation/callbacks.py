"""Physics-based early stopping and checkpoint selection (Lightning presets on ``val/physics_score``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

__all__ = ["PhysicsCheckpoint", "PhysicsEarlyStopping"]

MONITOR = "val/physics_score"


class PhysicsEarlyStopping(EarlyStopping):
    """Stop when ``val/physics_score`` (lower is better) has not improved for ``patience`` validations."""

    def __init__(
        self,
        monitor: str = MONITOR,
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "min",
        **kwargs: Any,
    ) -> None:
        super().__init__(monitor=monitor, patience=patience, min_delta=min_delta, mode=mode, **kwargs)


class PhysicsCheckpoint(ModelCheckpoint):
    """Keep the ``save_top_k`` checkpoints with the best ``val/physics_score``, plus ``last.ckpt``."""

    def __init__(
        self,
        monitor: str = MONITOR,
        save_top_k: int = 3,
        mode: str = "min",
        save_last: bool = True,
        filename: str = "{epoch}-{step}-physics{val/physics_score:.4f}",
        auto_insert_metric_name: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            monitor=monitor, save_top_k=save_top_k, mode=mode, save_last=save_last, filename=filename,
            auto_insert_metric_name=auto_insert_metric_name, **kwargs,
        )  # fmt: skip
