"""Parameters, forward peak memory and train-step time of the U-Net per block type.

Usage:
  python benchmarks/bench_unets.py                       # 64², batch 4, CPU, fp32
  python benchmarks/bench_unets.py --device cuda --size 256 --batch 12 --dtype fp32 bf16

Each block type runs in a fresh process so peak memory is its own: on CUDA the peak of
``torch.cuda.max_memory_allocated`` during a training forward; on CPU the growth of the
process's peak RSS during it. A train step is forward + backward + Adam, best of
``--steps`` after one warm-up. Estimated hours per model = step time × ``--steps-per-model``;
price = hours × ``--price-per-hour`` (the cost of one device-hour in your currency).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import torch

from app.nets import UNet

BLOCK_TYPES = ["vanilla", "residual", "attention", "vit", "mamba"]


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(block: str, cfg: dict) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(cfg["threads"])
    device = torch.device(cfg["device"])
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[cfg["dtype"]]
    net = UNet(
        in_channels=2, out_channels=1, base_channels=cfg["base"], channel_mults=cfg["mults"],
        block=block, time_embedding="fourier", heads=4, attention_gates=block == "attention",
        mamba_d_state=cfg["d_state"],
    ).to(device)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(cfg["batch"], 2, cfg["size"], cfg["size"], device=device)
    t = torch.rand(cfg["batch"], device=device)
    y = torch.randn(cfg["batch"], 1, cfg["size"], cfg["size"], device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = (net(x, t).float() - y).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # forward peak memory (training forward: activations kept for backward)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _peak_rss_bytes()
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        out = net(x, t)
    if device.type == "cuda":
        torch.cuda.synchronize()
        fwd = torch.cuda.max_memory_allocated() - base
    else:
        fwd = _peak_rss_bytes() - base
    del out
    step()  # warm-up
    best = float("inf")
    for _ in range(cfg["steps"]):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return {
        "block": block,
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "fwd_gb": fwd / 1e9,
        "step_s": best,
    }


def _worker(block: str, cfg: dict, queue: mp.Queue) -> None:
    try:
        queue.put(measure(block, cfg))
    except Exception as err:  # report, don't hang
        queue.put({"block": block, "error": f"{type(err).__name__}: {err}"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--mults", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--d-state", type=int, default=8, help="Mamba state size (the U-Net default is 8)")
    p.add_argument("--dtype", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blocks", nargs="+", default=BLOCK_TYPES)
    p.add_argument("--steps-per-model", type=float, default=200_000, help="training steps assumed per model")
    p.add_argument("--price-per-hour", type=float, default=2.0, help="price of one device-hour")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"# U-Net base {args.base}, mults {args.mults}, {args.size}^2, batch {args.batch}, {name}")
    cost = f"{args.steps_per_model:.0f} steps/model, {args.price_per_hour}/device-hour"
    print(f"# torch {torch.__version__}; {cost}")
    header = ("block", "dtype", "params [M]", "mem fwd [GB]", "step [s]", "vs vanilla", "hours", "price")
    print("{:>10s} {:>5s} {:>10s} {:>12s} {:>9s} {:>10s} {:>8s} {:>8s}".format(*header))
    for dtype in args.dtype:
        base_step = None
        for block in args.blocks:
            cfg = dict(vars(args), dtype=dtype)
            queue = ctx.Queue()
            proc = ctx.Process(target=_worker, args=(block, cfg, queue))
            proc.start()
            r = queue.get()
            proc.join()
            r["dtype"] = dtype
            rows.append(r)
            if "error" in r:
                print(f"{block:>10s} {dtype:>5s} failed: {r['error']}")
                continue
            base_step = r["step_s"] if block == "vanilla" else base_step
            hours = r["step_s"] * args.steps_per_model / 3600
            rel = f"{r['step_s'] / base_step:9.2f}x" if base_step else ""
            price = hours * args.price_per_hour
            cells = (r["params_m"], r["fwd_gb"], r["step_s"])
            row = f"{cells[0]:10.2f} {cells[1]:12.3f} {cells[2]:9.3f} {rel:>10s} {hours:8.1f} {price:8.1f}"
            print(f"{block:>10s} {dtype:>5s} {row}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
