"""What the physics metrics add to a validation epoch of the quickstart.

Usage: ``python benchmarks/bench_metrics.py [--ckpt runs/quickstart/.../last.ckpt] [--repeat 3]``
or ``python benchmarks/bench_metrics.py --family pix2pix --mapping gas:hi --ckpt runs/….ckpt``

Times ``trainer.validate`` on the mock at 64² (default: the quickstart's model, InDI
dm → gas; ``--family``/``--mapping``/``--ckpt`` choose another; ``val_maps`` covering the
whole validation split) two ways in one run: with generation and metrics, and without
generating at all; reports the share of the epoch spent inside the metrics (updates and
compute), best of ``--repeat``, and the time of one R50 search (16 maps of 64²), the
metrics' largest part.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import lightning as L
import torch

from app.data import GalaxyDataModule
from app.families import InDI, Pix2Pix
from validation import PhysicsMetrics

FAMILIES = {"indi": InDI, "pix2pix": Pix2Pix}


def _validate(model, dm) -> float:
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)  # fmt: skip
    t0 = time.perf_counter()
    trainer.validate(model, datamodule=dm, verbose=False)
    return time.perf_counter() - t0


def _r50_search_ms(repeat: int) -> float:
    """Best time [ms] of one R50 search (``physics._kernels.radius_at_fraction``) over 16 noisy
    exponential disks of 64² (seed 0), best of ``repeat`` × 5 calls."""
    from physics._kernels import radius_at_fraction

    g = torch.Generator().manual_seed(0)
    x = torch.arange(64, dtype=torch.float64) + 0.5 - 32
    disks = torch.exp(-torch.sqrt(x[:, None] ** 2 + x[None, :] ** 2) / 5)
    maps = disks * (1 + torch.rand(16, 64, 64, generator=g, dtype=torch.float64))
    centre, r_ap = torch.zeros(16, 2, dtype=torch.float64), torch.full((16,), 32.0, dtype=torch.float64)
    half = torch.tensor([0.5], dtype=torch.float64)
    radius_at_fraction(maps, centre, r_ap, half)
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(5):
            radius_at_fraction(maps, centre, r_ap, half)
        best = min(best, (time.perf_counter() - t0) / 5)
    return 1e3 * best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mock-dir", default="data/mock")
    p.add_argument("--family", choices=sorted(FAMILIES), default="indi")
    p.add_argument("--mapping", default="dm:gas", help="source:target")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    source, target = args.mapping.split(":")
    dm = GalaxyDataModule(source=source, targets=[target], size=64, batch_size=16, mock_dir=args.mock_dir,
                          mock_galaxies=80, mock_size=128, seed=0)  # fmt: skip
    dm.prepare_data()
    cls = FAMILIES[args.family]
    net = {"block": "residual", "base_channels": 16, "channel_mults": [1, 2, 4]}
    model = cls.load_from_checkpoint(args.ckpt) if args.ckpt else cls(net=net, **({"steps": 4} if cls is InDI else {}))
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
    PhysicsMetrics.update = timed(PhysicsMetrics.update)  # the class: each validate builds its metrics anew
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
        f"# validation split: {n} maps of 64^2, {args.family} {source} -> {target}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"validation epoch without generating (loss only): {no_generation:7.3f} s")
    print(f"validation epoch with generation and metrics:     {min(epochs):7.3f} s (best of {args.repeat})")
    print(
        f"time inside the metrics (update + compute):       {100 * min(shares):5.1f}% - {100 * max(shares):5.1f}% of the epoch (goal <= 10%)"
    )
    print(f"one R50 search, 16 maps of 64^2:                  {_r50_search_ms(7):7.2f} ms (best of 7 x 5 calls)")


if __name__ == "__main__":
    main()
