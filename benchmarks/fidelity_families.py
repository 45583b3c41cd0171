"""Train a family on one mapping for a fixed CPU/GPU budget and score it on the test split.

Used by ``benchmarks/bench_fidelity.py --families …`` and ``benchmarks/bench_recipe.py``. A
recipe is ``configs/fidelity/<family>.yaml`` with the mapping's overlay
``<family>-<source>-<target>.yaml`` if there is one (both LightningCLI config files; their
``model`` and ``data.init_args`` sections are used); the data are the built-in mock at the
ladder's settings. The best ``val/physics_score`` checkpoint (``validation.PhysicsCheckpoint``) is
scored. With ``trace=True`` every validation also scores the current (EMA) weights on the
test maps, so the rank correlation of validation and test scores over epochs — how well
checkpoint selection generalises — can be measured.
"""

from __future__ import annotations

import copy
import importlib
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from scipy.stats import spearmanr

from app.data import GalaxyDataModule
from app.evaluation import predict_maps, report_data
from validation import PhysicsCheckpoint
from validation.report_scores import score_prediction

__all__ = ["MOCK_DIR", "TestTrace", "dotted", "load_recipe", "merge", "spearman", "split_data", "train_and_score"]

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "fidelity"
#: the repository's mock folder (as ``python -m app`` uses from the root), wherever a bench runs from
MOCK_DIR = str(Path(__file__).resolve().parents[1] / "data" / "mock")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursively for nested dicts (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def dotted(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` → ``{"a": {"b": 1}, "c": [1, 2]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def load_recipe(family: str, mapping: str | None = None) -> tuple[type, dict[str, Any], dict[str, Any]]:
    """(LightningModule class, model init_args, data init_args) of ``configs/fidelity/{family}.yaml``,
    updated by the mapping's overlay ``configs/fidelity/{family}-{source}-{target}.yaml`` when one
    exists (``mapping`` as ``source:target``). Both are LightningCLI config files."""
    path = RECIPES / f"{family}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in RECIPES.glob("*.yaml") if "-" not in p.stem)
        raise ValueError(f"no recipe {path}; choose one of {names}")
    doc = yaml.safe_load(path.read_text())
    if mapping is not None:
        overlay = RECIPES / f"{family}-{mapping.replace(':', '-')}.yaml"
        if overlay.is_file():
            doc = merge(doc, yaml.safe_load(overlay.read_text()))
    spec = doc["model"]
    module, _, name = spec["class_path"].rpartition(".")
    data = (doc.get("data") or {}).get("init_args", {})
    return getattr(importlib.import_module(module), name), dict(spec.get("init_args", {})), dict(data)


def split_data(
    source: str, target: str, size: int, data_args: dict[str, Any], state: dict | None = None
) -> GalaxyDataModule:
    """The mock's data module set up for its test split (``data_args`` over the built-in mock);
    ``state``: a checkpoint's data state, i.e. the transforms that model was trained with; ``data_args``
    may set ``seed`` (the mock realisation and split; 0 otherwise)."""
    dm = GalaxyDataModule(source=source, targets=[target], size=size, **{"seed": 0, "mock_dir": MOCK_DIR, **data_args})
    if state is not None:
        dm.load_state_dict(state)
    dm.prepare_data()
    dm.setup("test")
    return dm


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation of two equally long sequences (NaN for fewer than 3 or a constant one)."""
    if len(a) != len(b) or len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


class TestTrace(L.Callback):
    """After every validation, score the weights validation used (EMA) on the test maps.

    ``rows``: one dict per validation with ``epoch``, ``step``, ``val`` (``val/physics_score``)
    and ``test`` (the same score on the test split).
    """

    def __init__(self, dm: GalaxyDataModule, key: str, maps: dict[str, Any], data: Any) -> None:
        """``maps``: ``dm.maps("test")``; ``data``: its ``report_data`` (the truth), loaded once by the caller."""
        self.dm, self.key, self.rows = dm, key, []
        self._maps, self._data = maps, data

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Score the test maps while the EMA weights are swapped in (before Lightning swaps back)."""
        self._scores = None
        if trainer.sanity_checking:
            return
        maps = {"source": self._maps["source"].to(pl_module.device), "index": self._maps["index"]}
        pred = predict_maps(pl_module, self.dm.contract(), maps).physical.cpu().numpy()
        self._scores = score_prediction(self._data, pred, n_boot=1).scores

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the epoch's validation score (logged after the callbacks' epoch end) with its test score."""
        scores = getattr(self, "_scores", None)
        if scores is None or "val/physics_score" not in trainer.callback_metrics:
            return
        metrics = trainer.callback_metrics
        self.rows.append({"epoch": trainer.current_epoch, "step": trainer.global_step,
                          "val": float(metrics["val/physics_score"]), "test": float(scores[self.key].value),
                          "val_parts": {k[4:]: float(v) for k, v in metrics.items() if k.startswith("val/")},
                          "test_parts": {k: float(v.value) for k, v in scores.items()}})  # fmt: skip


def train_and_score(
    family: str,
    dm: GalaxyDataModule,
    minutes: float,
    n_boot: int,
    seed: int = 0,
    model_args: dict[str, Any] | None = None,
    trace: bool = False,
    keep: str | None = None,
) -> dict[str, Any]:
    """Train ``family`` on ``dm`` for ``minutes`` of wall time; scores of its best checkpoint on the test split,
    training seconds, optimiser steps, inference seconds per map, the kept best checkpoint's path
    (``keep``; else None) and the per-epoch trace if asked.

    ``model_args`` update the recipe's init_args (nested dicts merge); ``keep``: a folder that
    keeps the checkpoints (best and last) instead of a temporary one.
    """
    source, target = dm.source, dm.targets[0]
    cls, init_args, _ = load_recipe(family, f"{source}:{target}")
    init_args = merge(init_args, model_args or {})
    L.seed_everything(seed)
    model = cls(target_channels=len(dm.targets), **init_args)
    key = f"{dm.targets[0]}/physics_score"
    maps = dm.maps("test")  # the test maps and their truth, once, outside the training budget
    data = report_data(dm.contract(), "test", n_twins=1)
    tracer = TestTrace(dm, key, maps, data) if trace else None
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or scratch
        ckpt = PhysicsCheckpoint(dirpath=tmp, save_top_k=1)
        trainer = L.Trainer(accelerator="auto", devices=1, max_time=timedelta(minutes=minutes), max_epochs=-1,
                            logger=False, callbacks=[ckpt] + ([tracer] if tracer else []), enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp, deterministic=True,
                            num_sanity_val_steps=0)  # fmt: skip
        t0 = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        train_s = time.perf_counter() - t0
        best = (
            cls.load_from_checkpoint(ckpt.best_model_path, map_location="cpu")
            if ckpt.best_model_path
            else model
        )
        epoch = (
            torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)["epoch"]
            if ckpt.best_model_path
            else None
        )
    best = best.cpu().eval()
    t0 = time.perf_counter()
    pred = predict_maps(best, dm.contract(), maps).physical
    infer_s = (time.perf_counter() - t0) / len(pred)
    scores = score_prediction(data, pred.numpy(), n_boot).scores
    out = {"scores": scores, "train_s": train_s, "steps": trainer.global_step, "best_epoch": epoch,
           "infer_s_per_map": infer_s, "best_path": ckpt.best_model_path if keep else None}  # fmt: skip
    if tracer is not None:
        out["trace"] = tracer.rows
        out["rank_correlation"] = spearman([r["val"] for r in tracer.rows], [r["test"] for r in tracer.rows])
    return out
