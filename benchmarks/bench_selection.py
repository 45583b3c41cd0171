"""How well does checkpoint selection generalise? Selection rules scored on recorded traces.

Usage::

    python benchmarks/bench_selection.py runs/recipes.jsonl

Reads the per-epoch traces that ``bench_recipe.py`` records (``val`` and ``test`` physics
scores of the same weights after every validation) and, for each run and each rule, prints
the Spearman rank correlation of the rule's validation signal with the test score over
epochs and the *regret*: the test score of the epoch the rule picks minus the best test
score of any epoch (0 is a perfect pick). Rules:

* ``best``: the lowest ``val/physics_score`` (what ``PhysicsCheckpoint`` does by default);
* ``smooth3``/``smooth5``: the lowest trailing moving average over 3/5 validations (what
  a callback could monitor; measured here, and not offered because it did not help);
* ``last``: the last epoch.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from fidelity_families import spearman  # sibling module (run from benchmarks/)


def smoothed(history: list[float], window: int) -> float:
    """Mean of the last ``window`` values of ``history`` (all of them while there are fewer)."""
    tail = history[-window:]
    return sum(tail) / len(tail)


def pick(val: list[float], rule: str) -> int:
    """Index of the validation the rule selects."""
    if rule == "last":
        return len(val) - 1
    window = {"best": 1, "smooth3": 3, "smooth5": 5}[rule]
    s = [smoothed(val[: i + 1], window) for i in range(len(val))]  # causal: what a callback sees
    return int(np.argmin(s))


RULES = ("best", "smooth3", "smooth5", "last")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="JSON-lines files written by bench_recipe.py --out")
    args = parser.parse_args()
    print("| run | epochs | rank corr (val, test) | " + " | ".join(f"regret {r}" for r in RULES) + " |")
    print("|---" * (3 + len(RULES)) + "|")
    totals = {r: [] for r in RULES}
    for path in args.runs:
        with open(path) as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        for rec in records:
            val = [t["val"] for t in rec.get("trace", [])]
            test = [t["test"] for t in rec.get("trace", [])]
            if len(val) < 5:
                continue
            regrets = {r: test[pick(val, r)] - min(test) for r in RULES}
            for r in RULES:
                totals[r].append(regrets[r])
            print(f"| {rec['tag']} ({rec['family']}, {rec['mapping']}) | {len(val)} | {spearman(val, test):.2f} | "
                  + " | ".join(f"{regrets[r]:.3f}" for r in RULES) + " |")  # fmt: skip
    if not totals["best"]:
        raise SystemExit("no run with at least 5 validations in the trace")
    print("| mean | | | " + " | ".join(f"{np.mean(totals[r]):.3f}" for r in RULES) + " |")


if __name__ == "__main__":
    main()
