"""Preemption: SIGTERM mid-epoch → ``last.ckpt`` at the step reached → resume → the same losses;
and checkpoints are written atomically."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from app.data import GalaxyDataModule
from app.families import Diffusion, DiffusionMamba, InDI, Pix2Pix
from app.families.callbacks import AtomicCheckpointIO
from validation import PhysicsCheckpoint

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}


class Record(Callback):
    """Training losses, and a SIGTERM to this process after global step ``term_at``."""

    def __init__(self, term_at: int | None = None) -> None:
        self.values: list[float] = []
        self.term_at = term_at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(trainer.callback_metrics["train/loss"]))
        if trainer.global_step == self.term_at:
            os.kill(os.getpid(), signal.SIGTERM)


def _fit(root: Path, mock_dir: Path, record: Record, ckpt: Path | None = None) -> L.Trainer:
    L.seed_everything(5)
    dm = GalaxyDataModule(data=str(mock_dir), source="dm", targets=["gas"], size=16, batch_size=4, seed=0,
                          split=(0.5, 0.25, 0.25))  # fmt: skip
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        deterministic=True, num_sanity_val_steps=0, max_epochs=2, limit_train_batches=4,
                        limit_val_batches=1, default_root_dir=root,
                        callbacks=[record, PhysicsCheckpoint(dirpath=root, save_top_k=1)])  # fmt: skip
    trainer.fit(InDI(net=NET, lr=1e-3), datamodule=dm, ckpt_path=ckpt)
    return trainer


def test_sigterm_mid_epoch_saves_and_resumes_with_the_same_losses(mock_dir, tmp_path):
    full = Record()
    _fit(tmp_path / "full", mock_dir, full)
    assert len(full.values) == 8
    cut = Record(term_at=3)  # mid-epoch 0 (4 batches per epoch)
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException, after the current batch
        _fit(tmp_path / "cut", mock_dir, cut)
    assert cut.values == full.values[:3]
    last = torch.load(tmp_path / "cut" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3 and last["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "batches": 3, "maps": 12}]
    resumed = Record()
    _fit(tmp_path / "cut", mock_dir, resumed, tmp_path / "cut" / "last.ckpt")
    assert resumed.values == pytest.approx(full.values[3:], rel=1e-6, abs=0)
    assert sorted(p.name for p in (tmp_path / "cut").glob("last*.ckpt")) == ["last.ckpt"]  # refreshed, not versioned


class TermAt(Callback):
    """SIGTERM to this process once the global step reaches ``step``; records when."""

    def __init__(self, step: int) -> None:
        self.step, self.sent_at, self.sent_step = step, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.sent_at is None and trainer.global_step >= self.step:
            self.sent_at, self.sent_step = time.perf_counter(), trainer.global_step
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("family", [
    lambda: InDI(net=NET), lambda: Pix2Pix(net=NET, discriminator={"base_channels": 8, "n_layers": 2}),
    lambda: Diffusion(net=NET, steps=2, sampler="euler"),
    lambda: DiffusionMamba(net={**NET, "mamba_d_state": 4}, steps=2, sampler="euler"),
], ids=["indi", "pix2pix", "diffusion", "dim"])  # fmt: skip
def test_every_family_stops_within_10_s_of_sigterm_with_a_resumable_checkpoint(family, mock_dir, tmp_path):
    term = TermAt(2)
    dm = GalaxyDataModule(data=str(mock_dir), source="dm", targets=["gas"], size=16, batch_size=4, seed=0,
                          split=(0.5, 0.25, 0.25))  # fmt: skip
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        num_sanity_val_steps=0, max_epochs=3, limit_val_batches=1, default_root_dir=tmp_path,
                        callbacks=[term, PhysicsCheckpoint(dirpath=tmp_path, save_top_k=1)])  # fmt: skip
    with pytest.raises(SystemExit):
        trainer.fit(family(), datamodule=dm)
    stopped = time.perf_counter() - term.sent_at
    assert stopped < 10.0, f"stopped {stopped:.1f} s after SIGTERM"
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["global_step"] == term.sent_step


def test_a_failed_checkpoint_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, target)
    good = target.read_bytes()

    def half_then_full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_full_disk)
    with pytest.raises(OSError, match=r"could not write checkpoint .*last.ckpt \(No space left on device\); the previous"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, target)
    assert target.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
