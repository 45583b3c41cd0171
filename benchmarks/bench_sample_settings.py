"""Sampling settings of one trained checkpoint, side by side: scores, P(k) ratio curves and the
spread over samples.

Usage::

    python benchmarks/bench_sample_settings.py --family diffusion --ckpt before=runs/a.ckpt after=runs/b.ckpt \
        --mapping dm:gas --grid sigma_min=0.002,0.05,0.2 --samples 4 --figure docs/fig.png

Each checkpoint is used with the data transforms saved in it. For each, every combination
of the ``--grid`` values (``name=v1,v2,…``; passed to ``generate`` as
overrides, e.g. ``steps``, ``sampler``, ``sigma_min``) generates the test split ``--samples``
times (sample seeds s₀, s₀ + 1000, …, s₀ the model's ``sample_seed``). Printed per setting: the physics score, P(k) error [dex] on
k ∈ [3 k_F, k_Nyq/2] and 1 − r of the first sample with a 68 % bootstrap interval over galaxies,
the mean ± standard deviation of the P(k) error over samples, the *ensemble* P(k) error
(the power averaged over the samples against the truth's: what a generative model must
get right, since one sample's small scales are a random draw) and seconds per map. On the
mock the same is printed for ``--samples`` twins (perfect samples) as the floor. The
figure shows the summed-P(k) ratio P_pred/P_true of every setting (median and spread over
samples) next to the lookup baseline and the twins.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import yaml
from fidelity_families import (  # sibling module (run from benchmarks/)
    dotted,
    load_recipe,
    merge,
    split_data,
)
from matplotlib.ticker import FuncFormatter

from app.data.references import mock_seed, render_twins
from app.evaluation import predict_maps, report_data
from validation.report_figures import DPI
from validation.report_scores import score_prediction, spectral_curves


def grid(items: list[str]) -> list[dict[str, Any]]:
    """``["a=1,2", "b=x"]`` → ``[{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]`` (values parsed as YAML)."""
    axes = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep:
            raise ValueError(f"--grid: expected name=v1,v2,…, got {item!r}")
        axes.append([(key, yaml.safe_load(v)) for v in values.split(",")])
    return [dict(c) for c in itertools.product(*axes)] or [{}]


def band(k: np.ndarray, size: int) -> np.ndarray:
    """The scored band k ∈ [3 k_F, k_Nyq/2] (k in units of k_F)."""
    return (k >= 3) & (k <= size / 4)


def ensemble_pk(curves: list[dict[str, np.ndarray]], size: int) -> float:
    """Mean over the band of ``|log10 ⟨ΣP_pred⟩ / ΣP_true|`` [dex], the power averaged over samples."""
    k = curves[0]["k_over_kf"]
    p = np.mean([c["p_pred"] for c in curves], axis=0)
    use = band(k, size)
    return float(np.abs(np.log10(p[use] / curves[0]["p_true"][use])).mean())


def _samples(model, dm, maps, data, setting: dict[str, Any], args) -> tuple[list[dict[str, np.ndarray]], str]:
    """``args.samples`` predictions of the test split (sample seeds 0, 1000, …): their spectral
    curves and a printed summary."""
    target = dm.targets[0]
    true = data.target[:, 0]
    curves, scores, pk, t_gen = [], None, [], 0.0
    base_seed = model.hparams.sample_seed
    for s in range(args.samples):
        model.hparams.sample_seed = base_seed + 1000 * s
        t0 = time.perf_counter()
        pred = predict_maps(model, dm.contract(), maps, **setting).physical.numpy()
        t_gen += time.perf_counter() - t0
        sc = score_prediction(data, pred, args.n_boot if s == 0 else 1).scores
        scores = scores or sc
        pk.append(sc[f"{target}/pk_dex"].value)
        curves.append(spectral_curves(pred[:, 0], true))
    model.hparams.sample_seed = base_seed
    line = (f"physics {scores[f'{target}/physics_score']}  pk {scores[f'{target}/pk_dex']}  "
            f"1-r {scores[f'{target}/one_minus_r']}  mass {scores[f'{target}/mass_dex']}  "
            f"pk over {args.samples} samples {np.mean(pk):.3g} ± {np.std(pk):.2g}  "
            f"ensemble pk {ensemble_pk(curves, args.size):.3g}  "
            f"{t_gen / args.samples / len(maps['index']):.3f} s/map")  # fmt: skip
    return curves, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--ckpt", nargs="+", required=True, help="checkpoints, each as path or label=path")
    parser.add_argument("--mapping", default="gas:hi")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--grid", nargs="*", default=[])
    parser.add_argument("--data", nargs="*", default=[], help="data-module overrides, key=value (as trained)")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--figure", help="write the P(k) ratio figure here (PNG)")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cls, _, data_args = load_recipe(args.family, args.mapping)
    data_args = merge(data_args, dotted(args.data))
    source, target = args.mapping.split(":")
    dm = split_data(source, target, args.size, data_args)
    maps = dm.maps("test")
    data = report_data(dm.contract(), "test", n_twins=16)
    true = data.target[:, 0]
    curves: dict[str, list[dict[str, np.ndarray]]] = {}
    seed = mock_seed(dm.data_path())
    if seed is not None:  # perfect samples: twins 1..samples
        twins = render_twins(maps["rows"], source, [target], seed, args.size, range(1, args.samples + 1))
        curves["twins"] = [spectral_curves(t[:, 0], true) for t in twins]
        pk = [score_prediction(data, t, 1).scores[f"{target}/pk_dex"].value for t in twins]
        print(f"{'twins':>32}: pk over {args.samples} twins {np.mean(pk):.3g} ± {np.std(pk):.2g}  "
              f"ensemble pk {ensemble_pk(curves['twins'], args.size):.3g}")  # fmt: skip
    curves["lookup"] = [spectral_curves(data.references["lookup"][:, 0], true)]
    s = score_prediction(data, data.references["lookup"], args.n_boot).scores
    print(f"{'lookup':>32}: physics {s[f'{target}/physics_score']}  pk {s[f'{target}/pk_dex']}")
    for entry in args.ckpt:
        head, sep, tail = entry.partition("=")
        name, path = (head, tail) if sep and "/" not in head and not head.endswith(".ckpt") else ("", entry)
        saved = torch.load(path, map_location="cpu", weights_only=False)
        model = cls.load_from_checkpoint(path, map_location="cpu").eval()
        own = split_data(source, target, args.size, data_args, saved.get(type(dm).__qualname__))  # its transforms
        own_maps = own.maps("test")
        for setting in grid(args.grid):
            label = ", ".join([name] * bool(name) + [f"{k}={v}" for k, v in setting.items()]) or "recipe"
            curves[label], line = _samples(model, own, own_maps, data, setting, args)
            print(f"{label:>32}: {line}", flush=True)
    if args.figure:
        _figure(curves, args.size, Path(args.figure), args.title or f"{source} → {target}, {args.family}")


def _figure(curves: dict[str, list[dict[str, np.ndarray]]], size: int, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, runs) in enumerate(curves.items()):
        k = runs[0]["k_over_kf"]
        ratio = np.stack([r["p_pred"] / r["p_true"] for r in runs])
        style = {"twins": ("k", ":"), "lookup": ("0.5", "--")}.get(label, (f"C{i}", "-"))
        ax.plot(k, np.median(ratio, 0), color=style[0], ls=style[1], label=label, lw=1.5)
        if len(runs) > 1:
            ax.fill_between(k, ratio.min(0), ratio.max(0), color=style[0], alpha=0.2, lw=0)
    save_ratio_figure(fig, ax, size, title, path)


def _k_tick(x: float, _pos: int) -> str:
    """Plain-number k labels at 1, 2, 3, 5 times a power of ten; none elsewhere (no collisions)."""
    mantissa = x / 10 ** math.floor(math.log10(x)) if x > 0 else 0.0
    return f"{x:g}" if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 3, 5)) else ""


def save_ratio_figure(fig, ax, size: int, title: str, path: Path) -> None:
    """Finish a P(k) ratio figure (unit line, scored band, log axes, labels, legend) and write it."""
    ax.axhline(1, color="k", lw=0.5)
    ax.axvspan(3, size / 4, color="0.9", zorder=-1, label="scored band")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_k_tick))
    ax.xaxis.set_minor_formatter(FuncFormatter(_k_tick))
    ax.set_xlabel("k / k_F")
    ax.set_ylabel("P_pred(k) / P_true(k)  (summed over test maps)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
