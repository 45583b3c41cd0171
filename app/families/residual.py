"""Residual diffusion: a regression U-Net for the conditional mean, diffusion for what it leaves.

Where the source does not determine the target (dm → gas: the dark matter carries no trace of the
gas turbulence), a plain conditional diffusion model must learn a large deterministic part (the
disk, ~1 in normalised units) and a small random one (the turbulence, ~0.1) with one denoiser.
Splitting the two, as in residual corrective diffusion (Mardani et al. 2023, "CorrDiff"), gives the
denoiser only the residual ``r = x − μ(y)``: a regression U-Net ``μ`` is trained with a mean-square
loss, and an EDM-preconditioned denoiser, with ``σ_data`` set to the residual's scale, is trained on
``r`` conditioned on ``cat[y, μ(y)]``. A sample is ``μ(y) + r̂``. Both networks train at once; the
denoiser sees ``μ`` with its gradient stopped, so the mean is fitted by its own loss alone.
"""

from __future__ import annotations

from typing import Any

import torch

from app.families.base import build_unet
from app.families.diffusion import Diffusion
from app.nets.options import UNetOptions, net_dict
from app.noise import NoiseSource

__all__ = ["ResidualDiffusion"]


class ResidualDiffusion(Diffusion):
    """Diffusion on the residual of a regression mean (``Diffusion``'s options, and):

    Args:
        mean_net: U-Net options of the regression network ``μ`` (no time input); ``None``: ``net``'s.
        mean_weight: weight of the mean's mean-square loss next to the denoising loss.
        sigma_data: the residual's standard deviation in normalised units, which sets EDM's
            preconditioning (a number: the residual of an untrained mean cannot be measured at the
            start of a fit). On the mock's dm → gas at 64² the part the source cannot determine
            (the truth minus the mean of 16 twins) has a standard deviation of 0.10, and the
            residual of a mean trained for 10 minutes 0.26–0.33 (validation and test maps).
        p_mean: centre of ``ln σ`` in training; EDM's −1.2 is for ``σ_data = 0.5``, so a residual of
            ``σ_data = 0.3`` takes ``ln(0.3 / 0.5) − 1.2 ≈ −1.7``.
        sigma_max: top of the sampling grid, EDM's 80 scaled the same way (``80 × 0.3 / 0.5``).
    """

    def __init__(
        self,
        net: UNetOptions | None = None,
        mean_net: UNetOptions | None = None,
        mean_weight: float = 1.0,
        sigma_data: float = 0.3,
        p_mean: float = -1.7,
        sigma_max: float = 48.0,
        parameterization: str = "edm",
        **kwargs: Any,
    ) -> None:
        if parameterization != "edm":
            raise ValueError(f"model.parameterization: residual diffusion is EDM-preconditioned, got {parameterization!r}")
        if isinstance(sigma_data, str) or not sigma_data > 0:
            raise ValueError(f"model.sigma_data must be a positive number for residual diffusion (the residual's std "
                             f"in normalised units), got {sigma_data!r}")  # fmt: skip
        if not mean_weight > 0:
            raise ValueError(f"model.mean_weight must be positive, got {mean_weight}")
        super().__init__(net=net, sigma_data=sigma_data, p_mean=p_mean, sigma_max=sigma_max,
                         parameterization=parameterization, **kwargs)
        if mean_net is not None:  # UNetOptions → plain dict: loadable with weights_only
            self.hparams["mean_net"] = net_dict(mean_net)
        channels = self.hparams.target_channels
        self.mean_net = build_unet(net if mean_net is None else mean_net, 1, channels, None)

    @staticmethod
    def condition_channels(target_channels: int) -> int:
        """The source and the regression mean."""
        return 1 + target_channels

    def condition(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cat[source, μ], μ)`` with ``μ`` the regression mean, its gradient stopped."""
        mean = self.mean_net(source).detach()
        return torch.cat([source, mean], dim=1), mean

    def training_loss(self, batch: dict[str, Any], generator: NoiseSource = None) -> torch.Tensor:
        """``mean_weight · MSE(μ(y), x)`` plus the EDM denoising loss of ``x − μ(y)`` given ``cat[y, μ(y)]``."""
        source, target = batch["source"], batch["target"]
        mean = self.mean_net(source)
        mean_loss = (mean - target).square().mean()
        cond = torch.cat([source, mean.detach()], dim=1)
        return self.hparams.mean_weight * mean_loss + self.param.loss(self.net, target - mean.detach(), cond, generator)

    def configure_optimizers(self):
        """One AdamW over both networks at ``lr`` (no weight decay, no schedule)."""
        params = [*self.net.parameters(), *self.mean_net.parameters()]
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=0.0)
