"""Generator families: training, checkpoint round trips, exact resume, failure modes, the CLI."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
from pathlib import Path

import h5py
import lightning as L
import numpy as np
import pytest
import torch
import yaml
from astropy.io import fits
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from app.data import GalaxyDataModule
from app.families import Diffusion, DiffusionMamba, InDI, Pix2Pix, ResidualDiffusion
from app.families.callbacks import EMAAverage
from app.nets.options import UNetOptions

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}
FAMILIES = {
    "indi": lambda: InDI(net=NET, steps=3),
    "diffusion_edm": lambda: Diffusion(net=NET, steps=3, sampler="heun"),
    "diffusion_eps_ddim": lambda: Diffusion(net=NET, steps=4, parameterization="eps", sampler="ddim"),
    "diffusion_v": lambda: Diffusion(
        net=NET, steps=3, parameterization="v", schedule="cosine", sampler="dpmpp_2m"
    ),
    "pix2pix": lambda: Pix2Pix(net=NET, discriminator={"base_channels": 8, "n_layers": 2}),
    "dim": lambda: DiffusionMamba(net={**NET, "mamba_d_state": 4}, steps=2, sampler="euler"),
    "residual": lambda: ResidualDiffusion(net=NET, steps=3, sampler="heun"),
}


def _dm(mock_dir: Path, **kw) -> GalaxyDataModule:
    opts = {
        "source": "dm",
        "targets": ["gas"],
        "size": 16,
        "batch_size": 4,
        "seed": 0,
        "split": (0.5, 0.25, 0.25),
    } | kw
    return GalaxyDataModule(data=str(mock_dir), **opts)


def _trainer(tmp_path: Path, **kw) -> L.Trainer:
    opts = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": tmp_path,
            "accelerator": "cpu", "deterministic": True, "num_sanity_val_steps": 0} | kw  # fmt: skip
    return L.Trainer(**opts)


class Losses(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(trainer.callback_metrics["train/loss"]))


@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "pix2pix"])
def test_family_loss_decreases_on_a_fixed_batch(mock_dir, name):
    torch.manual_seed(0)
    model = FAMILIES[name]()
    dm = _dm(mock_dir, augment=False)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)  # a residual model's mean network too
    losses = []
    for _ in range(25):
        loss = model.training_loss(batch, generator=torch.Generator().manual_seed(0))  # same noise each step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]


def test_pix2pix_trains_both_players(mock_dir, tmp_path):
    torch.manual_seed(0)
    rec = Losses()
    model = Pix2Pix(net=NET, discriminator={"base_channels": 8, "n_layers": 2}, lr=2e-3)
    trainer = _trainer(
        tmp_path, max_epochs=25, overfit_batches=1, enable_checkpointing=False, callbacks=[rec]
    )
    trainer.fit(model, datamodule=_dm(mock_dir, augment=False))
    assert rec.values[-1] < 0.5 * rec.values[0]  # the L1 of the generator
    assert "train/d_loss" in trainer.callback_metrics and "train/g_loss" in trainer.callback_metrics
    assert trainer.global_step == 2 * 25  # manual optimisation: two optimiser steps per batch


@pytest.mark.parametrize("name", list(FAMILIES))
def test_checkpoint_round_trip_predicts_identically(mock_dir, tmp_path, name):
    torch.manual_seed(0)
    model = FAMILIES[name]()
    dm = _dm(mock_dir)
    trainer = _trainer(
        tmp_path,
        max_steps=4,  # pix2pix: two batches (two optimiser steps each), so the EMA moves off the raw weights
        limit_val_batches=1,
        callbacks=[ModelCheckpoint(dirpath=tmp_path, save_last=True)],
    )
    trainer.fit(model, datamodule=dm)
    source = next(iter(dm.val_dataloader()))["source"]
    model.eval()
    before = model.generate(source, generator=torch.Generator().manual_seed(7))
    loaded = type(model).load_from_checkpoint(tmp_path / "last.ckpt")
    loaded.eval()
    after = loaded.generate(source, generator=torch.Generator().manual_seed(7))
    assert torch.equal(before, after)
    if isinstance(model, Diffusion):
        assert float(loaded.sigma_data) == float(model.sigma_data) and bool(loaded.sigma_data_measured)
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert "GalaxyDataModule" in ckpt and ckpt["GalaxyDataModule"]["transforms"]["gas"]["fitted"]
    # Lightning's weight averaging: the EMA weights are the state_dict, the raw ones kept beside
    ema_w, raw_w = ckpt["state_dict"], ckpt["current_model_state"]
    assert ema_w.keys() == raw_w.keys()
    assert any(not torch.equal(ema_w[k], raw_w[k]) for k in raw_w if k.startswith("net."))


def test_ema_average_warms_up_and_keeps_integers():
    avg = EMAAverage(0.999)
    a, c = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(avg(a, c, torch.tensor(0)), c * (1 - 0.1))  # d = 1/10 at n = 0
    torch.testing.assert_close(avg(a, c, torch.tensor(10**6)), c * (1 - 0.999))  # d = decay later
    assert torch.equal(avg(torch.tensor([3]), torch.tensor([5]), torch.tensor(4)), torch.tensor([5]))
    with pytest.raises(ValueError, match="EMA decay"):
        EMAAverage(1.0)


def test_checkpoint_of_the_own_ema_loads_its_ema_weights(tmp_path):
    model = InDI(net=NET)
    state = model.state_dict()
    ema_state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in state.items()}
    legacy = {**state, **{f"ema_{k}": v for k, v in ema_state.items() if k.startswith("net.")}}
    ckpt = {"state_dict": legacy, "hyper_parameters": dict(model.hparams), "epoch": 3, "global_step": 40,
            "pytorch-lightning_version": L.__version__}  # fmt: skip
    torch.save(ckpt, tmp_path / "old.ckpt")
    loaded = InDI.load_from_checkpoint(tmp_path / "old.ckpt")
    assert all(torch.equal(v, ema_state[k]) for k, v in loaded.state_dict().items())
    assert loaded.checkpoint_info == {"epoch": 3, "global_step": 40}


def test_loading_a_model_leaves_the_global_rng_alone(mock_dir, tmp_path):
    trainer = _trainer(tmp_path, max_steps=1, limit_val_batches=0,
                       callbacks=[ModelCheckpoint(dirpath=tmp_path, save_last=True)])  # fmt: skip
    trainer.fit(InDI(net=NET), datamodule=_dm(mock_dir))
    torch.manual_seed(11)
    InDI(net=NET)  # building the network draws its initial weights: the same draws as a load
    expected = torch.rand(3)
    torch.manual_seed(11)
    InDI.load_from_checkpoint(tmp_path / "last.ckpt")  # must not set the RNG to the checkpoint's state
    assert torch.equal(torch.rand(3), expected)


def test_resume_continues_with_the_same_losses(mock_dir, tmp_path):
    def run(epochs: int, ckpt: Path | None, root: Path) -> list[float]:
        L.seed_everything(3)
        rec = Losses()
        cb = ModelCheckpoint(dirpath=root, save_last=True)
        trainer = _trainer(
            root, max_epochs=epochs, limit_train_batches=3, limit_val_batches=1, callbacks=[rec, cb]
        )
        trainer.fit(Diffusion(net=NET, steps=2, sampler="euler"), datamodule=_dm(mock_dir), ckpt_path=ckpt)
        return rec.values

    full = run(3, None, tmp_path / "full")
    first = run(1, None, tmp_path / "part")
    resumed = run(3, tmp_path / "part" / "last.ckpt", tmp_path / "part")
    assert len(full) == 9 and first == full[:3]
    assert resumed == pytest.approx(full[3:], rel=1e-6, abs=0)


class _Exploding(InDI):
    def training_loss(self, batch, generator=None):
        loss = super().training_loss(batch, generator)
        return loss * float("nan") if self.training and self.global_step >= 2 else loss


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(mock_dir, tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=1)
    trainer = _trainer(tmp_path, max_steps=10, limit_val_batches=0, callbacks=[cb])
    with pytest.raises(
        FloatingPointError, match=r"non-finite training loss \(nan\) at step 2.*last good checkpoint is kept"
    ):
        trainer.fit(_Exploding(net=NET, steps=2), datamodule=_dm(mock_dir))
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


class TestBadConfig:
    def test_unknown_block_and_sampler(self):
        with pytest.raises(ValueError, match=r"model.net.block: unknown block type 'transformer'"):
            InDI(net={"block": "transformer"})
        with pytest.raises(ValueError, match=r"model.sampler: unknown sampler 'plms'"):
            Diffusion(net=NET, sampler="plms")
        with pytest.raises(ValueError, match=r"model.parameterization: unknown parameterization 'x0'"):
            Diffusion(net=NET, parameterization="x0")
        with pytest.raises(ValueError, match=r"model.net.in_channels is 3"):
            InDI(net={**NET, "in_channels": 3})

    def test_degenerate_indi_is_flagged(self, caplog):
        with caplog.at_level(logging.WARNING, logger="app.families.indi"):
            InDI(net=NET, steps=1)
            InDI(net=NET, steps=4, eps0=0.5)
            InDI(net=NET, steps=4, concat_source=False)
            assert not caplog.records
            InDI(net=NET, steps=4)
        assert "compounds the network's errors" in caplog.text

    def test_size_not_divisible_fails_before_training(self, mock_dir, tmp_path):
        rec = Losses()
        model = InDI(net={**NET, "channel_mults": [1, 2, 2, 2, 2, 2]})  # 6 levels: 2^5 = 32
        with pytest.raises(ValueError, match=r"data.size=16 does not fit model.net.*divisible by 32"):
            _trainer(tmp_path, max_steps=2, callbacks=[rec]).fit(model, datamodule=_dm(mock_dir))
        assert rec.values == []

    def test_target_count_mismatch(self, mock_dir, tmp_path):
        with pytest.raises(ValueError, match=r"model.target_channels is 1 but data.targets lists 2"):
            _trainer(tmp_path, max_steps=1).fit(
                InDI(net=NET), datamodule=_dm(mock_dir, targets=["gas", "hi"])
            )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_cli_fit_predict_and_bad_key(mock_dir, tmp_path):
    root = Path(__file__).resolve().parents[1]
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in mock_dir.rglob("*.hdf5")}
    common = [
        "--config", str(root / "configs/quickstart.yaml"), "--data.init_args.data", str(mock_dir),
        "--data.init_args.size", "16", "--data.init_args.split", "[0.5, 0.25, 0.25]",
        "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path),
    ]  # fmt: skip
    fit = _cli(
        "fit", *common, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.log_every_n_steps", "1", cwd=tmp_path
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    ckpt = next(tmp_path.rglob("last.ckpt"))
    # every metric column the docs name is one a run writes
    logged = set((ckpt.parent.parent / "metrics.csv").read_text().splitlines()[0].split(","))
    docs = [root / "README.md", *(root / "docs").glob("*.md")]
    named = {m for p in docs for m in re.findall(r"\b(?:train|val)/[a-z_]+(?:/[a-z_]+)?\b", p.read_text())}
    assert named and named <= logged, sorted(named - logged)
    pred = _cli("predict", *common, "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr[-3000:]
    out = next(
        (tmp_path / "runs" / "quickstart" / "predictions").rglob("prediction.gas.hdf5")
    )  # the config's MapWriter, cwd-relative
    with h5py.File(out) as f:
        images = f["gas/images"][()]
        assert images.shape[1:] == (16, 16) and images.shape[0] >= 1
        assert (images >= 0).all() and f["gas/metadata/0000"].attrs["units"] == "solMass / kpc2"
    again = _cli("predict", *common, "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "runs" / "quickstart" / "predictions-1" / "gas" / "hdf5" / "prediction.gas.hdf5").is_file()
    assert not list((tmp_path / "runs" / "quickstart").glob("version_*"))  # predict makes no logger folders
    # your own map: a 24² FITS in Msun/pc² with a 0.5 kpc pixel (not the model's 16² grid)
    own = np.abs(np.random.default_rng(1).normal(1.0, 0.3, (24, 24)))
    hdu = fits.PrimaryHDU(own)
    hdu.header.update({"BUNIT": "solMass / pc2", "CDELT1": 0.5, "CUNIT1": "kpc", "CDELT2": 0.5, "CUNIT2": "kpc"})
    hdu.writeto(tmp_path / "mine.fits")
    writer = '[{class_path: app.predict.MapWriter, init_args: {output_dir: mine_out}}]'
    mine = _cli("predict", *common, "--ckpt_path", str(ckpt), "--data.predict_maps", "[mine.fits]",
                "--trainer.callbacks", writer, cwd=tmp_path)  # fmt: skip
    assert mine.returncode == 0, mine.stderr[-3000:]
    with fits.open(tmp_path / "mine_out" / "fits" / "mine.gas.fits") as f:
        header, pred = f[0].header, f[0].data
    assert pred.shape == (24, 24) and (pred >= 0).all() and header["BUNIT"] == "solMass / kpc2"
    assert header["CDELT1"] == 0.5 and header["CUNIT1"] == "kpc" and header["GALFAM"] == "InDI"
    assert header["GALCKPT"] == str(ckpt) and header["GALSRC"].startswith("mine.fits")
    with h5py.File(tmp_path / "mine_out" / "prediction.gas.hdf5") as f:
        np.testing.assert_allclose(f["gas/maps/0000"][()], pred)
    # a checkpoint of another family, and a corrupt one, stop before anything is built
    wrong = _cli("predict", "--config", str(root / "configs/quickstart.yaml"), "--config",
                 str(root / "configs/quickstart/pix2pix.yaml"), "--ckpt_path", str(ckpt), cwd=tmp_path)  # fmt: skip
    assert wrong.returncode != 0 and "holds a app.families.InDI model but the config asks for app.families.Pix2Pix" in wrong.stderr
    (tmp_path / "bad.ckpt").write_bytes(b"\x00not a checkpoint" * 10)
    bad_ckpt = _cli("predict", *common, "--ckpt_path", str(tmp_path / "bad.ckpt"), cwd=tmp_path)
    assert bad_ckpt.returncode != 0 and "bad.ckpt is not a readable checkpoint (corrupt or truncated?)" in bad_ckpt.stderr
    report = subprocess.run(
        [sys.executable, "-m", "app.report", *common, "--ckpt_path", str(ckpt), "--out", str(tmp_path / "reports"),
         "--name", "tiny"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    text = (tmp_path / "reports" / "tiny" / "index.md").read_text()
    assert "## Training curves" in text and (tmp_path / "reports" / "tiny" / "training.png").stat().st_size > 1000
    # by default a report goes beside the run, and an existing one is never replaced
    for _ in range(2):
        beside = subprocess.run([sys.executable, "-m", "app.report", *common, "--ckpt_path", str(ckpt), "--max-maps", "2"],
                                capture_output=True, text=True, cwd=tmp_path, timeout=600)  # fmt: skip
        assert beside.returncode == 0, beside.stderr[-3000:]
    assert (ckpt.parent.parent / "reports" / "last" / "index.md").is_file()
    assert (ckpt.parent.parent / "reports" / "last-1" / "index.md").is_file()
    header = next(line for line in text.splitlines() if line.startswith("| domain"))
    for column in ("model", "floor (twin)", "oracle", "lookup", "log_linear", "scaling", "mean_map"):
        assert f" {column} " in header
    compare = subprocess.run(
        [sys.executable, "-m", "validation", "compare", str(tmp_path / "reports" / "tiny"), "--out", str(tmp_path / "cmp")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert compare.returncode == 0 and "| lookup * |" in (tmp_path / "cmp" / "index.md").read_text()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in mock_dir.rglob("*.hdf5")} == sha
    bad = _cli(
        "fit",
        *common,
        "--model.init_args.net.block",
        "transformer",
        "--trainer.max_epochs",
        "1",
        cwd=tmp_path,
    )
    assert bad.returncode != 0 and "model.net.block: unknown block type 'transformer'" in bad.stderr


@pytest.mark.parametrize("family", ["InDI", "Diffusion", "DiffusionMamba", "ResidualDiffusion", "Pix2Pix", "BaselineModel"])
def test_cli_documents_and_validates_the_shared_options(family, tmp_path):
    """The options every family takes from ``Translator`` reach LightningCLI's help and type checks."""
    from app.cli import main

    help_run = _cli("fit", "--model.help", f"app.families.{family}", cwd=tmp_path)
    assert help_run.returncode == 0, help_run.stderr[-2000:]
    trained = family != "BaselineModel"  # a baseline has no weights: no lr, no EMA
    for option in ("val_maps", "score_weights", "sample_seed", *(("lr", "ema_decay") if trained else ())):
        assert f"--model.{option}" in help_run.stdout
    text = " ".join(help_run.stdout.split()).lower()
    assert ("validation, test, prediction and saved checkpoints use the ema weights" in text) == trained
    with pytest.raises(SystemExit):
        main(["fit", "--model", f"app.families.{family}", "--model.init_args.val_maps", "many",
              "--trainer.logger=false", "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip


def test_net_options_are_typed_merged_across_configs_and_checked(tmp_path):
    root = Path(__file__).resolve().parents[1]
    merged = _cli("fit", "--config", str(root / "configs/quickstart.yaml"), "--config", str(root / "configs/unet/vit.yaml"),
                  "--print_config", cwd=tmp_path)  # fmt: skip
    assert merged.returncode == 0, merged.stderr[-2000:]
    net = yaml.safe_load(merged.stdout)["model"]["init_args"]["net"]
    assert (net["block"], net["vit_patch"], net["base_channels"], net["channel_mults"]) == ("vit", 2, 16, [1, 2, 4])
    typo = _cli("fit", "--config", str(root / "configs/quickstart.yaml"), "--model.net.blokc", "vit", cwd=tmp_path)
    assert typo.returncode != 0 and "net.blokc" in typo.stderr
    assert DiffusionMamba(net=UNetOptions(base_channels=8)).hparams.net["block"] == "residual"  # as given
    assert DiffusionMamba(net={"base_channels": 8}).hparams.net == {"block": "mamba", "base_channels": 8}
    assert isinstance(InDI(net=UNetOptions(base_channels=8, channel_mults=[1, 2])).hparams.net, dict)


def test_a_model_without_a_galchemy_data_module_stops_with_a_clear_error(tmp_path):
    """The physics metrics are never silently skipped: the data contract is required."""
    loader = torch.utils.data.DataLoader([{"source": torch.zeros(1, 16, 16), "target": torch.zeros(1, 16, 16),
                                           "index": 0}], batch_size=1)  # fmt: skip
    with pytest.raises(TypeError, match="needs a galchemy data module"):
        _trainer(tmp_path).validate(InDI(net=NET), dataloaders=loader)


def test_impossible_shared_options_name_the_option():
    for bad, match in (({"val_maps": 0}, "model.val_maps must be >= 1"), ({"lr": -1.0}, "model.lr must be >= 0"),
                       ({"ema_decay": 1.0}, r"model.ema_decay must be in \[0, 1\)"),
                       ({"target_channels": 0}, "model.target_channels must be >= 1")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            InDI(net=NET, **bad)
