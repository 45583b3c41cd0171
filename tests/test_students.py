"""The distilled families through Lightning: teachers from checkpoints, rounds, resumption, bad inputs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from app.data import GalaxyDataModule
from app.families import Consistency, Diffusion, InDI, Progressive

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}


def _dm(mock_dir: Path, **kw) -> GalaxyDataModule:
    opts = {"source": "dm", "targets": ["gas"], "size": 16, "batch_size": 4, "seed": 0, "split": (0.5, 0.25, 0.25)}
    return GalaxyDataModule(data=str(mock_dir), **(opts | kw))


def _fit(model: L.LightningModule, dm: GalaxyDataModule, root: Path, steps: int = 3, ckpt: Path | None = None) -> Path:
    """Fit ``steps`` optimiser steps; the path of the run's ``last.ckpt``."""
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
                        accelerator="cpu", deterministic=True, num_sanity_val_steps=0, max_steps=steps,
                        limit_val_batches=1, callbacks=[ModelCheckpoint(dirpath=root, save_last=True)])  # fmt: skip
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return root / "last.ckpt"


@pytest.fixture(scope="module")
def teacher(mock_dir, tmp_path_factory) -> Path:
    """A briefly trained EDM diffusion checkpoint (the teacher of every test here)."""
    L.seed_everything(0)
    return _fit(Diffusion(net=NET, steps=3, val_maps=2), _dm(mock_dir), tmp_path_factory.mktemp("teacher"), 4)


def _source(dm: GalaxyDataModule) -> torch.Tensor:
    dm.setup("fit")
    return next(iter(dm.val_dataloader()))["source"]


def test_students_start_from_the_teachers_weights_and_keep_it_frozen_in_eval_mode(teacher):
    weights = Diffusion.load_from_checkpoint(teacher).net.state_dict()
    for student in (Consistency(teacher=str(teacher)), Progressive(teacher=str(teacher), steps=4)):
        mine = student.net.state_dict()
        assert all(torch.equal(mine[k], weights[k]) for k in weights)
        assert float(student.sigma_data) == float(Diffusion.load_from_checkpoint(teacher).sigma_data)
        assert not any(p.requires_grad for p in student.teacher.parameters())
        student.train()  # as Lightning does before every training epoch: the teacher stays in eval (no dropout)
        assert student.net.training and not any(m.training for m in student.teacher.modules())


def test_students_of_an_edm_and_a_v_teacher_take_its_sigma_range_and_parameterisation(teacher, mock_dir, tmp_path):
    model = Consistency(teacher=str(teacher))
    assert (model.hparams.sigma_min, model.hparams.sigma_max) == (0.002, 80.0)  # the EDM teacher's
    torch.testing.assert_close(model.grid[[0, -1]], torch.tensor([0.002, 80.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"leave the teacher's σ range \[0.002, 80\]"):
        Consistency(teacher=str(teacher), sigma_max=200.0)
    vp = _fit(Diffusion(net=NET, parameterization="v", schedule="linear"), _dm(mock_dir), tmp_path / "vp", steps=1)
    lo, hi = Consistency(teacher=str(vp)).grid[[0, -1]].tolist()
    assert lo == pytest.approx(0.0100, abs=1e-4) and hi == pytest.approx(157.4, abs=0.1)  # the VP schedule's σ range
    v_student = Progressive(teacher=str(vp), steps=2)  # a v-prediction student on the VP DDIM grid
    assert v_student.param.name == "v"
    torch.testing.assert_close(v_student.student_grid, v_student.teacher.param.sampling_sigmas(4, "ddim")[::2])
    _fit(v_student, _dm(mock_dir), tmp_path / "vs", steps=1)
    assert torch.isfinite(v_student.generate(_source(_dm(mock_dir)))).all()


@pytest.mark.parametrize("accumulate", [1, 3])
def test_consistency_target_network_follows_by_its_decay_once_per_optimiser_step(mock_dir, teacher, tmp_path, accumulate):
    model = Consistency(teacher=str(teacher), target_decay=0.9, ema_decay=0)
    before = {k: v.clone() for k, v in model.target_net.state_dict().items()}
    L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
              accelerator="cpu", num_sanity_val_steps=0, max_steps=1, limit_val_batches=0,
              accumulate_grad_batches=accumulate, enable_checkpointing=False).fit(model, datamodule=_dm(mock_dir))  # fmt: skip
    online, target = model.net.state_dict(), model.target_net.state_dict()
    moved = [k for k in before if k.endswith("weight") and not torch.equal(online[k], before[k])]
    assert moved
    for k in moved:  # θ⁻ = 0.9 θ⁻_old + 0.1 θ
        torch.testing.assert_close(target[k], 0.9 * before[k] + 0.1 * online[k])


@pytest.mark.parametrize("student", ["consistency", "progressive"])
def test_a_student_checkpoint_predicts_and_resumes_without_the_teachers_file(mock_dir, teacher, tmp_path, student):
    own = tmp_path / "teacher.ckpt"
    shutil.copy(teacher, own)
    make = {"consistency": lambda: Consistency(teacher=str(own), steps=2),
            "progressive": lambda: Progressive(teacher=str(own), steps=2)}[student]  # fmt: skip
    L.seed_everything(0)
    model = make()
    last = _fit(model, _dm(mock_dir), tmp_path / "a", steps=2)
    source = _source(_dm(mock_dir))
    model.eval()
    before = model.generate(source, generator=torch.Generator().manual_seed(3))
    own.unlink()  # the teacher's file is gone: the student's checkpoint has what it needs
    loaded = type(model).load_from_checkpoint(last).eval()
    assert torch.equal(loaded.generate(source, generator=torch.Generator().manual_seed(3)), before)
    resumed = type(model).load_from_checkpoint(last)
    _fit(resumed, _dm(mock_dir), tmp_path / "a", steps=4, ckpt=last)
    assert torch.load(tmp_path / "a" / "last.ckpt", weights_only=False)["global_step"] == 4
    if student == "progressive":  # and teaches the next round
        after = torch.load(tmp_path / "a" / "last.ckpt", weights_only=False)["state_dict"]
        next_round = Progressive(teacher=str(tmp_path / "a" / "last.ckpt"), steps=1)
        assert all(torch.equal(v, after[f"net.{k}"]) for k, v in next_round.teacher.net.state_dict().items())


def test_progressive_rounds_chain_and_halve_the_grid(mock_dir, teacher, tmp_path):
    first = Progressive(teacher=str(teacher), steps=4)
    assert (first.hparams.base_steps, first.hparams.teacher_steps) == (8, 8)
    torch.testing.assert_close(first.teacher_grid, Diffusion.load_from_checkpoint(teacher).param.sampling_sigmas(8, "ddim"))
    round1 = _fit(first, _dm(mock_dir), tmp_path / "r1", steps=2)
    second = Progressive(teacher=str(round1), steps=2)
    assert (second.hparams.base_steps, second.hparams.teacher_steps) == (8, 4)
    torch.testing.assert_close(second.teacher_grid, first.student_grid)
    torch.testing.assert_close(second.student_grid, first.teacher_grid[::4])
    round1_net = Progressive.load_from_checkpoint(round1).net.state_dict()
    assert all(torch.equal(v, round1_net[k]) for k, v in second.teacher.net.state_dict().items())
    with pytest.raises(ValueError, match=r"halves its teacher's 4 steps, so steps must be 2"):
        Progressive(teacher=str(round1), steps=1)
    with pytest.raises(ValueError, match=r"base_steps=16, but the teacher round samples on a 8-step base grid"):
        Progressive(teacher=str(round1), steps=2, base_steps=16)
    with pytest.raises(ValueError, match="this progressive student was distilled for 4 steps"):
        first.generate(_source(_dm(mock_dir)), steps=3)


def test_a_consistency_student_samples_in_its_steps(mock_dir, teacher):
    model = Consistency(teacher=str(teacher), steps=1).eval()
    source = _source(_dm(mock_dir))
    calls = []
    model.net.register_forward_hook(lambda *a: calls.append(1))
    for steps in (1, 2, 4):
        calls.clear()
        out = model.generate(source, generator=torch.Generator().manual_seed(0), steps=steps)
        assert len(calls) == steps and torch.isfinite(out).all()
    zero = torch.zeros(source.shape[0], 1, 16, 16)
    one = model.generate(source, noise=zero, steps=1)
    # one step from z = 0 at σ_max is f(0, σ_max) = c_out(σ_max) F(cat[source, 0], ln σ_max / 4)
    sd, smax = float(model.sigma_data), 80.0
    c_out = sd * (smax - 0.002) / (sd**2 + smax**2) ** 0.5
    with torch.no_grad():
        expected = c_out * model.net(torch.cat([source, zero], 1), torch.full((source.shape[0],), math.log(smax) / 4))
    torch.testing.assert_close(one, expected, rtol=1e-5, atol=1e-6)


def test_bad_teachers_and_options_fail_with_the_option_named(mock_dir, teacher, tmp_path):
    with pytest.raises(ValueError, match=r"model.teacher: no checkpoint at .*missing.ckpt"):
        Consistency(teacher=str(tmp_path / "missing.ckpt"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"model.teacher: .*junk.ckpt is not a readable checkpoint"):
        Progressive(teacher=str(junk), steps=2)
    indi = _fit(InDI(net=NET), _dm(mock_dir), tmp_path / "indi", steps=1)
    with pytest.raises(ValueError, match="a teacher is a diffusion checkpoint"):
        Consistency(teacher=str(indi))
    with pytest.raises(ValueError, match="progressive distillation needs a teacher"):
        Progressive(steps=2)
    with pytest.raises(ValueError, match=r"model.net: a distilled student takes its teacher's U-Net"):
        Consistency(teacher=str(teacher), net=NET)
    with pytest.raises(ValueError, match=r"model.taus: need 2 \(model.steps\) decreasing"):
        Consistency(teacher=str(teacher), steps=2, taus=[1.0, 5.0])
    with pytest.raises(ValueError, match=r"model.target_decay"):
        Consistency(teacher=str(teacher), target_decay=1.0)
    spec = Progressive(teacher=str(teacher), steps=4).hparams.teacher_spec
    with pytest.raises(ValueError, match=r"needs model.teacher_steps and model.base_steps"):
        Progressive(teacher_spec=spec, steps=4)
    bare = torch.load(teacher, weights_only=False)
    bare.pop("GalaxyDataModule")
    torch.save(bare, tmp_path / "bare.ckpt")
    with pytest.raises(ValueError, match=r"bare.ckpt has no data-module state"):
        Consistency(teacher=str(tmp_path / "bare.ckpt"))


def test_a_teacher_trained_on_other_normalised_units_is_refused(mock_dir, teacher, tmp_path):
    other = _dm(mock_dir, transforms={"gas": "asinh"})  # the teacher's gas transform was log10
    with pytest.raises(ValueError, match=r"model.teacher: the teacher's gas transform has name='log10'"):
        _fit(Consistency(teacher=str(teacher)), other, tmp_path)


def test_consistency_training_needs_no_teacher_and_measures_sigma_data(mock_dir, tmp_path):
    model = Consistency(net=NET)
    _fit(model, _dm(mock_dir), tmp_path, steps=1)
    assert model.teacher is None and bool(model.sigma_data_measured) and float(model.sigma_data) != 1.0
