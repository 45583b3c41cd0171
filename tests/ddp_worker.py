"""One rank of a 2-process DDP fit launched from outside, as torchrun or SLURM start ranks
(``tests/test_ddp.py`` starts two with torchelastic's environment variables).

Usage: ``python tests/ddp_worker.py MOCK_DIR ROOT CKPT|none TERM_AT|0``: fits InDI on the mock for 2
epochs of 4 batches of 2 maps per rank, checkpoints into ROOT (``last.ckpt``), resumes from
CKPT, and sends SIGTERM to its own process after global step TERM_AT (each rank does, as a
scheduler signals every task).
"""

from __future__ import annotations

import os
import signal
import sys

import lightning as L
from lightning.pytorch.callbacks import Callback

from app.data import GalaxyDataModule
from app.families import InDI
from validation import PhysicsCheckpoint

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}


class TermAt(Callback):
    """SIGTERM to this rank's process after global step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def main(mock: str, root: str, ckpt: str, term_at: int) -> None:
    L.seed_everything(5)
    dm = GalaxyDataModule(data=mock, source="dm", targets=["gas"], size=16, batch_size=2, seed=0,
                          split=(0.5, 0.25, 0.25))  # fmt: skip
    callbacks = [PhysicsCheckpoint(dirpath=root, save_top_k=1)] + ([TermAt(term_at)] if term_at else [])
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        devices=2, strategy="ddp", deterministic=True, num_sanity_val_steps=0, max_epochs=2,
                        limit_train_batches=4, limit_val_batches=1, default_root_dir=root, callbacks=callbacks)  # fmt: skip
    trainer.fit(InDI(net=NET, lr=1e-3, eps0=0.2), datamodule=dm, ckpt_path=None if ckpt == "none" else ckpt)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
