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

import math
from typing import Any

import torch

from app.families.base import build_unet
from app.families.diffusion import Diffusion
from app.nets.options import UNetOptions, net_dict
from app.noise import NoiseSource

__all__ = ["ResidualDiffusion"]

#: EDM's data std, training noise centre and top of the sampling grid (Karras et al. 2022)
EDM_SIGMA_DATA, EDM_P_MEAN, EDM_SIGMA_MAX = 0.5, -1.2, 80.0


class ResidualDiffusion(Diffusion):
    """Diffusion on the residual of a regression mean (``Diffusion``'s options, and):

    Args:
        mean_net: U-Net options of the regression network ``μ`` (no time input); ``None``: ``net``'s
            (without its time options). Options given here do not inherit ``net``'s.
        mean_weight: weight of the mean's mean-square loss next to the denoising loss.
        sigma_data: the residual's standard deviation in normalised units, which sets EDM's
            preconditioning (a number: the residual of an untrained mean cannot be measured at the
            start of a fit). On the mock's dm → gas at 64² the part the source cannot determine
            (the truth minus the mean of 16 twins) has a standard deviation of 0.10, and the
            residual of a mean trained for 10 minutes 0.26–0.33 (validation and test maps).
        p_mean: centre of ``ln σ`` in training; ``None``: EDM's −1.2 (for ``σ_data = 0.5``) scaled to
            ``sigma_data``, ``ln(σ_data / 0.5) − 1.2`` (−1.71 for 0.3).
        sigma_max: top of the sampling grid; ``None``: EDM's 80 scaled the same way, ``160 σ_data``.

    ``token_merging``, when set, applies to the attention of both networks.
    """

    def __init__(
        self,
        net: UNetOptions | None = None,
        mean_net: UNetOptions | None = None,
        mean_weight: float = 1.0,
        sigma_data: float = 0.3,
        p_mean: float | None = None,
        sigma_max: float | None = None,
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
        # the values used land in hparams (Lightning reads this frame's locals), so a checkpoint keeps them
        p_mean = math.log(sigma_data / EDM_SIGMA_DATA) + EDM_P_MEAN if p_mean is None else p_mean
        sigma_max = EDM_SIGMA_MAX * sigma_data / EDM_SIGMA_DATA if sigma_max is None else sigma_max
        super().__init__(net=net, sigma_data=sigma_data, p_mean=p_mean, sigma_max=sigma_max,
                         parameterization=parameterization, **kwargs)  # fmt: skip
        if mean_net is not None:  # UNetOptions → plain dict: loadable with weights_only
            self.hparams["mean_net"] = net_dict(mean_net)
        else:  # the denoiser's options without its time input
            mean_net = {k: v for k, v in net_dict(net).items() if k not in ("time_embedding", "time_features")}
        self.mean_net = build_unet(mean_net, 1, self.hparams.target_channels, None)

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
        """One AdamW over both networks (all the module's parameters) at ``lr`` (no weight decay, no schedule)."""
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=0.0)
