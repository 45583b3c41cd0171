"""What the physics metrics add to a validation epoch of the quickstart.

Usage: ``python benchmarks/bench_metrics.py [--ckpt runs/quickstart/.../last.ckpt] [--repeat 3]``

Times ``trainer.validate`` on the quickstart's data and model (InDI, dm → gas, 64²,
``val_maps`` covering the whole validation split) three ways in one run: with the metrics,
with the metric updates switched off (maps still generated), and without generating at
all; reports the metrics' share of the epoch. Best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import logging
import time

import lightning as L
import torch

from app.data import GalaxyDataModule
from app.families import InDI


def _validate(model, dm) -> float:
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)  # fmt: skip
    t0 = time.perf_counter()
    trainer.validate(model, datamodule=dm, verbose=False)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mock-dir", default="data/mock")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    dm = GalaxyDataModule(source="dm", targets=["gas"], size=64, batch_size=16, mock_dir=args.mock_dir,
                          mock_galaxies=80, mock_size=128, seed=0)  # fmt: skip
    dm.prepare_data()
    model = (
        InDI.load_from_checkpoint(args.ckpt)
        if args.ckpt
        else InDI(net={"block": "residual", "base_channels": 16, "channel_mults": [1, 2, 4]}, steps=4)
    )
    model.hparams.val_maps = 10_000
    spent = {"t": 0.0}

    def timed(fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            spent["t"] += time.perf_counter() - t0
            return out

        return wrapper

    _validate(model, dm)  # warm-up (and transforms fitted)
    model._update_metrics = timed(model._update_metrics)
    model.on_validation_epoch_end = timed(model.on_validation_epoch_end)
    shares, epochs = [], []
    for _ in range(args.repeat):
        spent["t"] = 0.0
        total = _validate(model, dm)
        shares.append(spent["t"] / total)
        epochs.append(total)
    model.hparams.val_maps = 0
    no_generation = min(_validate(model, dm) for _ in range(args.repeat))
    n = len(dm.datasets["val"])
    print(
        f"# quickstart validation split: {n} maps of 64^2, InDI 4 steps, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"validation epoch without generating (loss only): {no_generation:7.3f} s")
    print(f"validation epoch with generation and metrics:     {min(epochs):7.3f} s (best of {args.repeat})")
    print(
        f"time inside the metrics (update + compute):       {100 * min(shares):5.1f}% - {100 * max(shares):5.1f}% of the epoch (goal <= 10%)"
    )


if __name__ == "__main__":
    main()
