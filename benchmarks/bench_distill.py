"""Progressive distillation in rounds: a diffusion teacher's DDIM steps halved round after round.

Usage::

    python benchmarks/bench_distill.py --teacher runs/ck-diff-dmgas/9-240-physics1.3048.ckpt \
        --mapping dm:gas --rounds 32 16 8 4 2 1 --minutes 3 --keep runs/distill/pd --threads 1

Round ``N`` is a ``Progressive`` fit (``configs/fidelity/progressive.yaml``) of ``--minutes`` wall
time whose teacher is the previous round's best checkpoint (the first round's is ``--teacher``,
sampled with DDIM on a ``2N``-step grid). Each round is its own resumable Lightning run, kept in
``<keep>/<N>`` and marked done there (``done.json``, naming its selected checkpoint). A rerun
skips the completed rounds; a round that was interrupted stops it with the folder named. Prints and appends (JSON lines, ``--out``) each
round's test scores with 68 % bootstrap intervals, training seconds and inference seconds per map.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from fidelity_families import MOCK_DIR, load_recipe, train_and_score  # sibling module (run from benchmarks/)

from app.data import GalaxyDataModule


def best_checkpoint(folder: Path) -> Path | None:
    """The round's selected checkpoint in ``folder``: the one its ``done.json`` names, else the
    ``…physics<score>.ckpt`` that ``validation.PhysicsCheckpoint`` kept, or None."""
    marker = folder / "done.json"
    if marker.is_file():
        return Path(json.loads(marker.read_text())["best"])
    found = sorted(folder.glob("*physics*.ckpt"))
    return found[-1] if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="the diffusion checkpoint of the first round")
    parser.add_argument("--mapping", default="dm:gas", help="source:target (the teacher's)")
    parser.add_argument("--rounds", type=int, nargs="+", default=[32, 16, 8, 4, 2, 1])
    parser.add_argument("--minutes", type=float, default=3.0, help="wall time per round")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--keep", default="runs/distill/pd")
    parser.add_argument("--out", help="append each round's result as one JSON line here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(a != 2 * b for a, b in zip(args.rounds, args.rounds[1:], strict=False)):
        raise SystemExit(f"--rounds must halve from round to round, got {args.rounds}")
    source, target = args.mapping.split(":")
    _, _, data_args = load_recipe("progressive", args.mapping)
    dm = GalaxyDataModule(source=source, targets=[target], size=args.size, seed=args.seed,
                          **{"mock_dir": MOCK_DIR, **data_args})  # fmt: skip
    teacher = Path(args.teacher)
    for steps in args.rounds:
        folder = Path(args.keep) / str(steps)
        marker = folder / "done.json"
        if marker.is_file():  # a completed round: its selected checkpoint teaches the next
            teacher = best_checkpoint(folder)
            print(f"round {steps}: done before, {teacher}")
            continue
        if folder.exists() and any(folder.iterdir()):
            raise SystemExit(f"round {steps} was interrupted ({folder} has files but no done.json): "
                             "delete the folder to train the round again")  # fmt: skip
        t0 = time.perf_counter()
        result = train_and_score("progressive", dm, args.minutes, args.n_boot, args.seed,
                                 {"teacher": str(teacher), "steps": steps}, keep=str(folder))  # fmt: skip
        if not result["best_path"]:
            raise SystemExit(f"round {steps}: no checkpoint was selected within {args.minutes} min; raise --minutes")
        s = {k.split("/", 1)[-1]: [v.value, v.lo, v.hi] for k, v in result["scores"].items() if k.startswith(f"{target}/")}
        record = {"round": steps, "teacher": str(teacher), "mapping": args.mapping, "minutes": args.minutes,
                  "steps_trained": result["steps"], "train_s": round(result["train_s"], 1),
                  "infer_s_per_map": result["infer_s_per_map"], "scores": s,
                  "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
        print(f"round {steps}: physics {s['physics_score'][0]:.3g} [{s['physics_score'][1]:.3g}, "
              f"{s['physics_score'][2]:.3g}] pk {s['pk_dex'][0]:.3g} → {result['best_path']}", flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        teacher = Path(result["best_path"])
        marker.write_text(json.dumps({**record, "best": str(teacher)}))


if __name__ == "__main__":
    main()
