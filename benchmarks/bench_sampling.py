"""Wall time and physics scores per sampler and step count, for trained quickstart-size models.

Usage: ``python benchmarks/bench_sampling.py [--epochs 30] [--diffusion-ckpt C] [--indi-ckpt C]``

Trains (or loads) an EDM diffusion model and an InDI model on the built-in mock galaxies
(dm → gas, 64², the quickstart's data and U-Net), then, in one run, generates the test
split with every sampler at 1000/100/50/20/10/5 steps and InDI at 1/2/5/10 steps, and
prints seconds per map, network evaluations and the physics scores of the predictions in
physical units (mean over test maps): |log10 M_pred/M_true| [dex], P(k) error [dex] and 1 − r over
[3 k_F, k_Nyq/2].
"""

from __future__ import annotations

import argparse
import logging
import time

import lightning as L
import torch

import physics
from app.data import GalaxyDataModule
from app.families import Diffusion, InDI
from app.families.inference import generate_physical

NET = {"block": "residual", "base_channels": 16, "channel_mults": [1, 2, 4]}


def _data(args) -> GalaxyDataModule:
    dm = GalaxyDataModule(source="dm", targets=["gas"], size=64, batch_size=16, mock_dir=args.mock_dir,
                          mock_galaxies=80, mock_size=128, seed=0)  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _train(model: L.LightningModule, dm: GalaxyDataModule, epochs: int) -> L.LightningModule:
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return model


def _scores(model, dm: GalaxyDataModule, **overrides) -> tuple[float, dict[str, float]]:
    """Seconds per map and scores of the test split, through the one generate → physical path."""
    model.eval()
    preds, trues, elapsed, n = [], [], 0.0, 0
    for batch in dm.test_dataloader():
        t0 = time.perf_counter()
        out = generate_physical(
            model, batch, dm.to_physical, model.hparams.sample_seed, len(dm.targets), **overrides
        )
        elapsed += time.perf_counter() - t0
        n += out.physical.shape[0]
        preds.append(out.physical[:, 0])
        trues.append(dm.to_physical(batch["target"].double())[:, 0])
    p, t = torch.cat(preds), torch.cat(trues)
    return elapsed / n, {
        "mass": float(physics.mass_log_error(p, t).abs().mean()),
        "pk_dex": float(
            physics.spectrum_log_error(p, t).mean()
        ),  # per-map mean (not the summed-power metric)
        "one_minus_r": float(physics.correlation_error(p, t).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--mock-dir", default="data/mock")
    parser.add_argument("--diffusion-ckpt")
    parser.add_argument("--indi-ckpt")
    parser.add_argument("--samplers", nargs="+", default=["euler", "heun", "lms", "dpmpp_2m", "ddim"])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 100, 50, 20, 10, 5])
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    L.seed_everything(0)
    dm = _data(args)
    t0 = time.perf_counter()
    diff = (
        Diffusion.load_from_checkpoint(args.diffusion_ckpt)
        if args.diffusion_ckpt
        else _train(Diffusion(net=NET, parameterization="edm", lr=2e-3, ema_decay=0.99), dm, args.epochs)
    )
    indi = InDI.load_from_checkpoint(args.indi_ckpt) if args.indi_ckpt else _train(
        InDI(net=NET, lr=2e-3, ema_decay=0.99), dm, args.epochs)  # fmt: skip
    print(
        f"# trained/loaded both models in {time.perf_counter() - t0:.0f} s; test split: {len(dm.datasets['test'])} maps of 64^2"
    )
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(
        f"{'model':>10s} {'sampler':>9s} {'steps':>6s} {'NFE':>5s} {'s/map':>8s} {'M dex':>8s} {'P(k) dex':>9s} {'1-r':>7s}"
    )
    for sampler in args.samplers:
        for steps in args.steps:
            sec, s = _scores(diff, dm, sampler=sampler, steps=steps)
            nfe = 2 * steps - 1 if sampler == "heun" else steps
            print(
                f"{'diffusion':>10s} {sampler:>9s} {steps:>6d} {nfe:>5d} {sec:8.4f} {s['mass']:8.3f} {s['pk_dex']:9.3f} {s['one_minus_r']:7.3f}"
            )
    for steps in (1, 2, 5, 10):
        sec, s = _scores(indi, dm, steps=steps)
        print(
            f"{'InDI':>10s} {'indi':>9s} {steps:>6d} {steps:>5d} {sec:8.4f} {s['mass']:8.3f} {s['pk_dex']:9.3f} {s['one_minus_r']:7.3f}"
        )


if __name__ == "__main__":
    main()
