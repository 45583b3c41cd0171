"""Train a family on one mapping for a fixed CPU/GPU budget and score it on the test split.

Used by ``benchmarks/bench_fidelity.py --families …``. A recipe is the ``model:`` section of
``configs/fidelity/<family>.yaml``; the data are the built-in mock at the ladder's settings.
The best ``val/physics_score`` checkpoint (``validation.PhysicsCheckpoint``) is scored.
"""

from __future__ import annotations

import importlib
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml

from app.data import GalaxyDataModule
from app.evaluation import predict_maps, report_data
from validation import PhysicsCheckpoint
from validation.report_scores import score_prediction

__all__ = ["load_recipe", "train_and_score"]

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "fidelity"


def load_recipe(family: str) -> tuple[type, dict[str, Any]]:
    """(LightningModule class, init_args) of ``configs/fidelity/{family}.yaml``."""
    path = RECIPES / f"{family}.yaml"
    if not path.is_file():
        raise ValueError(f"no recipe {path}; choose one of {sorted(p.stem for p in RECIPES.glob('*.yaml'))}")
    spec = yaml.safe_load(path.read_text())["model"]
    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name), dict(spec.get("init_args", {}))


def train_and_score(family: str, dm: GalaxyDataModule, minutes: float, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Train ``family`` on ``dm`` for ``minutes`` of wall time; scores of its best checkpoint on the test split,
    training seconds, optimiser steps and inference seconds per map."""
    cls, init_args = load_recipe(family)
    L.seed_everything(seed)
    model = cls(target_channels=len(dm.targets), **init_args)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = PhysicsCheckpoint(dirpath=tmp, save_top_k=1)
        trainer = L.Trainer(accelerator="auto", devices=1, max_time=timedelta(minutes=minutes), max_epochs=-1,
                            logger=False, callbacks=[ckpt], enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir=tmp, deterministic=True, num_sanity_val_steps=0)  # fmt: skip
        t0 = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        train_s = time.perf_counter() - t0
        best = cls.load_from_checkpoint(ckpt.best_model_path, map_location="cpu") if ckpt.best_model_path else model
        epoch = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)["epoch"] if ckpt.best_model_path else None
    best = best.cpu().eval()
    maps = dm.maps("test")
    t0 = time.perf_counter()
    pred = predict_maps(best, dm, maps).physical
    infer_s = (time.perf_counter() - t0) / len(pred)
    data = report_data(dm, "test", n_twins=1)  # the truth and its metadata (references are cached)
    scores = score_prediction(data, pred.numpy(), n_boot).scores
    return {"scores": scores, "train_s": train_s, "steps": trainer.global_step, "best_epoch": epoch,
            "infer_s_per_map": infer_s}  # fmt: skip
