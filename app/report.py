"""Validation reports as a step of ``test``: the ``ReportWriter`` callback.

``python -m app test --config CFG --ckpt_path CKPT --trainer.callbacks+=app.report.ReportWriter``
restores model and data once (weights with EMA, fitted transforms: Lightning's own
restore), runs the test loop, and at its end writes ``{out}/{name}/index.md`` with
``validation.report.write_report``: the model next to the baselines (fitted on the
training split) and, on the built-in mock, the twin floor and the oracle, every score with
a bootstrap interval over galaxies.

``python -m app.report --config CFG --ckpt_path CKPT [--name NAME] [--out DIR] [--overwrite]``
is the short form of that command. Reports go beside the run (``<run>/reports/<ckpt stem>``)
unless ``--out`` says otherwise; an existing report is never replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from app.evaluation import report_data
from app.predict import free_folder
from validation.report import write_report

__all__ = ["ReportWriter", "main"]

log = logging.getLogger(__name__)


def _describe(model: Any, ckpt_path: str | None, split: str) -> dict[str, str]:
    """The report's header lines: family, network, sampling, checkpoint and split."""
    h = model.hparams
    net = h.get("net")
    info = getattr(model, "checkpoint_info", {}) or {}
    return {
        "family": type(model).__name__,
        "network": (f"U-Net, {net.get('block', 'residual')} blocks, base {net.get('base_channels', 32)}, "
                    f"mults {net.get('channel_mults')}") if net is not None else "none",
        **({"mean network": "a regression U-Net " + ("with the network's options" if h.get("mean_net") is None else
                                                     f"with {h['mean_net']}")} if "mean_weight" in h else {}),
        "sampling": ", ".join(f"{k} {h[k]}" for k in ("parameterization", "sampler", "steps") if k in h)
        or "one forward pass",
        "checkpoint": (f"{Path(ckpt_path).name} (epoch {info.get('epoch')}, step {info.get('global_step')})"
                       if ckpt_path else "the weights in memory (no checkpoint)"),
        "split": f"{split} (galaxies never seen in training)" if split == "test" else split,
    }  # fmt: skip


HISTORY = ("train/loss", "val/loss", "val/physics_score")


def read_history(metrics_csv: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training curves ``{metric: (steps, values)}`` of ``HISTORY`` from a CSVLogger ``metrics.csv``
    (empty when the file is missing or holds none of them)."""
    if not metrics_csv.is_file():
        return {}
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for name in HISTORY:
        points = [(float(r["step"]), float(r[name])) for r in rows if r.get(name) not in (None, "")]
        if points:
            steps, values = zip(*points, strict=True)
            out[name] = (np.asarray(steps), np.asarray(values))
    return out


class ReportWriter(L.Callback):
    """At the end of ``test``, write a validation report of ``split``.

    Args:
        out: folder of reports; the report goes to ``{out}/{name}/index.md``. Default: the
            checkpoint's run folder, ``…/<run>/reports`` (never the tracked ``docs/``).
        name: report name (default: the checkpoint's stem).
        overwrite: replace an existing report folder; otherwise the next free ``{name}-{n}``.
        split: ``test`` (galaxies never trained on) or ``val``.
        max_maps: the first N views of the split (default: all).
        n_twins: twins per view for the floor and the oracle (built-in mock only).
    """

    def __init__(
        self, out: str | None = None, name: str | None = None, split: str = "test",
        max_maps: int | None = None, n_twins: int = 16, overwrite: bool = False,
    ) -> None:  # fmt: skip
        if split not in ("val", "test"):
            raise ValueError(f"ReportWriter.split must be val or test, got {split!r}")
        self.out, self.name, self.split, self.max_maps, self.n_twins = out, name, split, max_maps, n_twins
        self.overwrite = overwrite
        self.written: Path | None = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse a checkpoint trained on other data or another split: its test galaxies would
        not be held out."""
        mismatch = trainer.datamodule.split_mismatch()
        if mismatch:
            raise ValueError(
                f"{trainer.ckpt_path} was trained on other data or another split ({mismatch}); its test "
                "galaxies would not be held out. Give the config it was trained with."
            )

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Generate the split, score it next to the references and write the report (rank 0)."""
        if not trainer.is_global_zero:
            return
        t0 = time.perf_counter()
        ckpt = trainer.ckpt_path
        run = Path(ckpt).parent.parent if ckpt else Path(trainer.default_root_dir)
        name = self.name or (Path(ckpt).stem if ckpt else "report")
        folder = free_folder((Path(self.out) if self.out else run / "reports") / name, self.overwrite)
        data = report_data(pl_module.data, self.split, self.max_maps, pl_module, self.n_twins)
        data.meta = _describe(pl_module, ckpt, self.split)
        data.history = read_history(run / "metrics.csv") or None
        self.written = write_report(data, folder, f"Validation report: {name}")
        log.info("wrote %s in %.1f s", self.written, time.perf_counter() - t0)
        print(f"wrote {self.written}")


def main(argv: list[str] | None = None) -> int:
    """``python -m app.report``: ``python -m app test`` with a ``ReportWriter``, no logger and one test
    batch (the report generates and scores every map of the split itself; the test loop would
    generate them a second time)."""
    p = argparse.ArgumentParser(
        prog="python -m app.report", description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="Any other option (e.g. --data.init_args.data /path) goes to the config's LightningCLI.",
    )  # fmt: skip
    p.add_argument("--config", action="append", required=True, help="the fit config(s)")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--name", help="report folder name (default: the checkpoint's stem)")
    p.add_argument("--out", help="folder of reports (default: <run>/reports beside the checkpoints)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report of that name")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--max-maps", type=int, default=None, help="first N views of the split (default: all)")
    args, extra = p.parse_known_args(argv)
    if not Path(args.ckpt_path).is_file():
        print(f"error: no checkpoint at {args.ckpt_path}", file=sys.stderr)
        return 2
    writer = ["--trainer.callbacks+=app.report.ReportWriter", f"--trainer.callbacks.split={args.split}",
              f"--trainer.callbacks.overwrite={str(args.overwrite).lower()}"]  # fmt: skip
    writer += [f"--trainer.callbacks.{k}={v}" for k, v in (("out", args.out), ("name", args.name)) if v]
    if args.max_maps is not None:
        writer.append(f"--trainer.callbacks.max_maps={args.max_maps}")
    from app.cli import main as cli_main

    cli_args = ["test", *[a for c in args.config for a in ("--config", c)], *extra, "--ckpt_path", args.ckpt_path,
                "--trainer.logger=false", "--trainer.limit_test_batches=1", *writer]  # fmt: skip
    try:
        cli_main(cli_args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
