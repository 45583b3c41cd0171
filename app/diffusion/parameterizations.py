"""Diffusion parameterisations: how a network becomes the denoiser D(x; σ, c) and how it is trained.

All three share the σ-space (variance-exploding) picture the samplers use:

* ``eps`` — DDPM ε-prediction on a discrete VP schedule (linear or cosine ᾱ). With
  ``x = x_vp/√ᾱ`` and ``σ = sqrt((1 − ᾱ)/ᾱ)``: ``D = x − σ ε̂(cat[c, x/√(1+σ²)], t(σ))``.
* ``v`` — v-prediction on the same schedule: ``v = √ᾱ ε − √(1−ᾱ) x₀`` and
  ``D = x/(1+σ²) − σ/√(1+σ²) v̂``.
* ``edm`` — Karras et al. (2022) preconditioning ``D = c_skip x + c_out F(cat[c, c_in x], c_noise)``
  with ``σ_data`` measured from the normalised training targets.

The condition ``c`` is concatenated on the channel axis and never scaled. What the
families and samplers use of a parameterisation is the ``Parameterization`` protocol.
Maps are ``(B, C, H, W)`` in normalised (network) units; σ is dimensionless in those units.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from app.diffusion.samplers import Denoiser, ddpm_sigmas, karras_sigmas
from app.noise import NoiseSource, as_noise
from app.registry import Registry

__all__ = [
    "EDM",
    "PARAMETERIZATIONS",
    "EpsVP",
    "Net",
    "Parameterization",
    "VPredVP",
    "edm_scalings",
    "make_parameterization",
    "vp_alphas_cumprod",
]

#: a network ``net(x (B, C_in, H, W), t (B,)) → (B, C_out, H, W)``
Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@runtime_checkable
class Parameterization(Protocol):
    """What the diffusion family and the samplers use of a parameterisation."""

    #: the registry name (``eps``, ``v``, ``edm``)
    name: str

    def sampling_sigmas(
        self, steps: int, sampler: str, spacing: str = "trailing",
        sigma_min: float | None = None, sigma_max: float | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """The decreasing σ grid ``(n + 1,)`` float64, ending in 0, for ``steps`` of ``sampler``."""
        ...

    def initial_noise_scale(self, sigmas: torch.Tensor | float) -> float:
        """Std of the starting noise ``x = std · z`` at ``σ_max`` (a grid's first σ, or σ_max itself)."""
        ...

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        """``D(x; σ)`` with the condition ``cond`` ``(B, C_c, H, W)`` bound in."""
        ...

    def loss(
        self, net: Net, x0: torch.Tensor, cond: torch.Tensor, generator: NoiseSource = None
    ) -> torch.Tensor:
        """Scalar training loss on clean targets ``x0`` ``(B, C, H, W)`` given ``cond``."""
        ...


PARAMETERIZATIONS: Registry[Callable[..., Parameterization]] = Registry("parameterization")


def _first_sigma(sigmas: torch.Tensor | float) -> torch.Tensor:
    """σ_max as a 0-d float64 tensor: the first entry of a grid, or the number itself."""
    return torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)[0]


def vp_alphas_cumprod(
    schedule: str = "linear", timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """``ᾱ_t`` ``(T,)`` float64 of a linear-β or Nichol–Dhariwal cosine schedule."""
    if schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        return torch.cumprod(1 - betas, 0)
    if schedule == "cosine":
        s = 0.008
        t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        betas = torch.clamp(1 - f[1:] / f[:-1], max=0.999)
        return torch.cumprod(1 - betas, 0)
    raise ValueError(f"model.schedule: unknown schedule {schedule!r}; choose linear or cosine")


def edm_scalings(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in, c_noise)`` of EDM at ``sigma`` (any shape; each result has its shape)."""
    sd2 = sigma_data**2
    c_skip = sd2 / (sigma**2 + sd2)
    c_out = sigma * sigma_data / torch.sqrt(sigma**2 + sd2)
    c_in = 1 / torch.sqrt(sigma**2 + sd2)
    return c_skip, c_out, c_in, torch.log(sigma) / 4


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar or ``(B,)`` σ as ``(B, 1, 1, 1)`` in x's dtype."""
    v = v.to(device=x.device, dtype=x.dtype)
    return v.reshape(-1, *([1] * (x.ndim - 1))) if v.ndim else v


class _VP:
    """Shared machinery of the discrete VP parameterisations.

    Args:
        schedule: ``linear`` or ``cosine`` (``vp_alphas_cumprod``).
        timesteps: T, the number of discrete steps; ``abar``, ``sigmas``, ``log_sigmas`` are ``(T,)``.
    """

    name = ""

    def __init__(self, schedule: str = "linear", timesteps: int = 1000) -> None:
        self.abar = vp_alphas_cumprod(schedule, timesteps)
        self.sigmas = torch.sqrt((1 - self.abar) / self.abar)  # increasing in t
        self.log_sigmas = torch.log(self.sigmas)

    def t_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep index ``(B,)`` float32 (CPU) of σ (scalar or ``(B,)``), interpolated
        in log σ (exact on the grid)."""
        ls = torch.log(sigma.detach().to(torch.float64).cpu()).reshape(-1)
        idx = torch.searchsorted(self.log_sigmas, ls).clamp(1, len(self.log_sigmas) - 1)
        lo, hi = self.log_sigmas[idx - 1], self.log_sigmas[idx]
        w = ((ls - lo) / (hi - lo)).clamp(0, 1)
        return (idx - 1 + w).to(torch.float32)

    def sampling_sigmas(
        self, steps: int, sampler: str, spacing: str = "trailing",
        sigma_min: float | None = None, sigma_max: float | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """The VP grid (DDIM/DDPM) or a Karras grid over the schedule's σ range, ``(n + 1,)`` float64;
        ``sigma_min``/``sigma_max`` are ignored (the schedule fixes the range)."""
        if sampler in ("ddim", "ddpm"):
            n = len(self.abar) if sampler == "ddpm" else steps
            return ddpm_sigmas(self.abar, n, spacing)[0]
        return karras_sigmas(steps, float(self.sigmas[0]), float(self.sigmas[-1]))

    def initial_noise_scale(self, sigmas: torch.Tensor | float) -> float:
        """``sqrt(1 + σ_max²)``: x_T ~ N(0, 1) in VP space is ``x = x_vp/√ᾱ``, of that std."""
        return float((1 + _first_sigma(sigmas) ** 2) ** 0.5)

    def _noised(self, x0: torch.Tensor, generator: NoiseSource):
        b = x0.shape[0]
        noise = as_noise(generator, b)
        n = len(self.abar)
        t = (noise.uniform(torch.float64) * n).long().clamp(max=n - 1)  # where the noise was drawn
        abar = self.abar.to(t.device)[t].to(x0.device, x0.dtype).reshape(b, 1, 1, 1)  # no host sync
        eps = noise.normal(x0.shape[1:], x0.dtype).to(x0.device)
        return t, abar, eps, abar.sqrt() * x0 + (1 - abar).sqrt() * eps

    def loss(
        self, net: Net, x0: torch.Tensor, cond: torch.Tensor, generator: NoiseSource = None
    ) -> torch.Tensor:
        """MSE between the network output on ``cat[cond, x_vp]`` at a random step and ``target``."""
        t, abar, eps, x_vp = self._noised(x0, generator)
        out = net(torch.cat([cond, x_vp], dim=1), t.to(x0.device, torch.float32))
        return (out - self.target(x0, eps, abar)).square().mean()


@PARAMETERIZATIONS.register("eps")
class EpsVP(_VP):
    """ε-prediction on a discrete VP schedule."""

    name = "eps"

    def target(self, x0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """The regression target ε ``(B, C, H, W)``."""
        return eps

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        """``D(x; σ)`` on ``x`` ``(B, C, H, W)`` and scalar or ``(B,)`` σ, ``cond`` bound in."""

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = _bcast(sigma, x)
            t = self.t_of_sigma(sigma).to(x.device).expand(x.shape[0])
            return x - s * net(torch.cat([cond, x / torch.sqrt(1 + s**2)], dim=1), t)

        return denoise


@PARAMETERIZATIONS.register("v")
class VPredVP(_VP):
    """v-prediction (Salimans & Ho 2022) on a discrete VP schedule."""

    name = "v"

    def target(self, x0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """The regression target ``v = √ᾱ ε − √(1−ᾱ) x₀`` ``(B, C, H, W)`` (ᾱ ``(B, 1, 1, 1)``)."""
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        """``D(x; σ)`` on ``x`` ``(B, C, H, W)`` and scalar or ``(B,)`` σ, ``cond`` bound in."""

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = _bcast(sigma, x)
            t = self.t_of_sigma(sigma).to(x.device).expand(x.shape[0])
            v = net(torch.cat([cond, x / torch.sqrt(1 + s**2)], dim=1), t)
            return x / (1 + s**2) - s / torch.sqrt(1 + s**2) * v

        return denoise


@PARAMETERIZATIONS.register("edm")
class EDM:
    """EDM preconditioning and loss (Karras et al. 2022).

    Args:
        sigma_data: std of the (normalised) training targets.
        p_mean, p_std: training σ distribution, ``ln σ ~ N(p_mean, p_std²)``.
        sigma_min, sigma_max, rho: the default Karras sampling grid.
    """

    name = "edm"

    def __init__(
        self,
        sigma_data: float = 1.0,
        p_mean: float = -1.2,
        p_std: float = 1.2,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        rho: float = 7.0,
    ) -> None:
        if not sigma_data > 0:
            raise ValueError(f"model.sigma_data must be positive, got {sigma_data}")
        self.sigma_data = float(sigma_data)
        self.p_mean, self.p_std = p_mean, p_std
        self.sigma_min, self.sigma_max, self.rho = sigma_min, sigma_max, rho

    def sampling_sigmas(
        self, steps: int, sampler: str, spacing: str = "trailing",
        sigma_min: float | None = None, sigma_max: float | None = None,
    ) -> torch.Tensor:
        """Karras grid from ``sigma_max`` to ``sigma_min`` (the instance's unless given), then 0."""
        lo = self.sigma_min if sigma_min is None else sigma_min
        hi = self.sigma_max if sigma_max is None else sigma_max
        return karras_sigmas(steps, lo, hi, self.rho)

    def initial_noise_scale(self, sigmas: torch.Tensor | float) -> float:
        """``σ_max`` (x_T = σ_max z; the data's σ_data ≪ σ_max is neglected, as in EDM)."""
        return float(_first_sigma(sigmas))

    def _apply(self, net: Net, x: torch.Tensor, cond: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = _bcast(sigma, x)
        c_skip, c_out, c_in, c_noise = edm_scalings(s, self.sigma_data)
        noise_in = c_noise.reshape(-1).expand(x.shape[0]).to(torch.float32)
        return c_skip * x + c_out * net(torch.cat([cond, c_in * x], dim=1), noise_in)

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        """``D(x; σ) = c_skip x + c_out F(cat[cond, c_in x], c_noise)`` on ``x`` ``(B, C, H, W)``."""
        return lambda x, sigma: self._apply(net, x, cond, sigma)

    def loss(
        self, net: Net, x0: torch.Tensor, cond: torch.Tensor, generator: NoiseSource = None
    ) -> torch.Tensor:
        """EDM's weighted denoising loss, ln σ ~ N(p_mean, p_std²)."""
        b = x0.shape[0]
        draws = as_noise(generator, b)
        ln_sigma = draws.normal((), torch.float64) * self.p_std + self.p_mean
        sigma = torch.exp(ln_sigma).to(x0.device, x0.dtype)
        noise = draws.normal(x0.shape[1:], x0.dtype).to(x0.device)
        s = sigma.reshape(b, 1, 1, 1)
        denoised = self._apply(net, x0 + s * noise, cond, sigma)
        weight = (s**2 + self.sigma_data**2) / (s * self.sigma_data) ** 2
        return (weight * (denoised - x0).square()).mean()


def make_parameterization(name: str, **kwargs) -> Parameterization:
    """Build the parameterisation ``name`` with the keyword arguments it accepts (others ignored)."""
    cls = PARAMETERIZATIONS.get(name, "model.parameterization")
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in kwargs.items() if k in accepted})
