"""Token merging: forward time of the attention and ViT U-Nets per merging ratio, side by side.

Usage: ``python benchmarks/bench_tome.py [--size 128] [--batch 2] [--ratios 0 0.25 0.5] [--device cuda]``

For each block type the same network (random weights, seed 0) runs an inference forward on
the same input inside ``token_merging(r)`` for every ratio, best of ``--repeat`` after a
warm-up, and the output's relative change ``‖y_r − y_0‖/‖y_0‖`` is printed beside the time.
On a random network the change only bounds the approximation; what merging costs in physics
score needs a trained attention model (``bench_sample_settings.py --grid token_merging=…``).
"""

from __future__ import annotations

import argparse
import time

import torch

import app.nets.attention as attention_module
from app.nets import UNet
from app.nets.tome import token_merging


def best_time(fn, repeat: int, device: torch.device) -> float:
    """The fastest of ``repeat`` calls of ``fn`` [s], after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def attention_sizes(net: UNet, x: torch.Tensor, t: torch.Tensor) -> list[int]:
    """The distinct token counts of the attention calls of one forward (largest first)."""
    seen: set[int] = set()
    original = attention_module.merged_attention

    def record(q, k, v, ratio):
        seen.add(q.shape[2])
        return original(q, k, v, ratio)

    attention_module.merged_attention = record
    try:
        with token_merging(0.01):
            net(x, t)
    finally:
        attention_module.merged_attention = original
    return sorted(seen, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--base", type=int, default=32)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"# {args.size}², batch {args.batch}, base {args.base}, mults (1, 2, 4, 8), {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")  # fmt: skip
    print("| block | tokens per attention call | ratio | forward [s] | speed-up | ‖Δy‖/‖y‖ |")
    print("|---|---|---|---|---|---|")
    for block in ("attention", "vit"):
        torch.manual_seed(0)
        net = UNet(in_channels=2, out_channels=1, base_channels=args.base, channel_mults=[1, 2, 4, 8], block=block,
                   time_embedding="fourier", heads=4).to(device).eval()  # fmt: skip
        x = torch.randn(args.batch, 2, args.size, args.size, device=device)
        t = torch.zeros(args.batch, device=device)
        with torch.no_grad():
            tokens = attention_sizes(net, x, t)
            ref = net(x, t)
            base_time = None
            for ratio in args.ratios:
                with token_merging(ratio):
                    seconds = best_time(lambda net=net, x=x, t=t: net(x, t), args.repeat, device)
                    out = net(x, t)
                base_time = base_time or seconds
                change = float((out - ref).norm() / ref.norm())
                print(f"| {block} | {', '.join(map(str, tokens))} | {ratio:g} | {seconds:.4f} | {base_time / seconds:.2f}× | {change:.3g} |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
