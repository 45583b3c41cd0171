"""The fidelity ladder: how hard each mapping is, and what a model has to beat.

Usage::

    python benchmarks/bench_fidelity.py --sizes 64 128 --out docs/fidelity.md

For each mapping and map size, on the test split of the built-in mock (80 galaxies × 4
views, stratified split 48/16/16 galaxies), the physics score and its parts of:

* ``floor (twin)``: the same galaxy and view with the random parts the source does not show
  redrawn — what a perfect *generative* model scores (the irreducible error);
* ``oracle``: the mean of 16 twins — what a perfect *deterministic* predictor scores;
* the baselines, fitted on the training split: ``lookup`` (binned E[t|s]), ``log_linear``,
  ``scaling`` (global mass ratio) and ``mean_map`` (log-mean training map).

Every value carries a 68 % bootstrap interval over the test galaxies. With
``--families indi pix2pix diffusion dim --minutes 15`` each family is trained on each
mapping for that wall-time budget (recipes in ``configs/fidelity/``) and its best
checkpoint is scored on the same test maps, next to the references, with its training
seconds, optimiser steps and inference seconds per map.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import torch
from fidelity_families import (  # a sibling module (run as a script from benchmarks/)
    MOCK_DIR,
    load_recipe,
    train_and_score,
)

from app.data import GalaxyDataModule
from app.evaluation import BASELINE_ORDER, report_data
from validation.report_scores import score_prediction

MAPPINGS = ("gas:hi", "gas:dm", "gas:temp", "gas:bfield", "dm:gas", "gas:star")
COLUMNS = ("floor (twin)", "oracle", *BASELINE_ORDER)


def _ladder_rows(size: int, mappings: list[str], args) -> list[dict]:
    """Score every reference of every mapping; mappings that share a source share one data
    module (multi-target), so its twins are rendered once."""
    by_source: dict[str, list[str]] = {}
    for mapping in mappings:
        source, target = mapping.split(":")
        by_source.setdefault(source, []).append(target)
    rows = {}
    for source, targets in by_source.items():
        t0 = time.perf_counter()
        dm = GalaxyDataModule(source=source, targets=targets, size=size, mock_dir=args.mock_dir,
                              mock_galaxies=args.galaxies, mock_size=args.mock_size, seed=args.seed)  # fmt: skip
        dm.prepare_data()
        dm.setup("test")
        data = report_data(dm.contract(), "test", n_twins=args.twins)
        scored = {
            name: score_prediction(data, pred, args.n_boot).scores for name, pred in data.references.items()
        }
        seconds = time.perf_counter() - t0
        for target in targets:
            row = {"mapping": f"{source} → {target}", "scores": dict(scored), "target": target,
                   "maps": len(data.source), "galaxies": len(set(data.galaxy)), "seconds": seconds, "costs": {}}  # fmt: skip
            for family in args.families:
                _, _, data_args = load_recipe(family, f"{source}:{target}")  # the recipe's data settings
                one = GalaxyDataModule(**{**data_args, "source": source, "targets": [target], "size": size,
                                          "mock_dir": args.mock_dir, "mock_galaxies": args.galaxies,
                                          "mock_size": args.mock_size, "seed": args.seed})  # fmt: skip
                keep = f"{args.keep}/{family}-{source}-{target}-{size}" if args.keep else None
                result = train_and_score(family, one, args.minutes, args.n_boot, args.seed, keep=keep)
                row["scores"][family] = result["scores"]
                row["costs"][family] = result
                print(f"{size}² {source} → {target}: {family} {result['scores'][f'{target}/physics_score']} "
                      f"({result['steps']} steps in {result['train_s']:.0f} s, best epoch {result['best_epoch']})",
                      flush=True)  # fmt: skip
            rows[f"{source}:{target}"] = row
            print(f"{size}² {source} → {target}: " + ", ".join(
                f"{c} {scored[c][f'{target}/physics_score']}" for c in COLUMNS if c in scored), flush=True)  # fmt: skip
    return [rows[m] for m in mappings]


def _table(rows: list[dict], key: str, families: list[str]) -> list[str]:
    cols = [*families, *COLUMNS]
    lines = ["| mapping | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        k = f"{r['target']}/{key}"
        cells = [str(r["scores"][c][k]) if c in r["scores"] and k in r["scores"][c] else "—" for c in cols]
        lines.append(f"| {r['mapping']} | " + " | ".join(cells) + " |")
    return lines


def _costs(rows: list[dict], families: list[str]) -> list[str]:
    if not families:
        return []
    lines = ["Cost per run (wall time on this machine; best = the epoch of the selected checkpoint):", "",
             "| mapping | family | train [s] | optimiser steps | best epoch | inference [s/map] |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        for f in families:
            c = r["costs"][f]
            lines.append(f"| {r['mapping']} | {f} | {c['train_s']:.0f} | {c['steps']} | {c['best_epoch']} | "
                         f"{c['infer_s_per_map']:.3f} |")  # fmt: skip
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--mappings", nargs="+", default=list(MAPPINGS), help="source:target pairs")
    parser.add_argument("--mock-dir", default=MOCK_DIR)
    parser.add_argument("--galaxies", type=int, default=80)
    parser.add_argument("--mock-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--twins", type=int, default=16, help="twins averaged by the oracle")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument(
        "--families", nargs="*", default=[], help="train these (configs/fidelity/<name>.yaml)"
    )
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-time budget per family and mapping")
    parser.add_argument("--keep", help="keep each run's best and last checkpoints under this folder")
    parser.add_argument("--out", help="write the Markdown tables here (e.g. docs/fidelity.md)")
    parser.add_argument(
        "--section", default="ladder", help="write between <!-- SECTION --> and <!-- /SECTION -->"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    sections = []
    for size in args.sizes:
        rows = _ladder_rows(size, args.mappings, args)
        sections += [f"### {size}² pixels (test split: {rows[0]['maps']} views of {rows[0]['galaxies']} galaxies)", "",
                     "Physics score (lower is better), value on all test maps [68 % bootstrap interval over galaxies]:", "",
                     *_table(rows, "physics_score", args.families), "", "P(k) error [dex]:", "",
                     *_table(rows, "pk_dex", args.families), "", "1 − r(k):", "", *_table(rows, "one_minus_r", args.families),
                     "", "Mass error \\|log10 M_pred/M_true\\| [dex]:", "", *_table(rows, "mass_dex", args.families), "",
                     *_costs(rows, args.families)]  # fmt: skip
    elapsed = time.perf_counter() - t0
    cmd = "python benchmarks/bench_fidelity.py --sizes " + " ".join(map(str, args.sizes))
    if list(args.mappings) != list(MAPPINGS):
        cmd += " --mappings " + " ".join(args.mappings)
    if args.families:
        cmd += f" --families {' '.join(args.families)} --minutes {args.minutes:g}"
    for name in ("galaxies", "mock_size", "seed", "twins", "n_boot"):  # the data and references, when not the defaults
        if getattr(args, name) != parser.get_default(name):
            cmd += f" --{name.replace('_', '-')} {getattr(args, name)}"
    if args.out:
        cmd += f" --out {args.out}" + (f" --section {args.section}" if args.section != "ladder" else "")
    footer = [f"Measured with `{cmd}` in {elapsed / 60:.1f} min on {platform.machine()} "
              f"({torch.get_num_threads()} threads), mock seed {args.seed}, {args.twins} twins per oracle, "
              f"{args.n_boot} bootstrap resamples."]  # fmt: skip
    text = "\n".join([*sections, *footer]) + "\n"
    print(text)
    if args.out:
        _splice(Path(args.out), text, f"<!-- {args.section} -->", f"<!-- /{args.section} -->")
        print(f"wrote {args.out}")


def _splice(path: Path, text: str, start: str = "<!-- ladder -->", end: str = "<!-- /ladder -->") -> None:
    """Put ``text`` between the markers in ``path`` (the rest of the page is kept)."""
    page = path.read_text() if path.is_file() else f"{start}\n{end}\n"
    if start not in page or end not in page:
        raise ValueError(f"{path}: no {start} ... {end} markers to write the ladder between")
    head, rest = page.split(start, 1)
    path.write_text(f"{head}{start}\n{text}{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    main()
