"""Step distillation on the Gaussian problem with an analytic teacher (known answers), and the pieces.

Data ``x₀ ~ N(μ, s²)`` per pixel: the exact denoiser is ``D(x; σ) = μ + s²/(s² + σ²)(x − μ)``,
the probability-flow ODE keeps ``(x − μ)/sqrt(s² + σ²)`` constant. The students are tiny
networks ``F = a(σ)·c_in x + b(σ)`` with ``a, b`` an MLP of ``ln σ``, which can represent the
exact answers, trained with the functions the families train with.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from app.diffusion.distillation import (
    consistency_loss,
    consistency_scalings,
    halved_grid,
    heun_step,
    progressive_loss,
    progressive_target,
    sample_consistency,
)
from app.diffusion.parameterizations import edm_scalings
from app.diffusion.samplers import karras_sigmas, sample_euler, sample_heun

MU, S, SMIN, SMAX = 0.3, 0.5, 0.002, 80.0


def exact_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(sigma, dtype=x.dtype)
    s = s.reshape(-1, 1, 1, 1) if s.ndim else s
    return MU + S**2 / (S**2 + s**2) * (x - MU)


class Tiny(nn.Module):
    """``F(c_in x, c_noise) = a(c_noise)·c_in x + b(c_noise)`` (per pixel)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2))

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        ab = self.mlp(c_noise.reshape(-1, 1)).reshape(-1, 2, 1, 1, 1)
        return ab[:, 0] * x_in + ab[:, 1]


def _per_map(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0]).reshape(-1, 1, 1, 1)


def consistency_fn(net: Tiny):
    def f(x, sigma):
        s = _per_map(sigma, x)
        c_skip, c_out, c_in = consistency_scalings(s, S, SMIN)
        return c_skip * x + c_out * net(c_in * x, torch.log(s).reshape(-1) / 4)

    return f


def edm_denoiser(net: Tiny):
    def d(x, sigma):
        s = _per_map(sigma, x)
        c_skip, c_out, c_in, c_noise = edm_scalings(s, S)
        return c_skip * x + c_out * net(c_in * x, c_noise.reshape(-1))

    return d


def _train(loss_fn, net: nn.Module, iters: int, after_step=None) -> None:
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    for _ in range(iters):
        x0 = MU + S * torch.randn(256, 1, 1, 1)
        loss = loss_fn(x0, torch.randn_like(x0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if after_step:
            after_step()


def _rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).square().mean().sqrt())


def _consistency_student(teacher, n_grid: int) -> Tiny:
    torch.manual_seed(0)
    net = Tiny()
    target = copy.deepcopy(net).requires_grad_(False)
    grid = karras_sigmas(n_grid, SMIN, SMAX)[:-1].flip(0).float()  # increasing, σ_min … σ_max

    def loss(x0, z):
        n = torch.randint(0, n_grid - 1, (x0.shape[0],))
        return consistency_loss(consistency_fn(net), consistency_fn(target), x0, z, grid[n], grid[n + 1], teacher)

    def update_target():
        with torch.no_grad():
            for p, q in zip(target.parameters(), net.parameters(), strict=True):
                p.lerp_(q, 0.05)

    _train(loss, net, 3000, update_target)
    return net


def test_consistency_distillation_reproduces_the_teachers_ode_map_in_one_step():
    net = _consistency_student(exact_denoiser, 18)
    z = torch.randn(4096, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    teacher_map = sample_heun(exact_denoiser, SMAX * z, karras_sigmas(18, SMIN, SMAX))  # its 18-point ODE solution
    with torch.no_grad():
        one = sample_consistency(consistency_fn(net), z, torch.tensor([SMAX]), SMIN)
        two = sample_consistency(consistency_fn(net), z, torch.tensor([SMAX, 0.8]), SMIN, torch.Generator().manual_seed(2))
    assert _rms(one, teacher_map) < 0.03 * S
    # and the samples carry the data's statistics (one step and two)
    for sample in (one, two):
        assert abs(float(sample.mean()) - MU) < 0.03
        assert abs(float(sample.std()) / S - 1) < 0.08


def test_consistency_training_without_a_teacher_approaches_the_exact_map():
    net = _consistency_student(None, 40)
    z = torch.randn(4096, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    exact = MU + math.sqrt(S**2 + SMIN**2) / math.sqrt(S**2 + SMAX**2) * SMAX * z
    with torch.no_grad():
        one = sample_consistency(consistency_fn(net), z, torch.tensor([SMAX]), SMIN)
    assert _rms(one, exact) < 0.15 * S


def test_progressive_rounds_reproduce_the_8_step_teacher_in_4_2_and_1_steps():
    torch.manual_seed(0)
    base = karras_sigmas(8, SMIN, SMAX).float()
    z = torch.randn(2048, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    reference = sample_euler(exact_denoiser, SMAX * z, base)  # DDIM(η = 0), 8 steps
    teacher, net = exact_denoiser, Tiny()
    for steps in (4, 2, 1):
        student_grid, teacher_grid = halved_grid(base, steps), halved_grid(base, 2 * steps)
        net = copy.deepcopy(net)

        def loss(x0, z, net=net, teacher=teacher, s=student_grid, t=teacher_grid, steps=steps):
            i = torch.randint(0, steps, (x0.shape[0],))
            return progressive_loss(edm_denoiser(net), teacher, x0, z, s[i], t[2 * i + 1], s[i + 1])

        _train(loss, net, 1000)
        with torch.no_grad():
            out = sample_euler(edm_denoiser(net), SMAX * z, student_grid)
        assert _rms(out, reference) < 1e-3 * S, steps
        teacher = edm_denoiser(copy.deepcopy(net).requires_grad_(False))


def test_progressive_target_makes_one_step_land_where_two_teacher_steps_land():
    x = torch.randn(5, 1, 3, 3, dtype=torch.float64) * 4
    s, mid, nxt = torch.full((5,), 4.0), torch.full((5,), 1.5), torch.tensor([0.3, 0.3, 0.0, 0.3, 0.0])
    two = sample_euler(exact_denoiser, x[:1], torch.tensor([4.0, 1.5, 0.3], dtype=torch.float64))
    x_tilde = progressive_target(exact_denoiser, x, s.double(), mid.double(), nxt.double())
    one = x_tilde + (nxt.double() / s.double()).reshape(-1, 1, 1, 1) * (x - x_tilde)  # a DDIM step with D = x̃
    assert torch.allclose(one[:1], two, atol=1e-12)
    into_zero = sample_euler(exact_denoiser, x[2:3], torch.tensor([4.0, 1.5, 0.0], dtype=torch.float64))
    assert torch.allclose(one[2:3], into_zero, atol=1e-12)


def test_heun_step_matches_the_sampler_and_boundary_conditions_hold():
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    grid = torch.tensor([2.0, 0.5], dtype=torch.float64)
    step = heun_step(exact_denoiser, x, grid[:1].expand(3), grid[1:].expand(3))
    # sample_heun's last step is Euler only into σ = 0; on [2, 0.5] it is the full Heun step
    assert torch.allclose(step, sample_heun(exact_denoiser, x, grid), atol=1e-12)
    c_skip, c_out, _ = consistency_scalings(torch.tensor([SMIN, 1.0]), 0.7, SMIN)
    assert float(c_skip[0]) == 1.0 and float(c_out[0]) == 0.0 and 0 < float(c_skip[1]) < 1


@pytest.mark.parametrize("steps", [3, 0, 16])
def test_halved_grid_needs_a_divisor_of_the_base_steps(steps):
    with pytest.raises(ValueError, match="must divide the base grid's 8 steps"):
        halved_grid(karras_sigmas(8), steps)
