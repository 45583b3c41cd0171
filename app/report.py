"""``python -m app.report --config CFG --ckpt_path CKPT [--name RUN] [--out docs/reports]``.

Builds the model and data module from the same YAML as ``fit`` (LightningCLI's parser),
restores the checkpoint (weights, EMA, fitted transforms), generates the chosen split and
writes ``{out}/{name}/index.md`` with ``validation.report.write_report``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from app.cli import GalchemyCLI
from app.data import GalaxyDataModule
from app.data.domains import get_domain
from app.families import Translator
from app.families.base import SCORE_CLAMP
from validation.report import ReportData, write_report


def collect(model: Translator, dm: GalaxyDataModule, split: str, max_maps: int) -> ReportData:
    """Generate ``split`` (at most ``max_maps`` views) and gather everything a report shows."""
    ds = dm.datasets[split]
    n = min(len(ds), max_maps)
    if n == 0:
        raise ValueError(f"the {split} split is empty")
    model.eval()
    src, tgt, pred, pn, tn, pix = [], [], [], [], [], []
    batch_size = dm.hparams.batch_size
    for start in range(0, n, batch_size):
        items = [ds[i] for i in range(start, min(n, start + batch_size))]
        batch = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
        with torch.no_grad():
            out = model.generate(
                batch["source"],
                generator=torch.Generator().manual_seed(start),
                noise=model._index_noise(batch),
            )
        pred.append(dm.to_physical(out.double().clamp(-SCORE_CLAMP, SCORE_CLAMP)).numpy())
        pn.append(out.numpy())
        tn.append(batch["target"].numpy())
        tgt.append(dm.to_physical(batch["target"].double()).numpy())
        src.append(dm.to_physical(batch["source"].double(), [dm.source])[:, 0].numpy())
        pix.append(batch["pixel_size"].numpy())
    rows = ds.rows[:n]
    return ReportData(
        source=np.concatenate(src), target=np.concatenate(tgt), prediction=np.concatenate(pred),
        pixel_size=np.concatenate(pix), domains=list(dm.targets),
        units=[get_domain(d).unit for d in dm.targets], kinds=[get_domain(d).kind for d in dm.targets],
        source_domain=dm.source, source_unit=get_domain(dm.source).unit,
        galaxy=[f"{r.key[0]}-{r.key[1]}" for r in rows], rotation=[str(r.key[2]) for r in rows],
        normalised_prediction=np.concatenate(pn), normalised_target=np.concatenate(tn),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.report", description=__doc__.splitlines()[0])
    p.add_argument("--config", action="append", required=True, help="the fit config(s)")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--name", help="report folder name (default: the checkpoint's run)")
    p.add_argument("--out", default="docs/reports")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--max-maps", type=int, default=48)
    p.add_argument("overrides", nargs="*", help="extra CLI overrides, e.g. --data.init_args.data=/path")
    args, extra = p.parse_known_args(argv)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    cli_args = [a for c in args.config for a in ("--config", c)] + extra + args.overrides
    cli = GalchemyCLI(Translator, GalaxyDataModule, subclass_mode_model=True, subclass_mode_data=True,
                      run=False, args=cli_args, seed_everything_default=0)  # fmt: skip
    ckpt_path = Path(args.ckpt_path)
    if not ckpt_path.is_file():
        print(f"error: no checkpoint at {ckpt_path}", file=sys.stderr)
        return 2
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = type(cli.model).load_from_checkpoint(ckpt_path, map_location="cpu")
    dm = cli.datamodule
    dm.load_state_dict(checkpoint["GalaxyDataModule"])
    dm.prepare_data()
    dm.setup("test")
    data = collect(model, dm, args.split, args.max_maps)
    h = model.hparams
    data.meta = {
        "family": type(model).__name__,
        "network": f"U-Net, {h.net.get('block', 'residual')} blocks, base {h.net.get('base_channels', 32)}, mults {h.net.get('channel_mults')}",
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
