"""Every shipped config parses and runs one training step (and a validation) on a tiny mock.

The sizes are overridden so CI can run them on CPU; the configs' own settings are run by
hand before a release (docs/benchmarks.md lists those runs).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from app.cli import main
from app.data import write_mock_set

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ["indi", "pix2pix", "diffusion", "dim"]
RUNS = (
    [[f"configs/{c}.yaml"] for c in FAMILY]
    + [["configs/quickstart.yaml"]]
    + [["configs/quickstart.yaml", f"configs/quickstart/{c}.yaml"] for c in ("pix2pix", "diffusion", "dim", "residual")]
    + [["configs/quickstart.yaml", f"configs/unet/{b}.yaml"] for b in ("vanilla", "residual", "attention", "vit", "mamba")]
    + [["configs/quickstart.yaml", "configs/strategies/ddp.yaml"]]
    + [["configs/quickstart.yaml", f"configs/distill/{c}.yaml"] for c in ("consistency", "progressive")]
)


@pytest.fixture(scope="module")
def tiny_mock(tmp_path_factory) -> Path:
    logging.getLogger("app").setLevel(logging.ERROR)
    return write_mock_set(tmp_path_factory.mktemp("cfg") / "set", galaxies=6, size=32, seed=0, progress=False)


def test_every_config_is_covered():
    shipped = {str(p.relative_to(ROOT)) for p in ROOT.glob("configs/**/*.yaml") if "fidelity" not in p.parts}
    covered = {c for run in RUNS for c in run} | {"configs/baseline.yaml", "configs/strategies/fsdp.yaml"}
    assert shipped == covered, shipped ^ covered


def _tiny_args(tiny_mock: Path, configs: list[str]) -> list[str]:
    return ["fit", *[a for c in configs for a in ("--config", str(ROOT / c))],
            "--data.init_args.data", str(tiny_mock), "--data.init_args.size", "32", "--data.init_args.batch_size", "2",
            "--data.init_args.num_workers", "0", "--data.init_args.split", "[0.5, 0.25, 0.25]",
            "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.val_check_interval", "1",
            "--trainer.enable_progress_bar", "false", "--model.init_args.val_maps", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_mock, tmp_path_factory) -> Path:
    """The quickstart diffusion config's checkpoint after one step: the distill configs' teacher."""
    root = tmp_path_factory.mktemp("teacher")
    main([*_tiny_args(tiny_mock, ["configs/quickstart.yaml", "configs/quickstart/diffusion.yaml"]),
          "--trainer.default_root_dir", str(root), "--trainer.logger", "false"])  # fmt: skip
    return next(root.rglob("last.ckpt"))


@pytest.mark.parametrize("configs", RUNS, ids=["+".join(Path(c).stem for c in r) for r in RUNS])
def test_config_runs_one_step_with_its_callbacks(configs, tiny_mock, tmp_path, monkeypatch, request):
    args = _tiny_args(tiny_mock, configs)
    student = any("distill" in c for c in configs)
    if student:  # a distilled student needs its teacher (a copy, deleted after training)
        teacher = tmp_path / "teacher.ckpt"
        shutil.copy(request.getfixturevalue("teacher_ckpt"), teacher)
        args += ["--model.init_args.teacher", str(teacher)]
    monkeypatch.chdir(tmp_path)  # the configs' runs/ folders land here
    env = dict(os.environ)
    try:
        main(args)
    finally:  # the ddp overlay starts a (1-process) process group here: free its port for later tests
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key in set(os.environ) - set(env):
            del os.environ[key]
    assert list(tmp_path.rglob("last.ckpt")), "the config's checkpoint callback wrote nothing"
    if student:  # the student's checkpoint carries its teacher: validate it with the teacher's file gone
        teacher.unlink()
        last = next(tmp_path.rglob("last.ckpt"))
        validate = ["validate", *args[1:args.index("--trainer.max_steps")], "--ckpt_path", str(last),
                    "--trainer.logger", "false", "--model.init_args.val_maps", "2"]  # fmt: skip
        main(validate)


def test_baseline_config_validates(tiny_mock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["validate", "--config", str(ROOT / "configs/baseline.yaml"), "--data.init_args.data", str(tiny_mock),
          "--data.init_args.size", "32", "--data.init_args.split", "[0.5, 0.25, 0.25]",
          "--trainer.enable_progress_bar", "false"])  # fmt: skip


def test_the_fsdp_overlay_parses_and_asks_for_a_gpu(tiny_mock, tmp_path, monkeypatch):
    """FSDP is GPU-only in Lightning: on this CPU the overlay must stop with Lightning's GPU error
    (not run something else), with EMA off as the overlay sets it."""
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(ROOT / "configs/diffusion.yaml"), "--config", str(ROOT / "configs/strategies/fsdp.yaml"),
            "--data.init_args.data", str(tiny_mock), "--data.init_args.size", "32", "--print_config"]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 0
    with pytest.raises(Exception, match=r"(?i)gpu|cuda"):
        main([*args[:-1], "--trainer.max_steps", "1"])


def test_ema_refuses_a_sharded_strategy():
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    from app.families.callbacks import ema

    with pytest.raises(ValueError, match=r"model.ema_decay=0.99 needs an unsharded model, but the trainer's strategy is FSDPStrategy"):
        ema(0.99, FSDPStrategy())
    assert ema(0.99, DDPStrategy()) is not None and ema(0.99) is not None


def test_the_configs_logger_writes_csv_and_tensorboard_side_by_side(tmp_path):
    from app.loggers import CurvesLogger

    logger = CurvesLogger(tmp_path, name="logs")
    logger.log_hyperparams({"lr": 1e-3, "net": {"block": "residual"}})
    logger.log_metrics({"train/loss": 0.5, "val/physics_score": 1.25}, step=3)
    logger.finalize("success")
    folder = tmp_path / "logs" / "version_0"
    assert (folder / "metrics.csv").read_text().splitlines()[0].split(",") == ["step", "train/loss", "val/physics_score"]
    events = list(folder.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("val/physics_score")] == [(3, 1.25)]


def test_options_typed_for_a_checkpoint_run_win_over_the_checkpoints(tiny_mock, teacher_ckpt, tmp_path, monkeypatch):
    # Lightning puts the checkpoint's hyper-parameters over the config; what was typed on this
    # command line (sampling steps, DeepCache, token merging, val_maps) must still be what runs
    from app.cli import GalchemyCLI, typed_model_keys
    from app.data import GalaxyDataModule
    from app.families import Translator

    assert typed_model_keys(["--model.init_args.steps", "4", "--model.val_maps=2", "--model.class_path", "x",
                             "--trainer.max_steps", "1"]) == ["model.init_args.steps", "model.init_args.val_maps"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    args = [a if a != "fit" else "validate" for a in _tiny_args(tiny_mock, ["configs/quickstart.yaml", "configs/quickstart/diffusion.yaml"])]
    args = [*args[: args.index("--trainer.max_steps")], "--ckpt_path", str(teacher_ckpt), "--trainer.logger", "false",
            "--model.init_args.steps", "3", "--model.init_args.deepcache_interval", "2",
            "--model.init_args.val_maps=1", "--trainer.limit_val_batches", "1"]  # fmt: skip
    cli = GalchemyCLI(Translator, GalaxyDataModule, subclass_mode_model=True, subclass_mode_data=True,
                      save_config_callback=None, args=args, auto_configure_optimizers=False)  # fmt: skip
    hp = cli.model.hparams
    assert (hp.steps, hp.deepcache_interval, hp.val_maps) == (3, 2, 1)  # the checkpoint has 10, 1 and 2
    assert hp.lr == 2.0e-3  # an option not typed keeps the checkpoint's
