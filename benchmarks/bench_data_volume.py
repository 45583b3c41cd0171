"""Does more training data help? Two checkpoints of one family and mapping, trained on mocks of
different sizes, scored on the same unseen galaxies.

Usage::

    python benchmarks/bench_data_volume.py --family pix2pix --mapping gas:hi --galaxies 240 \\
        --ckpt g80=runs/a/best.ckpt g240=runs/b/best.ckpt --unseen-from 80

A mock of N galaxies holds ids 0 … N−1. The test galaxies of the ``--galaxies`` mock with
id ≥ ``--unseen-from`` (the smaller mock's size) are absent from the smaller mock, and, being
test galaxies, from the larger mock's training split: neither model has seen them. Each checkpoint generates those maps with the data transforms saved in it; printed
are the physics score and its parts with 68 % bootstrap intervals over galaxies, next to
the larger mock's lookup baseline on the same maps (the floor is 0 on the mappings the
source determines).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

import numpy as np
import torch
from fidelity_families import load_recipe, split_data  # sibling module (run from benchmarks/)

from app.evaluation import predict_maps, report_data
from validation.report_scores import ReportData, score_prediction

PARTS = ("physics_score", "pk_dex", "one_minus_r", "mass_dex", "profile_dex", "w1_dex")


def _subset(data: ReportData, keep: np.ndarray) -> ReportData:
    """``data`` restricted to the maps where ``keep`` is true."""

    def cut(v):
        if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape:
            return v[keep]
        if isinstance(v, (list, tuple)) and len(v) == len(keep):
            return [x for x, k in zip(v, keep, strict=True) if k]
        if isinstance(v, dict):
            return {name: cut(x) for name, x in v.items()}
        return v

    return dataclasses.replace(data, **{f.name: cut(getattr(data, f.name)) for f in dataclasses.fields(data) if f.init})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--mapping", default="gas:hi", help="source:target")
    parser.add_argument("--galaxies", type=int, required=True, help="galaxies of the larger mock")
    parser.add_argument("--unseen-from", type=int, required=True, help="galaxies of the smaller mock")
    parser.add_argument("--ckpt", nargs="+", required=True, help="name=path, one per model")
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    source, target = args.mapping.split(":")
    cls, _, _ = load_recipe(args.family, args.mapping)
    base = split_data(source, target, 64, {"mock_galaxies": args.galaxies})
    data = report_data(base.contract(), "test", n_twins=1)
    keep = np.array([int(str(g).rsplit("-", 1)[-1]) >= args.unseen_from for g in data.galaxy])
    if not keep.any():
        raise SystemExit(f"no test galaxy of the {args.galaxies}-galaxy mock has an id >= {args.unseen_from}")
    sub = _subset(data, keep)
    print(f"# {source} -> {target}: {int(keep.sum())} test maps of {len(set(sub.galaxy))} galaxies with id >= "
          f"{args.unseen_from} (test split of the {args.galaxies}-galaxy mock)")  # fmt: skip

    def show(name: str, pred: np.ndarray) -> None:
        s = score_prediction(sub, pred, args.n_boot).scores
        print(f"{name:>10}: " + "  ".join(f"{p} {s[f'{target}/{p}']}" for p in PARTS))

    show("lookup", sub.references["lookup"])
    for entry in args.ckpt:
        name, _, path = entry.partition("=")
        saved = torch.load(path, map_location="cpu", weights_only=False)
        model = cls.load_from_checkpoint(path, map_location="cpu").eval()
        own = split_data(source, target, 64, {"mock_galaxies": args.galaxies}, saved.get(type(base).__qualname__))
        show(name, predict_maps(model, own.contract(), own.maps("test")).physical.numpy()[keep])


if __name__ == "__main__":
    main()
