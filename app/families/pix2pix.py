"""pix2pix conditional GAN (Isola et al. 2017) with a linear output head."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from app.families.base import Translator, build_unet
from app.families.mass_loss import mass_channels, mass_dex_loss
from app.nets import PatchDiscriminator
from app.nets.options import UNetOptions

__all__ = ["Pix2Pix"]


class Pix2Pix(Translator):
    """U-Net generator + PatchGAN on (condition, map); GAN loss + ``l1_weight``·L1.

    Manual optimisation with two Adam optimisers; the linear-decay schedules are stepped
    by hand at each epoch end (``epochs_constant`` epochs at ``lr``, then linear to 0 over
    ``epochs_decay``). Lightning counts both optimiser steps, so ``trainer.global_step``
    advances by 2 per batch. ``gan_loss``: ``bce`` (non-saturating) or ``lsgan``.
    ``mass_weight`` adds that times the maps' total-mass error in dex
    (``app.families.mass_loss``) to the generator's loss (0: off).
    """

    def __init__(
        self,
        net: UNetOptions | None = None,
        discriminator: dict[str, Any] | None = None,
        gan_loss: str = "bce",
        l1_weight: float = 100.0,
        beta1: float = 0.5,
        epochs_constant: int = 100,
        epochs_decay: int = 100,
        gradient_clip: float = 0.0,
        mass_weight: float = 0.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        target_channels = self.hparams.target_channels
        if gan_loss not in ("bce", "lsgan"):
            raise ValueError(f"model.gan_loss: unknown {gan_loss!r}; choose bce or lsgan")
        if not (math.isfinite(mass_weight) and mass_weight >= 0):
            raise ValueError(f"model.mass_weight must be finite and >= 0, got {mass_weight}")
        self._mass_channels: list[int] = []
        self.automatic_optimization = False
        self.net = build_unet(net, 1, target_channels, None)
        try:
            self.discriminator = PatchDiscriminator(1 + target_channels, **(discriminator or {}))
        except TypeError as err:
            raise ValueError(f"model.discriminator: {err}") from None

    def _gan(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.hparams.gan_loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

    def validation_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """The L1 distance of the generator's map (normalised units); training is ``training_step``'s."""
        return F.l1_loss(self.net(batch["source"]), batch["target"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Manual optimisation: one discriminator step, then one generator step (GAN + ``l1_weight``·L1
        + ``mass_weight``·mass error); logs both losses, with the L1 as ``train/loss`` and, when
        ``mass_weight`` > 0, the mass error as ``train/mass_error`` [dex]."""
        opt_g, opt_d = self.optimizers()
        a, b = batch["source"], batch["target"]
        fake = self.net(a)
        # discriminator
        loss_d = 0.5 * (
            self._gan(self.discriminator(a, b), True) + self._gan(self.discriminator(a, fake.detach()), False)
        )
        self._check_finite(loss_d, "discriminator loss")
        # DDP syncs every parameter at every backward: under DDP the generator's join the critic's
        # backward with zero gradients (cleared before its own step) and the critic is not frozen
        # for the generator's, so no find_unused_parameters is needed; one process skips both
        distributed = self.trainer.world_size > 1
        if distributed:
            loss_d = loss_d + 0.0 * sum(p.reshape(-1)[:1].sum() for p in self.net.parameters())
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        if self.hparams.gradient_clip > 0:
            self.clip_gradients(opt_d, gradient_clip_val=self.hparams.gradient_clip)
        opt_d.step()
        # generator
        if not distributed:
            self.toggle_optimizer(opt_g)
        l1 = F.l1_loss(fake, b)
        loss_g = self._gan(self.discriminator(a, fake), True) + self.hparams.l1_weight * l1
        mass = None
        if self._mass_weight > 0:
            mass = mass_dex_loss(fake, b, self._to_physical(), self._mass_channels)
            loss_g = loss_g + self._mass_weight * mass
        self._check_finite(loss_g, "generator loss")
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        if self.hparams.gradient_clip > 0:
            self.clip_gradients(opt_g, gradient_clip_val=self.hparams.gradient_clip)
        opt_g.step()
        if not distributed:
            self.untoggle_optimizer(opt_g)
        n = a.shape[0]
        self.log_dict(
            {"train/g_loss": loss_g, "train/d_loss": loss_d, "train/l1": l1}, prog_bar=True, batch_size=n
        )
        self.log("train/loss", l1, batch_size=n)
        if mass is not None:
            self.log("train/mass_error", mass, batch_size=n)

    def setup(self, stage: str) -> None:
        """The base set-up, then the target channels that ``mass_weight`` sums (refused if none)."""
        super().setup(stage)
        self._mass_channels = mass_channels(self.data.targets)
        if stage == "fit" and self._mass_weight > 0 and not self._mass_channels:
            raise ValueError(
                f"model.mass_weight is {self._mass_weight} but no target of {list(self.data.targets)} "
                "is a surface density or brightness whose pixels sum to a mass; set it to 0"
            )

    @property
    def _mass_weight(self) -> float:
        return float(self.hparams.get("mass_weight", 0.0))  # absent from checkpoints before the option

    def on_train_epoch_end(self) -> None:
        """Steps both players' LR schedules at the epoch end."""
        for sched in self.lr_schedulers():
            sched.step()

    def generate(self, source: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, **overrides: Any) -> torch.Tensor:  # fmt: skip
        """The generator's normalised map ``(B, C, H, W)`` for normalised ``source`` ``(B, 1, H, W)``
        (deterministic: ``generator``/``noise`` are ignored)."""
        with torch.no_grad():
            return self.net(source)

    def configure_optimizers(self):
        """Adam for generator and discriminator (``betas=(beta1, 0.999)``), each with a LambdaLR:
        ``lr`` for ``epochs_constant`` epochs, then linear to 0 over ``epochs_decay``."""
        h = self.hparams
        betas = (h.beta1, 0.999)
        opt_g = torch.optim.Adam(self.net.parameters(), lr=h.lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=h.lr, betas=betas)

        def rule(epoch: int) -> float:
            return 1.0 - max(0, epoch + 1 - h.epochs_constant) / float(h.epochs_decay + 1)

        scheds = [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], scheds
