"""Step distillation as small pure functions: consistency models and progressive distillation.

* **Consistency models** (Song, Dhariwal, Chen & Sutskever 2023). A consistency function
  ``f(x, σ)`` maps any point of a probability-flow ODE trajectory to the trajectory's end at
  ``σ_min``. Its boundary condition ``f(x, σ_min) = x`` is built in by the scalings of
  ``consistency_scalings``. Distillation (CD) trains ``f_θ(x_{n+1}, σ_{n+1})`` to match a
  target network's ``f_θ⁻(x̂_n, σ_n)``, where ``x̂_n`` is one Heun step of the teacher's ODE
  from ``x_{n+1}``; consistency training (CT) uses ``x̂_n = x₀ + σ_n z`` with the same ``z``
  instead, and needs no teacher. Sampling is one evaluation ``f(σ_max z, σ_max)``, or
  several, re-noising to a lower ``τ`` between them (``sample_consistency``).
* **Progressive distillation** (Salimans & Ho 2022). A student takes one deterministic DDIM
  step (an Euler step of the σ-space ODE) where its teacher took two: its denoiser is
  regressed on ``progressive_target``, the ``x̃`` whose single step lands where the
  teacher's two steps land. Each round halves the steps.

σ-space as in ``app.diffusion.samplers``: ``x = x₀ + σ z``. Maps ``(B, C, H, W)``; σ per map
``(B,)`` or a scalar; all in normalised units.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from app.diffusion.samplers import Denoiser

__all__ = [
    "PSEUDO_HUBER_C",
    "ConsistencyFn",
    "consistency_loss",
    "consistency_scalings",
    "distance",
    "halved_grid",
    "heun_step",
    "progressive_loss",
    "progressive_target",
    "sample_consistency",
]

PSEUDO_HUBER_C = 0.00054
#: ``f(x, σ) → x`` at ``σ_min``: a consistency function with the condition bound in
ConsistencyFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _b(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """σ (scalar or ``(B,)``) as ``(B, 1, 1, 1)`` (or 0-d) in x's dtype and device."""
    s = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
    return s.reshape(-1, *([1] * (x.ndim - 1))) if s.ndim else s


def consistency_scalings(
    sigma: torch.Tensor, sigma_data: float, sigma_min: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in)`` of a consistency model at ``sigma`` (any shape):
    ``c_skip = σ_d²/((σ − σ_min)² + σ_d²)``, ``c_out = σ_d (σ − σ_min)/sqrt(σ_d² + σ²)``,
    ``c_in = 1/sqrt(σ² + σ_d²)``; ``c_skip(σ_min) = 1`` and ``c_out(σ_min) = 0``."""
    sd2 = sigma_data**2
    c_skip = sd2 / ((sigma - sigma_min) ** 2 + sd2)
    c_out = sigma_data * (sigma - sigma_min) / torch.sqrt(sd2 + sigma**2)
    return c_skip, c_out, 1 / torch.sqrt(sigma**2 + sd2)


def heun_step(denoise: Denoiser, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One Heun (EDM's second-order) step of the σ-space ODE from ``sigma`` to ``sigma_next > 0``
    (per map, ``(B,)`` or scalars): two evaluations of ``denoise``."""
    s, s_next = _b(sigma, x), _b(sigma_next, x)
    d = (x - denoise(x, sigma)) / s
    x_euler = x + (s_next - s) * d
    d_next = (x_euler - denoise(x_euler, sigma_next)) / s_next
    return x + (s_next - s) * (d + d_next) / 2


def distance(a: torch.Tensor, b: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Per-map distance ``(B,)``: ``l2`` the mean square, ``pseudo_huber`` sqrt(mean square + c²) − c
    with c = 0.00054 (Song & Dhariwal 2023's c = 0.00054·sqrt(C·H·W) on the sum of squares, here
    on their mean: the same loss divided by sqrt(C·H·W))."""
    sq = (a - b).square().flatten(1).mean(1)
    if kind == "l2":
        return sq
    if kind == "pseudo_huber":
        return torch.sqrt(sq + PSEUDO_HUBER_C**2) - PSEUDO_HUBER_C
    raise ValueError(f"model.distance: unknown {kind!r}; choose l2 or pseudo_huber")


def consistency_loss(
    online: ConsistencyFn,
    target: ConsistencyFn,
    x0: torch.Tensor,
    z: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    teacher: Denoiser | None = None,
    kind: str = "l2",
) -> torch.Tensor:
    """Consistency distillation (``teacher`` given) or training (``teacher=None``) loss, a scalar.

    ``x_{n+1} = x₀ + σ_{n+1} z``; ``x̂_n`` is the teacher's Heun step from it to ``σ_n`` (CD) or
    ``x₀ + σ_n z`` (CT); the loss is ``distance(online(x_{n+1}, σ_{n+1}), target(x̂_n, σ_n))``
    with the target side under ``no_grad``. ``sigma`` ``(B,)`` is ``σ_n``, ``sigma_next`` ``(B,)``
    ``σ_{n+1} > σ_n``; ``x0``, ``z`` ``(B, C, H, W)``.
    """
    x_next = x0 + _b(sigma_next, x0) * z
    with torch.no_grad():
        x_hat = x0 + _b(sigma, x0) * z if teacher is None else heun_step(teacher, x_next, sigma_next, sigma)
        goal = target(x_hat, sigma)
    return distance(online(x_next, sigma_next), goal, kind).mean()


def sample_consistency(
    f: ConsistencyFn,
    z: torch.Tensor,
    taus: torch.Tensor,
    sigma_min: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1): ``x = f(τ₀ z, τ₀)``, then for
    each later ``τ``: ``x = f(x + sqrt(τ² − σ_min²) ε, τ)``. ``taus`` ``(n,)`` decreasing, ``τ₀ = σ_max``;
    one entry is one-step sampling. ``z`` standard normal, the sample's shape."""
    x = f(taus[0] * z, taus[0])
    for tau in taus[1:]:
        eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        x = f(x + torch.sqrt(torch.clamp(tau**2 - sigma_min**2, min=0)) * eps, tau)
    return x


def halved_grid(grid: torch.Tensor, steps: int) -> torch.Tensor:
    """The ``steps``-step grid ``(steps + 1,)`` taken from a base grid ``(N + 1,)`` (ending in 0) by keeping
    every ``N/steps``-th σ; ValueError unless ``steps`` divides N."""
    n = len(grid) - 1
    if steps < 1 or n % steps:
        raise ValueError(f"steps={steps} must divide the base grid's {n} steps")
    return grid[:: n // steps]


def progressive_target(
    teacher: Denoiser, x: torch.Tensor, sigma: torch.Tensor, sigma_mid: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """The denoised ``x̃`` that makes one DDIM step ``σ → σ''`` land where the teacher's two DDIM steps
    ``σ → σ' → σ''`` land: ``x̃ = (x'' − (σ''/σ) x)/(1 − σ''/σ)`` (``x̃ = x''`` when ``σ'' = 0``).
    σ's per map ``(B,)``; returns x's shape."""
    s, s_mid, s_next = _b(sigma, x), _b(sigma_mid, x), _b(sigma_next, x)
    d1 = teacher(x, sigma)
    x_mid = d1 + (s_mid / s) * (x - d1)
    d2 = teacher(x_mid, sigma_mid)
    x_next = d2 + (s_next / s_mid) * (x_mid - d2)  # σ' > 0: only a grid's last σ is 0
    ratio = s_next / s
    return (x_next - ratio * x) / (1 - ratio)


def progressive_loss(
    student: Denoiser,
    teacher: Denoiser,
    x0: torch.Tensor,
    z: torch.Tensor,
    sigma: torch.Tensor,
    sigma_mid: torch.Tensor,
    sigma_next: torch.Tensor,
) -> torch.Tensor:
    """Progressive-distillation loss, a scalar: ``max(1/σ², 1) |D_student(x; σ) − x̃|²`` at
    ``x = x₀ + σ z`` (the truncated-SNR weighting of Salimans & Ho), ``x̃`` from ``progressive_target``."""
    x = x0 + _b(sigma, x0) * z
    with torch.no_grad():
        goal = progressive_target(teacher, x, sigma, sigma_mid, sigma_next)
    weight = torch.clamp(1 / _b(sigma, x0) ** 2, min=1.0)
    return (weight * (student(x, sigma) - goal).square()).mean()
