"""Cost of the LMS coefficients of one σ grid: recomputed per step (before) against the
cached per-grid table (``app.diffusion.samplers.lms_table``).

``python benchmarks/bench_lms_table.py`` (from the repository root; one thread).
"""

from __future__ import annotations

import time

import torch

from app.diffusion.samplers import karras_sigmas, lms_coefficients, lms_table


def main(steps: int = 20, order: int = 4, repeats: int = 20) -> None:
    """Print milliseconds per grid: per-step recomputation, first (uncached) table, cached table."""
    torch.set_num_threads(1)
    sig = karras_sigmas(steps)
    t0 = time.perf_counter()
    for _ in range(repeats):
        for i in range(steps):
            lms_coefficients(sig, i, min(i + 1, order))
    per_step = (time.perf_counter() - t0) / repeats
    fresh = sig * (1 + 1e-9 * time.time() % 1e-6)  # a grid the cache has not seen
    t0 = time.perf_counter()
    lms_table(fresh, order)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(repeats):
        lms_table(sig, order)
    cached = (time.perf_counter() - t0) / repeats
    print(f"{steps}-step grid, order {order}: per-step recompute {per_step * 1e3:.2f} ms, "
          f"first table {first * 1e3:.2f} ms, cached {cached * 1e3:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
