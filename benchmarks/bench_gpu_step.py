"""Training images/s and sampling seconds per map of a family's config network, on one device.

Usage: ``python benchmarks/bench_gpu_step.py --config configs/diffusion.yaml --device cuda
[--size 256] [--batch 12] [--dtype fp32 bf16] [--sample-steps 10 50] [--sample-batch 32]``

The network is the config's ``model.init_args.net`` (weights untrained: speed does not
depend on them), trained for a few steps on random maps with the family's own loss, then
sampled with the config's sampler. Prints one row per dtype; the GPU suite
(``benchmarks/gpu_suite.sh``) records them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import time

import torch
import yaml

from app.noise import BatchNoise


def _model(config: str, target_channels: int = 1):
    doc = yaml.safe_load(open(config))["model"]
    module, _, name = doc["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    args = {k: v for k, v in doc.get("init_args", {}).items() if k not in ("sigma_data",)}
    return cls(target_channels=target_channels, **args)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/diffusion.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--dtype", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--sample-steps", type=int, nargs="+", default=[10])
    parser.add_argument("--sample-batch", type=int, default=32)
    args = parser.parse_args()
    model = _model(args.config).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)  # a residual model's mean network too
    g = torch.Generator(device="cpu").manual_seed(0)
    src = torch.randn(args.batch, 1, args.size, args.size, generator=g).to(args.device)
    batch = {"source": src, "target": torch.randn_like(src), "index": torch.arange(args.batch)}
    print(f"# {args.config}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, "
          f"{args.size}², device {torch.cuda.get_device_name() if args.device.startswith('cuda') else args.device}")  # fmt: skip
    for dtype in args.dtype:
        amp = (torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16)
               if dtype == "bf16" else contextlib.nullcontext())  # fmt: skip
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        for i in range(args.train_steps + 2):  # two warm-up steps
            if i == 2:
                _sync(args.device)
                t0 = time.perf_counter()
            with amp:  # per-map noise, as in training
                loss = model.training_loss(batch, BatchNoise.for_batch(batch, seed=0))
            opt.zero_grad()
            loss.backward()
            opt.step()
        _sync(args.device)
        step = (time.perf_counter() - t0) / args.train_steps
        peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
        print(f"{dtype}: train step {step * 1e3:.1f} ms at batch {args.batch} = {args.batch / step:.1f} images/s, "
              f"peak memory {peak:.2f} GiB")  # fmt: skip
        s = src[:1].expand(args.sample_batch, -1, -1, -1).contiguous()
        model.eval()
        for steps in args.sample_steps:
            with amp:
                model.generate(s, steps=steps)  # warm-up
                _sync(args.device)
                t0 = time.perf_counter()
                model.generate(s, steps=steps)
                _sync(args.device)
            per_map = (time.perf_counter() - t0) / args.sample_batch
            print(f"{dtype}: sampling {steps} steps, batch {args.sample_batch}: {per_map * 1e3:.2f} ms per map")
        model.train()


if __name__ == "__main__":
    main()
