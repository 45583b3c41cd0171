"""Residual diffusion (app/families/residual.py): a sample is the regression mean plus a diffusion
sample of the residual, the mean learns from its own loss only, and bad options name themselves."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from app.families import Diffusion, ResidualDiffusion
from app.families.teacher import read_teacher
from app.nets.options import UNetOptions

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}


class Zero(nn.Module):
    """A denoiser network whose output is 0: ``D(x; σ) = c_skip x``."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x[:, -1:])


class Twice(nn.Module):
    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return 2.0 * y


def _zero_residual_model(steps: int, sigma_data: float = 0.3, sigma_max: float = 20.0) -> ResidualDiffusion:
    model = ResidualDiffusion(net=NET, sigma_data=sigma_data, sampler="heun", steps=steps, sigma_max=sigma_max)
    model = model.double()
    model.net, model.mean_net = Zero(), Twice()
    return model


@pytest.mark.parametrize("size", [16, 15])
def test_a_sample_is_the_mean_plus_a_residual_of_std_sigma_data(size):
    """With F ≡ 0 the EDM denoiser ``c_skip x = σ_d²/(σ² + σ_d²) x`` is the exact posterior mean of
    Gaussian data N(0, σ_d²), so the probability-flow ODE, ``x(σ) ∝ √(σ² + σ_d²)``, carries
    ``σ_max z`` to ``σ_d z`` (to ``σ_d²/σ_max²``): a sample is ``μ(y)`` plus white noise of std
    ``σ_data``. Heun converges to that exact map at second order (known answer, float64)."""
    sd, smax, smin = 0.3, 20.0, 0.002
    # Heun to σ_min, then the last step returns D(x; σ_min) = c_skip x
    exact = smax * sd**2 / ((smax**2 + sd**2) * (smin**2 + sd**2)) ** 0.5
    source = torch.randn(64, 1, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    z = torch.randn(64, 1, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    errors = []
    for steps in (40, 80):
        residual = _zero_residual_model(steps).generate(source, noise=z) - 2.0 * source
        gain = residual / z  # the same for every pixel: the exact map is linear
        torch.testing.assert_close(gain, torch.full_like(gain, float(gain.mean())), rtol=1e-9, atol=0)
        errors.append(float(gain.mean()) / exact - 1)
    assert 0 < errors[1] < errors[0] < 0.01
    assert 3.5 < errors[0] / errors[1] < 4.5  # second order: halving the step quarters the error
    drawn = _zero_residual_model(80).generate(source, generator=torch.Generator().manual_seed(2)) - 2.0 * source
    assert abs(float(drawn.std()) / sd - 1) < 0.02  # 16k pixels: the std's own error is ~0.6 %
    assert abs(float(drawn.mean())) < 0.01


def test_the_mean_learns_from_its_own_loss_only():
    """The denoising loss sees ``μ`` with its gradient stopped: the mean network's gradient is that of
    ``mean_weight · MSE(μ, x)`` alone, and the denoiser's that of the denoising loss of ``x − μ``."""
    torch.manual_seed(0)
    model = ResidualDiffusion(net=NET, mean_weight=3.0).double()
    batch = {"source": torch.randn(4, 1, 16, 16, dtype=torch.float64),
             "target": torch.randn(4, 1, 16, 16, dtype=torch.float64)}  # fmt: skip
    model.training_loss(batch, generator=torch.Generator().manual_seed(5)).backward()
    got = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    mean = model.mean_net(batch["source"])
    (3.0 * (mean - batch["target"]).square().mean()).backward()
    for k, p in model.mean_net.named_parameters():
        torch.testing.assert_close(got[f"mean_net.{k}"], p.grad, rtol=1e-12, atol=1e-14)
    model.zero_grad()
    cond = torch.cat([batch["source"], mean.detach()], dim=1)
    model.param.loss(model.net, batch["target"] - mean.detach(), cond, torch.Generator().manual_seed(5)).backward()
    for k, p in model.net.named_parameters():
        torch.testing.assert_close(got[f"net.{k}"], p.grad, rtol=1e-12, atol=1e-14)


def test_the_denoiser_is_conditioned_on_the_source_and_the_mean():
    model = ResidualDiffusion(net=NET, target_channels=2)
    assert model.net.stem.in_channels == 1 + 2 + 2 and model.mean_net.stem.in_channels == 1
    y = torch.randn(3, 1, 8, 8)
    assert model.mean_net(y).shape == (3, 2, 8, 8)
    cond, mean = model.condition(y)
    assert torch.equal(cond, torch.cat([y, mean], 1)) and not mean.requires_grad
    assert Diffusion(net=NET).net.stem.in_channels == 2  # plain diffusion: cat[source, x]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sigma_data": "auto"}, "model.sigma_data must be a positive number"),
        ({"sigma_data": 0.0}, "model.sigma_data must be a positive number"),
        ({"parameterization": "eps"}, "model.parameterization: residual diffusion is EDM"),
        ({"mean_weight": 0.0}, "model.mean_weight must be positive"),
    ],
)
def test_impossible_options_name_themselves(options, message):
    with pytest.raises(ValueError, match=message):
        ResidualDiffusion(net=NET, **options)


@pytest.mark.parametrize("hparams", [True, False])
def test_a_residual_model_is_refused_as_a_distillation_teacher(tmp_path, hparams):
    """By its options, or by its mean network's weights when the options are not saved."""
    model = ResidualDiffusion(net=NET)
    path = tmp_path / "residual.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams) if hparams else {}}, path)
    with pytest.raises(ValueError, match=r"model\.teacher: .* holds a residual diffusion model"):
        read_teacher(path)


def test_noise_levels_follow_sigma_data_unless_given_and_options_are_plain():
    """EDM's p_mean −1.2 and σ_max 80 for σ_data 0.5, scaled to the residual's σ_data; the values used
    are the saved hyper-parameters; a mean network's options are stored as a plain dict and, left
    out, are the denoiser's without its time input."""
    model = ResidualDiffusion(net={**NET, "time_embedding": "fourier"}, sigma_data=0.25)
    assert model.hparams.p_mean == pytest.approx(math.log(0.5) - 1.2) and model.hparams.sigma_max == pytest.approx(40.0)
    assert model.param.p_mean == model.hparams.p_mean and model.param.sigma_max == model.hparams.sigma_max
    assert model.mean_net.time_embed is None and model.net.time_embed is not None
    given = ResidualDiffusion(net=NET, p_mean=-3.0, sigma_max=10.0, mean_net=UNetOptions(base_channels=4))
    assert (given.hparams.p_mean, given.hparams.sigma_max) == (-3.0, 10.0)
    assert isinstance(given.hparams.mean_net, dict) and given.mean_net.stem.out_channels == 4
