"""Maps per second through the DataLoader from HDF5, and memory with a bounded cache.

Usage: ``python benchmarks/bench_data.py [--galaxies 16] [--stored 512] [--epochs 2]``

Writes a mock set at the real stored size (512² float64, gzip, one chunk per map) to a
temporary folder, then times full passes of the training DataLoader (dm → gas,
augmentation on) at 128² and 256² with 0 and 2 workers, and reports the peak resident
memory of the main process plus workers while a cache smaller than the set is in use.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

import torch

from app.data import GalaxyDataModule, write_mock_set


def _rss_mb() -> float:
    """Current resident memory of this process, MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run(
    data: Path, size: int, workers: int, epochs: int, cache_mb: float, batch: int
) -> tuple[float, float, float]:
    dm = GalaxyDataModule(
        data=str(data), source="dm", targets=["gas"], size=size, batch_size=batch,
        num_workers=workers, split=(1, 0, 0), cache_mb=cache_mb, fit_maps=16,
    )  # fmt: skip
    dm.setup("fit")
    loader = dm.train_dataloader()
    n = 0
    peak = _rss_mb()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for b in loader:
            n += b["source"].shape[0]
            peak = max(peak, _rss_mb())
    dt = time.perf_counter() - t0
    return n / dt, peak, _children_peak_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=16)
    parser.add_argument("--stored", type=int, default=512, help="stored map side (real data: 512)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--cache-mb", type=float, default=16.0, help="cache per process, smaller than the set"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_mock_set(Path(tmp) / "mock", galaxies=args.galaxies, size=args.stored, progress=False)
        set_mb = sum(p.stat().st_size for p in data.rglob("*.hdf5")) / 2**20
        views = args.galaxies * 4
        print(f"# mock set: {views} views x 6 domains at {args.stored}^2, {set_mb:.0f} MB on disk (gzip)")
        print(
            f"# dm -> gas, batch {args.batch}, {args.epochs} epochs, cache {args.cache_mb:.0f} MB per process"
        )
        header = ("size", "workers", "maps/s", "peak RSS main [MB]", "peak RSS worker [MB]")
        print("{:>6s} {:>8s} {:>8s} {:>19s} {:>21s}".format(*header))
        base = _rss_mb()
        for size in (128, 256):
            for workers in (0, 2):
                rate, peak, child = run(data, size, workers, args.epochs, args.cache_mb, args.batch)
                print(f"{size:>6d} {workers:>8d} {rate:8.1f} {peak:19.0f} {child:21.0f}")
        raw_mb = views * 2 * args.stored**2 * 8 / 2**20
        print(f"# main-process RSS before the runs: {base:.0f} MB; the decoded set would be {raw_mb:.0f} MB")


if __name__ == "__main__":
    main()
