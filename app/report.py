"""``python -m app.report --config CFG --ckpt_path CKPT [--name RUN] [--out docs/reports]``.

Builds the model and data module from the same YAML as ``fit`` (LightningCLI's parser),
restores the checkpoint (weights, EMA, fitted transforms), generates the chosen split and
writes ``{out}/{name}/index.md`` with ``validation.report.write_report``: the model next to
the baselines (fitted on the training split) and, on the built-in mock, the twin floor and
the oracle, every score with a bootstrap interval over galaxies.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from app.cli import GalchemyCLI
from app.data import GalaxyDataModule
from app.evaluation import report_data
from app.families import Translator
from validation.report import write_report

SPLIT_KEYS = ("data", "source", "size", "split", "seed", "stratify", "mock_galaxies", "mock_size")


def _split_mismatch(saved: dict, now: dict) -> str:
    """``key: saved → now`` for the data settings that decide which galaxies are held out."""
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    out = [f"data.{k}: {saved.get(k, 'absent (trained before stratified splits)')!r} → {now.get(k)!r}"
           for k in SPLIT_KEYS if k in now and norm(saved.get(k, "absent")) != norm(now.get(k))]  # fmt: skip
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m app.report", description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="Any other option (e.g. --data.init_args.data /path) goes to the fit config's LightningCLI.",
    )
    p.add_argument("--config", action="append", required=True, help="the fit config(s)")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--name", help="report folder name (default: the checkpoint's run)")
    p.add_argument("--out", default="docs/reports")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--max-maps", type=int, default=None, help="first N views of the split (default: all)")
    args, extra = p.parse_known_args(argv)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    cli_args = [a for c in args.config for a in ("--config", c)] + extra  # the rest goes to LightningCLI
    cli = GalchemyCLI(Translator, GalaxyDataModule, subclass_mode_model=True, subclass_mode_data=True,
                      run=False, args=cli_args, seed_everything_default=0)  # fmt: skip
    ckpt_path = Path(args.ckpt_path)
    if not ckpt_path.is_file():
        print(f"error: no checkpoint at {ckpt_path}", file=sys.stderr)
        return 2
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = type(cli.model).load_from_checkpoint(ckpt_path, map_location="cpu")
    dm = cli.datamodule
    mismatch = _split_mismatch(checkpoint.get("datamodule_hyper_parameters", {}), dict(dm.hparams))
    if mismatch:
        print(f"error: {ckpt_path} was trained on other data or another split ({mismatch}); its test "
              "galaxies would not be held out. Give the config it was trained with.", file=sys.stderr)  # fmt: skip
        return 2
    dm.load_state_dict(checkpoint["GalaxyDataModule"])
    dm.prepare_data()
    dm.setup("test")
    data = report_data(dm, args.split, args.max_maps, model)
    h = model.hparams
    data.meta = {
        "family": type(model).__name__,
        "network": (f"U-Net, {h.net.get('block', 'residual')} blocks, base {h.net.get('base_channels', 32)}, "
                    f"mults {h.net.get('channel_mults')}") if h.get("net") is not None else "none",
        "sampling": ", ".join(f"{k} {h[k]}" for k in ("parameterization", "sampler", "steps") if k in h)
        or "one forward pass",
        "checkpoint": f"{ckpt_path.name} (epoch {checkpoint.get('epoch')}, step {checkpoint.get('global_step')})",
        "split": f"{args.split} (galaxies never seen in training)",
    }
    name = args.name or ckpt_path.parent.parent.name
    index = write_report(data, Path(args.out) / name, f"Validation report: {name}")
    print(f"wrote {index} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
