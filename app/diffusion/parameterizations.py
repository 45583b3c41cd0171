"""Diffusion parameterisations: how a network becomes the denoiser D(x; σ, c) and how it is trained.

All three share the σ-space (variance-exploding) picture the samplers use:

* ``eps`` — DDPM ε-prediction on a discrete VP schedule (linear or cosine ᾱ). With
  ``x = x_vp/√ᾱ`` and ``σ = sqrt((1 − ᾱ)/ᾱ)``: ``D = x − σ ε̂(cat[c, x/√(1+σ²)], t(σ))``.
* ``v`` — v-prediction on the same schedule: ``v = √ᾱ ε − √(1−ᾱ) x₀`` and
  ``D = x/(1+σ²) − σ/√(1+σ²) v̂``.
* ``edm`` — Karras et al. (2022) preconditioning ``D = c_skip x + c_out F(cat[c, c_in x], c_noise)``
  with ``σ_data`` measured from the normalised training targets.

The condition ``c`` is concatenated on the channel axis and never scaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from app.diffusion.samplers import Denoiser, ddpm_sigmas, karras_sigmas
from app.registry import Registry

__all__ = ["EDM", "PARAMETERIZATIONS", "EpsVP", "VPredVP", "edm_scalings", "vp_alphas_cumprod"]

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PARAMETERIZATIONS: Registry[type] = Registry("parameterization")


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
    """``(c_skip, c_out, c_in, c_noise)`` of EDM at ``sigma``."""
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
    """Shared machinery of the discrete VP parameterisations."""

    name = ""

    def __init__(self, schedule: str = "linear", timesteps: int = 1000) -> None:
        self.abar = vp_alphas_cumprod(schedule, timesteps)
        self.sigmas = torch.sqrt((1 - self.abar) / self.abar)  # increasing in t
        self.log_sigmas = torch.log(self.sigmas)
        self.prior_std = 1.0

    def t_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep index of σ, interpolated in log σ (exact on the grid)."""
        ls = torch.log(sigma.detach().to(torch.float64).cpu()).reshape(-1)
        idx = torch.searchsorted(self.log_sigmas, ls).clamp(1, len(self.log_sigmas) - 1)
        lo, hi = self.log_sigmas[idx - 1], self.log_sigmas[idx]
        w = ((ls - lo) / (hi - lo)).clamp(0, 1)
        return (idx - 1 + w).to(torch.float32)

    def sampling_sigmas(self, steps: int, sampler: str, spacing: str = "trailing", **_: float | None) -> torch.Tensor:
        """The VP grid (DDIM/DDPM) or a Karras grid over the schedule's σ range; σ range overrides are
        ignored (the schedule fixes it)."""
        if sampler in ("ddim", "ddpm"):
            n = len(self.abar) if sampler == "ddpm" else steps
            return ddpm_sigmas(self.abar, n, spacing)[0]
        return karras_sigmas(steps, float(self.sigmas[0]), float(self.sigmas[-1]))

    def _noised(self, x0: torch.Tensor, generator: torch.Generator | None):
        b = x0.shape[0]
        t = torch.randint(0, len(self.abar), (b,), generator=generator, device="cpu")
        abar = self.abar[t].to(x0.device, x0.dtype).reshape(b, 1, 1, 1)
        eps = torch.randn(x0.shape, generator=generator, device="cpu", dtype=x0.dtype).to(x0.device)
        return t, abar, eps, abar.sqrt() * x0 + (1 - abar).sqrt() * eps

    def loss(
        self, net: Net, x0: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        t, abar, eps, x_vp = self._noised(x0, generator)
        out = net(torch.cat([cond, x_vp], dim=1), t.to(x0.device, torch.float32))
        return (out - self.target(x0, eps, abar)).square().mean()


@PARAMETERIZATIONS.register("eps")
class EpsVP(_VP):
    """ε-prediction on a discrete VP schedule."""

    name = "eps"

    def target(self, x0, eps, abar):
        return eps

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = _bcast(sigma, x)
            t = self.t_of_sigma(sigma).to(x.device).expand(x.shape[0])
            return x - s * net(torch.cat([cond, x / torch.sqrt(1 + s**2)], dim=1), t)

        return denoise


@PARAMETERIZATIONS.register("v")
class VPredVP(_VP):
    """v-prediction (Salimans & Ho 2022) on a discrete VP schedule."""

    name = "v"

    def target(self, x0, eps, abar):
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = _bcast(sigma, x)
            t = self.t_of_sigma(sigma).to(x.device).expand(x.shape[0])
            v = net(torch.cat([cond, x / torch.sqrt(1 + s**2)], dim=1), t)
            return x / (1 + s**2) - s / torch.sqrt(1 + s**2) * v

        return denoise


@PARAMETERIZATIONS.register("edm")
class EDM:
    """EDM preconditioning and loss (Karras et al. 2022)."""

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
        self.prior_std = self.sigma_data

    def sampling_sigmas(
        self, steps: int, sampler: str, spacing: str = "trailing",
        sigma_min: float | None = None, sigma_max: float | None = None,
    ) -> torch.Tensor:
        """Karras grid from ``sigma_max`` to ``sigma_min`` (the instance's unless given), then 0."""
        lo = self.sigma_min if sigma_min is None else sigma_min
        hi = self.sigma_max if sigma_max is None else sigma_max
        return karras_sigmas(steps, lo, hi, self.rho)

    def _apply(self, net: Net, x: torch.Tensor, cond: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = _bcast(sigma, x)
        c_skip, c_out, c_in, c_noise = edm_scalings(s, self.sigma_data)
        noise_in = c_noise.reshape(-1).expand(x.shape[0]).to(torch.float32)
        return c_skip * x + c_out * net(torch.cat([cond, c_in * x], dim=1), noise_in)

    def denoiser(self, net: Net, cond: torch.Tensor) -> Denoiser:
        return lambda x, sigma: self._apply(net, x, cond, sigma)

    def loss(
        self, net: Net, x0: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        b = x0.shape[0]
        ln_sigma = torch.randn(b, generator=generator, dtype=torch.float64) * self.p_std + self.p_mean
        sigma = torch.exp(ln_sigma).to(x0.device, x0.dtype)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        s = sigma.reshape(b, 1, 1, 1)
        denoised = self._apply(net, x0 + s * noise, cond, sigma)
        weight = (s**2 + self.sigma_data**2) / (s * self.sigma_data) ** 2
        return (weight * (denoised - x0).square()).mean()


def make_parameterization(name: str, **kwargs) -> EpsVP | VPredVP | EDM:
    """Build the parameterisation ``name`` with the keyword arguments it accepts."""
    cls = PARAMETERIZATIONS.get(name, "model.parameterization")
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in kwargs.items() if k in accepted})
