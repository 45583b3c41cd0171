"""Fast sampling, measured: method × network evaluations (NFE) on one mapping, in one run.

Usage::

    python benchmarks/bench_students.py --teacher runs/ck-diff-dmgas/9-240-physics1.3048.ckpt \
        --consistency runs/distill/cd/<best>.ckpt --progressive runs/distill/pd --mapping dm:gas \
        --nfe 1 2 4 8 20 50 1000 --out docs/figures/students.json

Rows: the diffusion teacher with DPM-Solver++(2M) at every ``--nfe`` (its largest is the
reference row) and with LMS-4 at ``--lms-nfe``, the teacher with DeepCache, the consistency student at 1, 2 and 4 evaluations,
each progressive round (``<folder>/<steps>/…physics….ckpt``) at its own steps, and the
baselines and the twin floor (no sampling). Columns: physics score, P(k) error [dex] and 1 − r
on k ∈ [3 k_F, k_Nyq/2], |log10 M_pred/M_true| [dex], with 68 % bootstrap intervals over
galaxies (test split); seconds per map; and peak memory of the sampling — CUDA's peak
allocation on a GPU, on a CPU the peak resident-memory growth over the row's start, sampled
every 2 ms after returning freed memory to the system (an estimate: the allocator may reuse
pages). Every model uses the data transforms saved in its checkpoint.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from bench_distill import best_checkpoint  # sibling module (run from benchmarks/)
from bench_sample_settings import _data, save_ratio_figure
from fidelity_families import load_recipe

from app.evaluation import predict_maps, report_data
from app.families import Consistency, Diffusion, Progressive
from validation.report_scores import score_prediction, spectral_curves

KEYS = ("physics_score", "pk_dex", "one_minus_r", "mass_dex")


class PeakMemory:
    """Peak memory of a block [MiB]: CUDA's peak allocation, or resident-set growth on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak = device, 0.0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self._base, self._top, self._stop = self._rss(), self._rss(), False

        def poll() -> None:
            while not self._stop:
                self._top = max(self._top, self._rss())
                time.sleep(0.002)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self.peak = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
            return
        self._stop = True
        self._thread.join()
        self.peak = (max(self._top, self._rss()) - self._base) / 2**20


def run_row(model, dm, maps, data, target: str, n_boot: int, **setting: Any) -> dict[str, Any]:
    """Generate the test split with ``setting``; its scores, seconds per map, peak memory and
    summed-P(k) curves (``curves``, not written to JSON)."""
    device = next(model.parameters()).device
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        pred = predict_maps(model, dm.contract(), maps, **setting).physical.numpy()
        seconds = (time.perf_counter() - t0) / len(pred)
    scores = score_prediction(data, pred, n_boot).scores
    row = {k: list(_iv(scores[f"{target}/{k}"])) for k in KEYS}
    return {**row, "s_per_map": seconds, "peak_mib": mem.peak, "curves": spectral_curves(pred[:, 0], data.target[:, 0])}


def _iv(iv) -> tuple[float, float, float]:
    return iv.value, iv.lo, iv.hi


def figure(rows: list[dict[str, Any]], size: int, path: Path, title: str) -> None:
    """Summed-P(k) ratio P_pred/P_true of the floor, the lookup, the teacher at its most and at 50 NFE,
    the fewest-NFE consistency row and the two fewest-NFE progressive rounds."""
    model_rows = [r for r in rows if "s_per_map" in r]
    teacher = [r for r in model_rows if r["method"].startswith("teacher DPM")]
    picks = [r for r in rows if r["method"] in ("floor (twin)", "lookup")]
    picks += [max(teacher, key=lambda r: r["nfe"])] + [r for r in teacher if r["nfe"] == 50]
    picks += sorted((r for r in model_rows if r["method"].startswith("consistency")), key=lambda r: r["nfe"])[:1]
    picks += sorted((r for r in model_rows if r["method"] == "progressive"), key=lambda r: r["nfe"])[:2]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, r in enumerate(picks):
        c = r["curves"]
        style = {"floor (twin)": ("k", ":"), "lookup": ("0.5", "--")}.get(r["method"], (f"C{i}", "-"))
        label = r["method"] + (f", {r['nfe']} NFE" if r["nfe"] else "")
        ax.plot(c["k_over_kf"], c["p_pred"] / c["p_true"], color=style[0], ls=style[1], lw=1.5, label=label)
    save_ratio_figure(fig, ax, size, title, path)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table: value [68 % interval] per score, seconds per map, peak memory."""

    def cell(v: list[float]) -> str:
        return f"{v[0]:.3g} [{v[1]:.3g}, {v[2]:.3g}]"

    head = ("| method | NFE | physics score | P(k) error [dex] | 1 − r | mass [dex] | s / map | peak [MiB] |\n"
            "|---|---|---|---|---|---|---|---|")  # fmt: skip
    lines = [head]
    for r in rows:
        cost = (f"{r['s_per_map']:.4f} | {r['peak_mib']:.0f}" if "s_per_map" in r else "— | —")
        lines.append(f"| {r['method']} | {r['nfe'] or '—'} | " + " | ".join(cell(r[k]) for k in KEYS) + f" | {cost} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--consistency", help="a Consistency checkpoint")
    parser.add_argument("--progressive", help="a folder of progressive rounds (bench_distill.py --keep)")
    parser.add_argument("--mapping", default="dm:gas")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--nfe", type=int, nargs="+", default=[1, 2, 4, 8, 20, 50, 1000])
    parser.add_argument("--lms-nfe", type=int, nargs="*", default=[1000, 50], help="teacher rows with LMS-4")
    parser.add_argument("--cd-nfe", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--deepcache", type=int, nargs="*", default=[20], help="teacher steps sampled with DeepCache 2")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--figure", help="write the P(k) ratio figure (PNG) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    source, target = args.mapping.split(":")
    _, _, data_args = load_recipe("diffusion", args.mapping)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def load(cls, path):
        saved = torch.load(path, map_location="cpu", weights_only=False)
        dm = _data(source, target, args.size, data_args, saved.get("GalaxyDataModule"))
        return cls.load_from_checkpoint(path, map_location="cpu").to(device).eval(), dm

    teacher, dm = load(Diffusion, args.teacher)
    maps = dm.maps("test")
    maps = {**maps, "source": maps["source"].to(device)}
    data = report_data(dm.contract(), "test", n_twins=1)
    rows: list[dict[str, Any]] = []

    def emit(method: str, nfe: int | None, row: dict[str, Any]) -> None:
        rows.append({"method": method, "nfe": nfe, **row})
        p = row["physics_score"]
        extra = f"  {row['s_per_map']:.4f} s/map  {row['peak_mib']:.0f} MiB" if "s_per_map" in row else ""
        print(f"{method:>28} {nfe or '-':>5}: physics {p[0]:.3g} [{p[1]:.3g}, {p[2]:.3g}]  pk {row['pk_dex'][0]:.3g}  "
              f"1-r {row['one_minus_r'][0]:.3g}  mass {row['mass_dex'][0]:.3g}{extra}", flush=True)  # fmt: skip

    for name in ("floor (twin)", "lookup", "log_linear", "mean_map"):
        if name in data.references:
            sc = score_prediction(data, data.references[name], args.n_boot).scores
            emit(name, None, {k: list(_iv(sc[f"{target}/{k}"])) for k in KEYS}
                 | {"curves": spectral_curves(data.references[name][:, 0], data.target[:, 0])})
    for nfe in sorted(args.nfe, reverse=True):
        emit("teacher DPM-Solver++(2M)", nfe, run_row(teacher, dm, maps, data, target, args.n_boot,
                                                     sampler="dpmpp_2m", steps=nfe))  # fmt: skip
    for nfe in args.lms_nfe:  # LMS-4 after its last step became first order (docs/families.md)
        emit("teacher LMS-4", nfe, run_row(teacher, dm, maps, data, target, args.n_boot, sampler="lms", steps=nfe))
    for steps in args.deepcache:
        emit("teacher + DeepCache 2", steps, run_row(teacher, dm, maps, data, target, args.n_boot,
                                                    sampler="dpmpp_2m", steps=steps, deepcache_interval=2))  # fmt: skip
    if args.consistency:
        student, sdm = load(Consistency, args.consistency)
        for nfe in args.cd_nfe:
            emit("consistency (CD)", nfe, run_row(student, sdm, maps, data, target, args.n_boot, steps=nfe))
    if args.progressive:
        for folder in sorted(Path(args.progressive).iterdir(), key=lambda p: -int(p.name) if p.name.isdigit() else 0):
            ckpt = best_checkpoint(folder)
            if ckpt is None or not folder.name.isdigit():
                continue
            student, sdm = load(Progressive, ckpt)
            emit("progressive", int(folder.name), run_row(student, sdm, maps, data, target, args.n_boot))
    print(markdown(rows))
    if args.figure:
        figure(rows, args.size, Path(args.figure), f"{source} → {target}: teacher and students")
    rows = [{k: v for k, v in r.items() if k != "curves"} for r in rows]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "threads": torch.get_num_threads(), "mapping": args.mapping, "maps": len(maps["index"]),
                "teacher": args.teacher, "consistency": args.consistency, "progressive": args.progressive}  # fmt: skip
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
