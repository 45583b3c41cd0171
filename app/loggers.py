"""One logger for the configs: ``metrics.csv`` (read by the reports' training curves) and
TensorBoard event files, side by side in the same ``{save_dir}/{name}/version_N`` folder.

``tensorboard --logdir runs/quickstart/logs`` then shows every run's curves. Without the
``tensorboard`` package (a declared dependency, so only in unusual installs) it logs a
warning once and keeps writing the CSV.
"""

from __future__ import annotations

import logging
from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

__all__ = ["CurvesLogger"]

log = logging.getLogger(__name__)


class CurvesLogger(CSVLogger):
    """A ``CSVLogger`` that also writes TensorBoard events into its own version folder.

    Args:
        save_dir: root folder of the logs.
        name: sub-folder of the experiment (``{save_dir}/{name}/version_N``).
        version: the version (default: the next free one).
        tensorboard: also write TensorBoard event files.
    """

    def __init__(
        self, save_dir: str | Path, name: str = "logs", version: int | str | None = None, tensorboard: bool = True
    ) -> None:
        super().__init__(save_dir, name=name, version=version)
        self._want_tensorboard = tensorboard
        self._tensorboard: TensorBoardLogger | None = None

    @property
    def tensorboard(self) -> TensorBoardLogger | None:
        """The TensorBoard logger writing into ``log_dir`` (None when off or not installed)."""
        if self._tensorboard is None and self._want_tensorboard:
            try:
                self._tensorboard = TensorBoardLogger(
                    self.save_dir, name=self.name, version=self.version, default_hp_metric=False
                )
                self._tensorboard.experiment  # noqa: B018 - fails here when tensorboard is missing
            except (ImportError, ModuleNotFoundError) as err:
                log.warning("TensorBoard logging off (%s); metrics.csv is still written", err)
                self._want_tensorboard, self._tensorboard = False, None
        return self._tensorboard

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Write the metrics to ``metrics.csv`` and to TensorBoard."""
        super().log_metrics(metrics, step)
        if self.tensorboard is not None:
            self.tensorboard.log_metrics(metrics, step)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Record the hyper-parameters (``hparams.yaml``; TensorBoard's text summary)."""
        super().log_hyperparams(params)
        if self.tensorboard is not None:
            self.tensorboard.log_hyperparams(params)

    @rank_zero_only
    def save(self) -> None:
        """Flush both writers."""
        super().save()
        if self.tensorboard is not None:
            self.tensorboard.save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Close both writers."""
        super().finalize(status)
        if self._tensorboard is not None:
            self._tensorboard.finalize(status)
