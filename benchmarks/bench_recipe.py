"""Measure one change to a training recipe: train a family on one mapping for a budget and
trace validation and test scores every epoch.

Usage::

    python benchmarks/bench_recipe.py --family pix2pix --mapping gas:hi --minutes 15 \
        --set lr=2e-3 --data transforms.hi=asinh --tag asinh --out runs/recipes.jsonl

``--set`` updates the recipe's model init_args and ``--data`` the data-module settings
(dotted keys; values parsed as YAML). Prints and appends (JSON lines) the test scores of
the selected checkpoint with bootstrap intervals, the per-epoch trace of ``val`` and
``test`` physics scores, the Spearman rank correlation between them over epochs, and the
*selection regret*: the test score of the selected epoch minus the best test score of any
epoch. ``--threads 1`` lets two runs share a 2-core machine side by side.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from fidelity_families import (  # sibling module (run from benchmarks/)
    MOCK_DIR,
    dotted,
    load_recipe,
    merge,
    train_and_score,
)

from app.data import GalaxyDataModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--mapping", default="gas:hi", help="source:target")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="model init_args overrides, key=value")
    parser.add_argument("--data", nargs="*", default=[], help="data-module overrides, key=value")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--tag", default="")
    parser.add_argument("--keep", help="keep the best and last checkpoints in this folder")
    parser.add_argument("--out", help="append the result as one JSON line here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    source, target = args.mapping.split(":")
    _, _, data_args = load_recipe(args.family, args.mapping)
    data_args = merge(data_args, dotted(args.data))
    data_args = {"mock_dir": MOCK_DIR, **data_args}
    dm = GalaxyDataModule(source=source, targets=[target], size=args.size, seed=args.seed, **data_args)
    t0 = time.perf_counter()
    result = train_and_score(
        args.family, dm, args.minutes, args.n_boot, args.seed, dotted(args.set), trace=True, keep=args.keep
    )
    trace = result["trace"]
    test = [r["test"] for r in trace]
    key = f"{target}/physics_score"
    selected = result["scores"][key].value
    record = {
        "tag": args.tag, "family": args.family, "mapping": args.mapping, "size": args.size, "minutes": args.minutes,
        "set": args.set, "data": args.data, "threads": torch.get_num_threads(), "steps": result["steps"],
        "train_s": round(result["train_s"], 1), "best_epoch": result["best_epoch"],
        "scores": {k.split("/", 1)[-1]: [v.value, v.lo, v.hi] for k, v in result["scores"].items() if k.startswith(f"{target}/")},
        "trace": trace, "rank_correlation": result["rank_correlation"],
        "regret": float(selected - np.min(test)) if test else None,
        "last_test": test[-1] if test else None, "wall_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    s = record["scores"]
    print(f"[{args.tag}] {args.family} {args.mapping}: physics {s['physics_score'][0]:.3g} "
          f"[{s['physics_score'][1]:.3g}, {s['physics_score'][2]:.3g}] pk {s['pk_dex'][0]:.3g} "
          f"1-r {s['one_minus_r'][0]:.3g} mass {s['mass_dex'][0]:.3g} w1 {s['w1_dex'][0]:.3g} | "
          f"{record['steps']} steps, best epoch {record['best_epoch']}, last-epoch test {record['last_test']}, "
          f"rank corr {record['rank_correlation']:.2f}, regret {record['regret']}", flush=True)  # fmt: skip
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
