"""Score-based diffusion conditioned by channel concatenation (ε, v or EDM parameterisation)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from app.diffusion.parameterizations import make_parameterization
from app.diffusion.samplers import SAMPLERS
from app.families.base import Translator, build_unet
from app.nets.deepcache import DeepCache, check_interval
from app.nets.options import UNetOptions, net_dict
from app.noise import NoiseSource

SIGMA_DATA_MAPS = 128  # training views σ_data is measured on ("auto")
#: the hyper-parameters that define a diffusion denoiser (its network and parameterisation)
DENOISER_KEYS = ("net", "target_channels", "parameterization", "schedule", "timesteps", "p_mean", "p_std",
                 "sigma_min", "sigma_max")  # fmt: skip

__all__ = ["DENOISER_KEYS", "Diffusion", "DiffusionMamba", "denoiser_param", "denoiser_unet", "measure_sigma_data"]


def denoiser_unet(net: Any, parameterization: str, target_channels: int, cond_channels: int = 1):
    """The U-Net of a diffusion denoiser: ``cat[condition, x]`` in (``cond_channels`` of condition: the
    source, or more), ``target_channels`` out, Fourier time features of EDM's ``c_noise`` or sinusoidal
    ones of a VP timestep."""
    time = "fourier" if parameterization == "edm" else "sinusoidal"
    return build_unet(net, cond_channels + target_channels, target_channels, time)


def denoiser_param(spec: dict[str, Any], sigma_data: float):
    """The parameterisation object of a denoiser's hyper-parameters ``spec`` (``DENOISER_KEYS``)."""
    return make_parameterization(
        spec["parameterization"], schedule=spec["schedule"], timesteps=spec["timesteps"], sigma_data=sigma_data,
        p_mean=spec["p_mean"], p_std=spec["p_std"], sigma_min=spec["sigma_min"], sigma_max=spec["sigma_max"],
    )  # fmt: skip


def measure_sigma_data(data: Any) -> float:
    """σ_data: the std of the normalised targets of ``SIGMA_DATA_MAPS`` evenly spaced training views of
    the data contract ``data`` (the same whatever the batch size or the DDP rank), at least 1e-3."""
    t = data.maps("train", max_maps=SIGMA_DATA_MAPS, spread=True, physical=False)["target"].double()
    return max(float(t.std(correction=0)), 1e-3)


class Diffusion(Translator):
    """Conditional diffusion: ``D(x; σ, source)`` with any sampler of ``app.diffusion.samplers``.

    Args:
        net: U-Net options (``model.net``); channels are set by the family.
        target_channels: number of target channels (linked to data.targets by the CLI).
        parameterization: ``eps``, ``v`` (discrete VP ``schedule``/``timesteps``) or ``edm``.
        sigma_data: EDM's data std; ``"auto"`` measures it on normalised training targets.
        sampler, steps, eta, spacing, churn, sigma_min, sigma_max: sampling used at validation and
            prediction (``euler``, ``heun``, ``lms``, ``dpmpp_2m``, ``ddim``, ``ddpm``; the EDM σ range
            of the Karras grid, whose last step returns ``D(x; sigma_min)``); overridable per call.
        deepcache_interval: network evaluations per full U-Net forward when sampling (1: off);
            the ones in between reuse the deep features (``app.nets.deepcache``); overridable
            per call, so a trained model can sample with it without retraining.
    """

    def __init__(
        self,
        net: UNetOptions | None = None,
        parameterization: str = "edm",
        schedule: str = "linear",
        timesteps: int = 1000,
        sigma_data: float | str = "auto",
        p_mean: float = -1.2,
        p_std: float = 1.2,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sampler: str = "dpmpp_2m",
        steps: int = 20,
        eta: float = 0.0,
        spacing: str = "trailing",
        churn: float = 0.0,
        deepcache_interval: int = 1,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        check_interval(deepcache_interval)
        target_channels = self.hparams.target_channels
        SAMPLERS.get(sampler, "model.sampler")
        if steps < 1:
            raise ValueError(f"model.steps must be >= 1, got {steps}")
        if not (sigma_data == "auto" or (isinstance(sigma_data, (int, float)) and sigma_data > 0)):
            raise ValueError(f"model.sigma_data must be 'auto' or positive, got {sigma_data!r}")
        make_parameterization(parameterization, schedule=schedule, timesteps=timesteps)  # validates names
        self.net = denoiser_unet(net, parameterization, target_channels, self.condition_channels(target_channels))
        initial = 1.0 if sigma_data == "auto" else float(sigma_data)
        self.register_buffer("sigma_data", torch.tensor(initial, dtype=torch.float64))
        self.register_buffer("sigma_data_measured", torch.tensor(sigma_data != "auto"))

    @property
    def param(self):
        """The parameterisation object, rebuilt only when σ_data changes (it is used every step)."""
        sigma_data = float(self.sigma_data)
        cached = getattr(self, "_param_cache", None)
        if cached is None or cached[0] != sigma_data:
            self._param_cache = cached = (sigma_data, denoiser_param(self.hparams, sigma_data))
        return cached[1]

    def on_fit_start(self) -> None:
        """Measure σ_data once, on the normalised targets of ``SIGMA_DATA_MAPS`` evenly spaced
        training views (``fit_picks``): the same value whatever the batch size or the DDP rank."""
        if bool(self.sigma_data_measured):
            return
        self.sigma_data.fill_(measure_sigma_data(self.data))
        self.sigma_data_measured.fill_(True)

    @staticmethod
    def condition_channels(target_channels: int) -> int:
        """Channels of the denoiser's condition (``condition``): the source's one."""
        return 1

    def condition(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """``(condition, offset)``: what the denoiser is conditioned on and what a sample is added to
        (the source and 0 here; a residual model's regression mean in ``ResidualDiffusion``)."""
        return source, 0.0

    def training_loss(self, batch: dict[str, Any], generator: NoiseSource = None) -> torch.Tensor:
        """The parameterisation's denoising loss (ε, v or EDM) on normalised ``target`` given ``source``."""
        return self.param.loss(self.net, batch["target"], batch["source"], generator)

    def generate(self, source: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, **overrides: Any) -> torch.Tensor:  # fmt: skip
        """Sample normalised ``(B, C, H, W)`` for normalised ``source`` ``(B, 1, H, W)`` with the configured
        sampler and σ grid (``overrides`` replace hparams; ``noise`` fixes the starting noise)."""
        h = {**self.hparams, **overrides}
        sampler = SAMPLERS.get(h["sampler"], "sampler")
        param = self.param
        sigmas = param.sampling_sigmas(int(h["steps"]), h["sampler"], h["spacing"], sigma_min=h["sigma_min"],
                                       sigma_max=h["sigma_max"]).to(source.device)  # fmt: skip
        shape = (source.shape[0], self.hparams.target_channels, *source.shape[-2:])
        z = (
            noise
            if noise is not None
            else torch.randn(shape, generator=generator, device=source.device, dtype=source.dtype)
        )
        start = param.initial_noise_scale(sigmas)
        interval = check_interval(h.get("deepcache_interval", 1))  # checkpoints from before it: off
        net = DeepCache(self.net, interval) if interval > 1 else self.net
        with torch.no_grad():
            cond, offset = self.condition(source)
            denoise = param.denoiser(lambda x, t: net(x, t), cond)
            return offset + sampler(denoise, z * start, sigmas, eta=h["eta"], churn=h["churn"], generator=generator)


MAMBA_NET = UNetOptions(block="mamba")


class DiffusionMamba(Diffusion):
    """Diffusion Mamba: the diffusion family on the Mamba U-Net (``block: mamba`` by default)."""

    def __init__(self, net: UNetOptions | None = MAMBA_NET, **kwargs: Any) -> None:
        # a config's options arrive merged onto MAMBA_NET; a plain dict from Python gets block mamba
        net = net_dict(net) if dataclasses.is_dataclass(net) else {"block": "mamba", **(net or {})}
        super().__init__(net=net, **kwargs)
