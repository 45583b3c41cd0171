"""DDP is the same training: 2 CPU processes (gloo) with per-rank batches of 2 make the optimizer
steps of one process with batches of 4 (data shards, per-map noise, gradient sync, EMA, both
players of pix2pix), and a DDP run stopped by SIGTERM mid-epoch resumes as if never stopped
(ranks started from outside, as torchrun and SLURM start them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from app.data import GalaxyDataModule
from app.families import Diffusion, InDI, Pix2Pix
from validation import PhysicsCheckpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}
FAMILIES = {
    "indi": lambda: InDI(net=NET, lr=1e-3, eps0=0.2),
    "diffusion": lambda: Diffusion(net=NET, lr=1e-3, steps=2, sampler="euler"),
    "pix2pix": lambda: Pix2Pix(net=NET, lr=1e-3, discriminator={"base_channels": 8, "n_layers": 2}),
}


def _fit(family: str, root: Path, mock_dir: Path, devices: int, epochs: int = 1, batches: int = 3,
         ckpt: Path | None = None) -> dict:  # fmt: skip
    """Fit with a global batch of 4 (4 per process on one, 2 per rank on two); ``last.ckpt``."""
    L.seed_everything(5)
    dm = GalaxyDataModule(data=str(mock_dir), source="dm", targets=["gas"], size=16, batch_size=4 // devices,
                          seed=0, split=(0.5, 0.25, 0.25))  # fmt: skip
    callbacks = [PhysicsCheckpoint(dirpath=root, save_top_k=1)]
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        devices=devices, strategy="ddp_spawn" if devices > 1 else "auto", deterministic=True,
                        num_sanity_val_steps=0, max_epochs=epochs, limit_train_batches=batches,
                        limit_val_batches=1, default_root_dir=root, callbacks=callbacks)  # fmt: skip
    trainer.fit(FAMILIES[family](), datamodule=dm, ckpt_path=ckpt)
    return torch.load(root / "last.ckpt", weights_only=False)


def _outputs(family: str, state: dict) -> list[torch.Tensor]:
    """What the weights compute: the generated maps of a fixed input (and pix2pix's critic on them)."""
    model = FAMILIES[family]()
    model.load_state_dict(state)
    g = torch.Generator().manual_seed(0)
    src = torch.randn(2, 1, 16, 16, generator=g)
    with torch.no_grad():
        out = model.eval().generate(src, generator=g, noise=torch.randn(2, 1, 16, 16, generator=g))
        return [out] + ([model.discriminator(src, out)] if family == "pix2pix" else [])


def _assert_same_training(family: str, a: dict, b: dict) -> None:
    """Same step count, and raw and EMA weights that compute the same maps. (Weights are not
    compared one by one: a bias just before a GroupNorm of one channel per group has no
    gradient but round-off, which Adam scales to steps of any sign; it changes no output.)"""
    assert a["global_step"] == b["global_step"]
    for key in ("state_dict", "current_model_state"):  # EMA and raw weights
        assert a[key].keys() == b[key].keys()
        for x, y in zip(_outputs(family, a[key]), _outputs(family, b[key]), strict=True):
            torch.testing.assert_close(y, x, rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_ddp_processes_make_the_steps_of_one_with_the_same_global_batch(family, mock_dir, tmp_path):
    one = _fit(family, tmp_path / "one", mock_dir, devices=1)
    two = _fit(family, tmp_path / "two", mock_dir, devices=2)
    _assert_same_training(family, one, two)
    untrained = _outputs(family, FAMILIES[family]().state_dict())
    moved = float((_outputs(family, one["current_model_state"])[0] - untrained[0]).abs().max())
    assert moved > 1e-2  # 3 steps moved the maps 200× the tolerance: not two untrained models agreeing


def _torchrun(mock_dir: Path, root: Path, ckpt: Path | None = None, term_at: int = 0) -> list[int]:
    """Start ``tests/ddp_worker.py`` as 2 ranks the way torchrun does (torchelastic's variables,
    so Lightning launches nothing itself); their exit codes."""
    port = _free_port()
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "TORCHELASTIC_RUN_ID": "galchemy-test", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "GROUP_RANK": "0", "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}  # fmt: skip
        args = [sys.executable, str(WORKER), str(mock_dir), str(root), str(ckpt or "none"), str(term_at)]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    codes = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a DDP rank hung (SIGTERM handling out of step between ranks?)") from None
        codes.append(p.returncode)
        assert p.returncode == 0 or term_at, err.decode()[-3000:]
    return codes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_sigterm_mid_epoch_saves_and_resumes_like_an_uninterrupted_run(mock_dir, tmp_path):
    """Both ranks get SIGTERM after step 2 of epoch 0's 4 (as SLURM signals every task): they stop
    within the step with ``last.ckpt`` at step 2, and resuming it under DDP ends where an
    uninterrupted DDP run ends (the sharded order survives the mid-epoch resume)."""
    _torchrun(mock_dir, tmp_path / "full")
    _torchrun(mock_dir, tmp_path / "cut", term_at=2)
    cut = torch.load(tmp_path / "cut" / "last.ckpt", weights_only=False)
    assert cut["global_step"] == 2
    # per rank 2 batches of 2 maps: 8 maps of the epoch's order consumed by the two ranks
    assert cut["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "batches": 2, "maps": 8}]
    shutil.copy(tmp_path / "cut" / "last.ckpt", tmp_path / "step2.ckpt")
    _torchrun(mock_dir, tmp_path / "cut", ckpt=tmp_path / "cut" / "last.ckpt")
    full = torch.load(tmp_path / "full" / "last.ckpt", weights_only=False)
    resumed = torch.load(tmp_path / "cut" / "last.ckpt", weights_only=False)
    assert full["global_step"] == resumed["global_step"] == 8  # 2 epochs of 4 steps
    assert sorted(p.name for p in (tmp_path / "cut").glob("last*.ckpt")) == ["last.ckpt"]  # refreshed, not versioned
    _assert_same_training("indi", full, resumed)
    # the same checkpoint resumed on ONE process (batch 4 = the global batch) skips the same 8
    # maps and ends where an uninterrupted single-process run ends
    one = _fit("indi", tmp_path / "one", mock_dir, devices=1, epochs=2, batches=4)
    on_one = _fit("indi", tmp_path / "on-one", mock_dir, devices=1, epochs=2, batches=4, ckpt=tmp_path / "step2.ckpt")
    _assert_same_training("indi", one, on_one)
