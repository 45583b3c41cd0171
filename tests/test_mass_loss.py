"""The total-mass loss: known answers, the channels it sums, and its wiring into pix2pix."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch

from app.data import GalaxyDataModule
from app.data.transforms import make_transform
from app.families import Pix2Pix
from app.families.mass_loss import MASS_FLOOR, mass_channels, mass_dex_loss

NET = {"block": "residual", "base_channels": 8, "channel_mults": [1, 2]}


def _exp10(y: torch.Tensor) -> torch.Tensor:
    return 10.0 ** y.to(torch.float64)


def _dex(ratio: float) -> float:
    """The loss's value for one map predicted ``ratio`` times too heavy."""
    return abs(math.log10((ratio + MASS_FLOOR) / (1 + MASS_FLOOR)))


def test_known_mass_errors_in_dex_and_the_gradient():
    torch.manual_seed(0)
    target = torch.randn(3, 2, 5, 7, dtype=torch.float64)
    pred = target.clone()
    pred[0, 0] += 0.1  # 10^0.1 times too heavy
    pred[1, 0] -= 0.1  # as much too light: the same cost (a relative error would charge it less)
    loss = mass_dex_loss(pred, target, _exp10, [0])  # map 2 is exact
    assert float(loss) == pytest.approx((_dex(10**0.1) + _dex(10**-0.1)) / 3, rel=1e-12)
    assert _dex(10**0.1) == pytest.approx(_dex(10**-0.1), rel=1e-3)
    assert float(mass_dex_loss(pred, target, _exp10, [0, 1])) == pytest.approx(float(loss) / 2, rel=1e-12)
    # an emptied prediction costs a finite ~3 dex
    emptied = mass_dex_loss(torch.full_like(target, -400.0), target, _exp10, [0])
    assert float(emptied) == pytest.approx(_dex(0.0), rel=1e-12) and 3.0 < float(emptied) < 3.001
    # the gradient of map 0's term: d/dy log10(M_p + f) = x_p ln10 / ((M_p + f) ln10) = x_p / (M_p + f)
    p = pred.clone().requires_grad_(True)
    mass_dex_loss(p, target, _exp10, [0]).backward()
    m_t = _exp10(target[0, 0]).sum()
    x_p = _exp10(pred[0, 0])
    expected = x_p / (x_p.sum() + MASS_FLOOR * m_t) / 3
    torch.testing.assert_close(p.grad[0, 0], expected, rtol=1e-10, atol=0)
    assert float(p.grad[2].abs().max()) == 0.0  # an exact map (|0|' = 0) ...
    assert float(p.grad[:, 1].abs().max()) == 0.0  # ... and a channel not summed get no gradient


def test_maps_without_mass_are_left_out():
    target = torch.full((2, 1, 4, 4), -1.0)
    pred = target + 0.5
    empty = lambda y: torch.where(y < 0, torch.zeros_like(y), y).to(torch.float64)  # noqa: E731
    assert float(mass_dex_loss(pred, target, empty, [0])) == 0.0  # no true mass anywhere
    target[1] = 1.0
    pred[1] = 10.0  # only map 1 has mass: 10 times too heavy
    assert float(mass_dex_loss(pred, target, empty, [0])) == pytest.approx(_dex(10.0), rel=1e-6)  # float32 maps


def test_gradient_through_a_fitted_power_transform():
    """The data's own inverse (HI's ``power``, with its floor snap): autograd equals finite
    differences on the pixels above the floor, and snapped pixels get none."""
    torch.manual_seed(0)
    truth = torch.rand(2, 1, 6, 6, dtype=torch.float64) ** 8 * 1e7
    truth[:, :, :2] = 0.0  # empty pixels, as HI maps have
    transform = make_transform("hi", None, "power").fit(lambda: [truth])
    pred = (transform.forward(truth) + 0.05 * torch.randn_like(truth)).requires_grad_(True)
    loss = mass_dex_loss(pred, transform.forward(truth), transform.inverse, [0])
    loss.backward()
    physical = transform.inverse(pred.detach())
    for b, i, j in [(0, 3, 3), (1, 5, 0), (0, 4, 5)]:
        assert physical[b, 0, i, j] > 0  # above the floor
        step = torch.zeros_like(truth)
        step[b, 0, i, j] = 1e-6
        up = mass_dex_loss(pred.detach() + step, transform.forward(truth), transform.inverse, [0])
        down = mass_dex_loss(pred.detach() - step, transform.forward(truth), transform.inverse, [0])
        assert float(pred.grad[b, 0, i, j]) == pytest.approx(float(up - down) / 2e-6, rel=1e-5)
    snapped = physical == 0
    assert bool(snapped.any()) and float(pred.grad[snapped].abs().max()) == 0.0


def test_only_mass_carrying_domains_are_summed():
    assert mass_channels(["hi", "temp", "gas", "bfield", "dm", "star"]) == [0, 2, 4, 5]
    assert mass_channels(["temp", "bfield"]) == []


def _fit(model: Pix2Pix, mock_dir: Path, tmp_path: Path, target: str, steps: int = 2) -> L.Trainer:
    dm = GalaxyDataModule(data=str(mock_dir), source="gas", targets=[target], size=16, batch_size=4, seed=0,
                          split=(0.5, 0.25, 0.25), augment=False)  # fmt: skip
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        default_root_dir=tmp_path, max_steps=steps, overfit_batches=1, enable_checkpointing=False,
                        num_sanity_val_steps=0, limit_val_batches=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return trainer


def test_pix2pix_adds_the_weighted_mass_error_to_the_generator_loss(mock_dir, tmp_path):
    """One batch from the same seed with and without the term: the critic's step and the generator's
    GAN and L1 terms are identical, so the generator losses differ by exactly ``mass_weight`` × the
    logged mass error."""
    metrics, weights = {}, {}
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        model = Pix2Pix(net=NET, discriminator={"base_channels": 8, "n_layers": 2}, lr=2e-3, mass_weight=weight)
        trainer = _fit(model, mock_dir, tmp_path, "hi", steps=2)  # one batch: two optimiser steps
        metrics[weight] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        weights[weight] = [p.detach().clone() for p in model.net.parameters()]
    assert "train/mass_error" not in metrics[0.0]
    mass = metrics[10.0]["train/mass_error"]
    assert math.isfinite(mass) and mass > 0.01
    assert metrics[10.0]["train/l1"] == metrics[0.0]["train/l1"]
    assert metrics[10.0]["train/d_loss"] == metrics[0.0]["train/d_loss"]
    # float32 losses: the difference is exact up to the round-off of a g_loss of this size
    g0, g10 = metrics[0.0]["train/g_loss"], metrics[10.0]["train/g_loss"]
    assert g10 - g0 == pytest.approx(10.0 * mass, abs=1e-6 * abs(g10))
    # and its gradient reached the generator's step
    assert any(not torch.equal(a, b) for a, b in zip(weights[0.0], weights[10.0], strict=True))


def test_bad_mass_weight_is_refused_naming_the_option(mock_dir, tmp_path):
    with pytest.raises(ValueError, match=r"model.mass_weight must be finite and >= 0"):
        Pix2Pix(net=NET, mass_weight=-1.0)
    with pytest.raises(ValueError, match=r"model.mass_weight must be finite"):
        Pix2Pix(net=NET, mass_weight=float("inf"))
    model = Pix2Pix(net=NET, discriminator={"base_channels": 8, "n_layers": 2}, mass_weight=1.0)
    with pytest.raises(ValueError, match=r"model.mass_weight is 1.0 but no target of \['temp'\]"):
        _fit(model, mock_dir, tmp_path, "temp")
