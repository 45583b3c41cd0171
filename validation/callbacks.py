"""Physics-based early stopping and checkpoint selection (Lightning presets on ``val/physics_score``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

__all__ = ["PhysicsCheckpoint", "PhysicsEarlyStopping"]

MONITOR = "val/physics_score"

#: Lightning version whose private ``ModelCheckpoint`` members ``PhysicsCheckpoint`` uses
#: (``LIGHTNING_PRIVATES``); ``tests/test_validation.py`` fails when one of them disappears.
CHECKED_WITH_LIGHTNING = "2.6.6"
LIGHTNING_PRIVATES = ("_should_skip_saving_checkpoint", "_save_last_checkpoint", "_monitor_candidates",
                      "_last_global_step_saved", "_should_save_on_train_epoch_end")  # fmt: skip


def _lightning_private(ckpt: ModelCheckpoint, name: str) -> Any:
    """The private member ``name`` of ``ckpt`` (one of ``LIGHTNING_PRIVATES``), with an error that
    names the Lightning version this was written against when it is gone."""
    try:
        return getattr(ckpt, name)
    except AttributeError:
        raise RuntimeError(
            f"PhysicsCheckpoint needs ModelCheckpoint.{name}, which this Lightning no longer has "
            f"(checked with lightning {CHECKED_WITH_LIGHTNING}); update validation/callbacks.py"
        ) from None


class PhysicsEarlyStopping(EarlyStopping):
    """Stop when ``val/physics_score`` (lower is better) has not improved for ``patience`` validations."""

    def __init__(
        self,
        monitor: str = MONITOR,
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "min",
        strict: bool = False,
        **kwargs: Any,
    ) -> None:
        # strict=False: a run that ends before its first validation (--trainer.max_steps=3,
        # fast_dev_run) warns that the score is missing instead of crashing
        super().__init__(
            monitor=monitor, patience=patience, min_delta=min_delta, mode=mode, strict=strict, **kwargs
        )


class PhysicsCheckpoint(ModelCheckpoint):
    """Keep the ``save_top_k`` checkpoints with the best ``val/physics_score``, plus ``last.ckpt``.

    Lightning writes ``last.ckpt`` only when a top-k checkpoint was written in the same step,
    so with a monitored score it would freeze at the best epoch; here it is refreshed after
    every validation, so a killed run resumes from where it was, not from its best epoch.

    Preemption: on SIGTERM (Lightning stops after the current batch) or Ctrl-C,
    ``last.ckpt`` is written at the step reached, with the loader's position in the epoch,
    so ``fit --ckpt_path last.ckpt`` continues with the next batch. A run that fails with
    an error (e.g. a non-finite loss) writes nothing: the last good checkpoint stays.
    """

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

    def _refresh_last(self, trainer) -> None:
        if self.save_last and not _lightning_private(self, "_should_skip_saving_checkpoint")(trainer):
            candidates = _lightning_private(self, "_monitor_candidates")(trainer)
            _lightning_private(self, "_save_last_checkpoint")(trainer, candidates)
            _lightning_private(self, "_last_global_step_saved")  # present before it is set
            self._last_global_step_saved = trainer.global_step

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """On SIGTERM or Ctrl-C, write ``last.ckpt`` at the step reached (every rank calls it), the
        way the epoch-end saves do: the callback's state records it as the last checkpoint, so a
        run resumed from it refreshes that file instead of starting ``last-v1.ckpt``."""
        if not isinstance(exception, (SIGTERMException, KeyboardInterrupt)) or not self.save_last:
            return
        if self.dirpath is None or trainer.sanity_checking or trainer.global_step == 0:
            return
        self._refresh_last(trainer)

    def _on_epoch_end(self, trainer) -> bool:
        return _lightning_private(self, "_should_save_on_train_epoch_end")(trainer)

    # Lightning saves in one of these two hooks (after validation, or at the end of the
    # training epoch); refresh last.ckpt in the same hook, after the top-k save.
    def on_validation_end(self, trainer, pl_module) -> None:
        """Lightning's top-k save after validation, then refresh ``last.ckpt`` if it saves there."""
        super().on_validation_end(trainer, pl_module)
        if not self._on_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Lightning's top-k save at the training epoch end, then refresh ``last.ckpt`` if it saves there."""
        super().on_train_epoch_end(trainer, pl_module)
        if self._on_epoch_end(trainer):
            self._refresh_last(trainer)
