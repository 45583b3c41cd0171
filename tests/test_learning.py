"""Every family learns: a short run on gas → HI beats the log-mean-map baseline.

A regression in training (a broken loss, sampler, EMA or data path) makes a family no
better than ignoring its input; this catches it in CI. Small on purpose: 32² maps, a tiny
U-Net, a few dozen optimiser steps per family.

All the families are here (residual diffusion since it was added). The diffusion families joined in wave 2, step 2, when HI moved
to the power transform (before it, at 400 steps EDM diffusion scored 3.73 against the mean
map's 3.47 and Diffusion Mamba 6.9); they take more optimiser steps than the regressions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import pytest

from app.data import GalaxyDataModule, write_mock_set
from app.families import BaselineModel, Diffusion, DiffusionMamba, InDI, Pix2Pix, ResidualDiffusion

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}
FAMILIES = {
    "indi": lambda: InDI(net=NET, steps=1, lr=3e-3, ema_decay=0.9, val_maps=1000),
    "pix2pix": lambda: Pix2Pix(net=NET, discriminator={"base_channels": 8, "n_layers": 2}, lr=2e-3,
                               ema_decay=0.9, val_maps=1000),
}
DIFFUSION = {"sampler": "dpmpp_2m", "steps": 8, "lr": 3e-3, "ema_decay": 0.9, "val_maps": 1000}
FAMILIES["diffusion"] = lambda: Diffusion(net=NET, **DIFFUSION)
FAMILIES["dim"] = lambda: DiffusionMamba(net={**NET, "block": "mamba", "mamba_d_state": 4}, **DIFFUSION)
FAMILIES["residual"] = lambda: ResidualDiffusion(net=NET, **DIFFUSION)
STEPS = {"indi": 80, "pix2pix": 80, "diffusion": 240, "dim": 240, "residual": 240}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    logging.getLogger("app").setLevel(logging.ERROR)
    return write_mock_set(tmp_path_factory.mktemp("learn") / "set", galaxies=16, size=32, progress=False)


def _dm(data: Path) -> GalaxyDataModule:
    return GalaxyDataModule(data=str(data), source="gas", targets=["hi"], size=32, batch_size=8, seed=0)


def _trainer(tmp_path: Path, **kw) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, default_root_dir=tmp_path, deterministic=True, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def mean_map_score(data, tmp_path_factory) -> float:
    out = _trainer(tmp_path_factory.mktemp("mm")).validate(BaselineModel("mean_map", val_maps=1000), datamodule=_dm(data))
    return out[0]["val/physics_score"]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_short_run_beats_the_mean_map(data, mean_map_score, family, tmp_path):
    L.seed_everything(0)
    model = FAMILIES[family]()
    dm = _dm(data)
    steps = STEPS[family] * (2 if family == "pix2pix" else 1)  # pix2pix counts both players' steps
    _trainer(tmp_path, max_steps=steps, limit_val_batches=0).fit(model, datamodule=dm)
    score = _trainer(tmp_path).validate(model, datamodule=dm)[0]["val/physics_score"]
    assert score < mean_map_score, (family, score, mean_map_score)
