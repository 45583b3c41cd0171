"""Pure-PyTorch chunked selective scan vs the sequential loop (and mamba-ssm's kernel on CUDA).

Usage: ``python benchmarks/bench_scan.py [--device cpu|cuda] [--lengths 1024 4096 16384]``

Times forward and forward+backward of ``selective_scan`` (the default path) and of
``selective_scan_loop`` (the recurrence as a Python loop over time, autograd through it)
on (batch 1, D 64, N 8) float32 inputs, best of ``--repeat``; prints ratios from one run.
On CUDA with mamba-ssm installed it adds the kernel (``backend="cuda"``).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from app.nets.scan import cuda_scan_available, selective_scan, selective_scan_loop


def _inputs(length: int, device: str, d: int, n: int):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, d, length, generator=g)
    delta = torch.randn(1, d, length, generator=g) * 0.5
    A = -torch.rand(d, n, generator=g) * 2
    B = torch.randn(1, n, length, generator=g)
    C = torch.randn(1, n, length, generator=g)
    D = torch.ones(d)
    z = torch.randn(1, d, length, generator=g)
    bias = torch.zeros(d)
    return [t.to(device).requires_grad_() for t in (u, delta, A, B, C, D, z, bias)]


def _time(fn, args, backward: bool, repeat: int, device: str) -> float:
    best = float("inf")
    for _ in range(repeat):
        for a in args:
            a.grad = None
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        if backward:
            out.square().sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--loop-backward-max", type=int, default=4096,
        help="skip the loop's fwd+bwd above this L (autograd through its slices is O(L^2))",
    )  # fmt: skip
    args = parser.parse_args()
    impls = {
        "chunked (default)": lambda *a: selective_scan(*a, True, backend="torch"),
        "sequential loop": lambda *a: selective_scan_loop(*a, True),
    }
    if args.device == "cuda" and cuda_scan_available():
        impls["mamba-ssm kernel"] = lambda *a: selective_scan(*a, True, backend="cuda")
    print(f"# batch 1, D {args.d}, N {args.n}, float32, device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.machine()}")  # fmt: skip
    print(f"{'L':>6s} {'pass':>9s} " + " ".join(f"{k:>18s}" for k in impls) + f" {'loop / chunked':>15s}")
    for length in args.lengths:
        inputs = _inputs(length, args.device, args.d, args.n)
        for backward in (False, True):
            times = {}
            for k, f in impls.items():
                if k == "sequential loop" and backward and length > args.loop_backward_max:
                    times[k] = float("nan")
                    continue
                times[k] = _time(
                    f, inputs, backward, args.repeat if k != "sequential loop" else 1, args.device
                )
            row = " ".join(
                f"{times[k] * 1e3:15.1f} ms" if times[k] == times[k] else f"{'skipped':>18s}" for k in impls
            )
            ratio = times["sequential loop"] / times["chunked (default)"]
            shown = f"{ratio:14.1f}x" if ratio == ratio else f"{'-':>15s}"
            print(f"{length:>6d} {'fwd+bwd' if backward else 'fwd':>9s} {row} {shown}")


if __name__ == "__main__":
    main()
