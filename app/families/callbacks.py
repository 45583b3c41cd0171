"""The training machinery every family declares (``Translator.configure_callbacks``).

* ``ema(decay)``: Lightning's ``WeightAveraging`` with an exponential moving average that
  warms up as ``min(decay, (1 + n)/(10 + n))`` after ``n`` updates. Lightning swaps the
  averaged weights in for validation and writes them as the checkpoint's ``state_dict``
  (the raw weights go to ``current_model_state``, for resuming), so validation, test,
  prediction and ``load_from_checkpoint`` all use the EMA weights.
* ``AtomicCheckpoints``: checkpoints are written to a temporary file beside the target and
  renamed over it, so a kill, a full or a read-only disk never leaves half a checkpoint in
  place of a good one; a failed write raises an ``OSError`` naming the file.
* ``GlobalRNGState``: the global torch / numpy / Python RNG states, saved with every
  checkpoint and restored only when ``fit`` resumes from one, so a resumed run draws the
  same random numbers as an uninterrupted one. Loading a model for inference leaves the
  caller's RNG untouched.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import WeightAveraging

__all__ = ["AtomicCheckpointIO", "AtomicCheckpoints", "EMAAverage", "GlobalRNGState", "ema"]


class EMAAverage:
    """``avg_fn(averaged, current, n)`` of ``torch.optim.swa_utils.AveragedModel``: the EMA
    ``averaged + (1 − d)(current − averaged)`` with ``d = min(decay, (1 + n)/(10 + n))``;
    integer and boolean tensors (counters, flags) take the current value. A class, not a
    closure, so DDP can pickle it."""

    def __init__(self, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if not averaged.is_floating_point():
            return current
        # on n's device, in float64: no host sync per parameter (n lives with the averaged model)
        n = torch.as_tensor(n, dtype=torch.float64, device=averaged.device)
        weight = 1.0 - torch.clamp((1.0 + n) / (10.0 + n), max=self.decay)
        return averaged + weight * (current - averaged)


def ema(decay: float, strategy: Any = None) -> WeightAveraging:
    """Lightning's weight averaging with the warm-up EMA of ``EMAAverage`` (parameters and buffers).

    Raises:
        ValueError: under a sharded strategy (FSDP, DeepSpeed, ModelParallel): Lightning's weight averaging
            keeps a whole unsharded copy of the model on every rank and does not follow the
            sharded parameters.
    """
    name = type(strategy).__name__ if strategy is not None else ""
    if any(kind in name for kind in ("FSDP", "DeepSpeed", "ModelParallel")):
        raise ValueError(
            f"model.ema_decay={decay} needs an unsharded model, but the trainer's strategy is {name}: "
            "set --model.init_args.ema_decay 0 with FSDP (configs/strategies/fsdp.yaml does), or use DDP"
        )
    return WeightAveraging(avg_fn=EMAAverage(decay), use_buffers=True)


class GlobalRNGState(L.Callback):
    """Saves the global RNG states in each checkpoint; restores them when ``fit`` resumes."""

    def state_dict(self) -> dict[str, Any]:
        """The states as tensors and numbers (safe for ``weights_only`` loading)."""
        _, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 - the legacy global state is what code may use
        version, internal, gauss_next = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                       "gauss_next": gauss_next},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the global RNG states (called by Lightning only when ``fit`` resumes)."""
        torch.set_rng_state(state_dict["torch"])
        n = state_dict["numpy"]
        legacy = ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
        np.random.set_state(legacy)  # noqa: NPY002 - restoring the legacy global state
        p = state_dict["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``.{name}.tmp-{pid}`` in the target's folder, then ``os.replace``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically; OSError naming ``path`` when it cannot."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise OSError(f"could not write checkpoint {path} ({err.strerror or err}); "
                              "the previous file, if any, is unchanged") from err  # fmt: skip
            raise


class AtomicCheckpoints(L.Callback):
    """Puts ``AtomicCheckpointIO`` in place of the strategy's plain ``TorchCheckpointIO``."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Swap the checkpoint writer before anything is saved (a custom one is left alone)."""
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
