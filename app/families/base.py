"""What every generator family shares: the U-Net from a config dict, EMA weights, physics
scores during validation, prediction in physical units, and exact resumption."""

from __future__ import annotations

import copy
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

import physics
from app.data.domains import get_domain
from app.nets import UNet

__all__ = ["SCORE_CLAMP", "Translator", "build_unet"]

SCORE_CLAMP = 50.0  # normalised units (standard deviations of the transformed training data)


def build_unet(
    spec: dict[str, Any] | None, in_channels: int, out_channels: int, time_embedding: str | None
) -> UNet:
    """A U-Net from ``spec`` (the ``model.net`` config) with the family's channels and time embedding."""
    spec = dict(spec or {})
    for key, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if key in spec and spec[key] != value:
            raise ValueError(
                f"model.net.{key} is {spec[key]} but this family and data need {value}; leave it out"
            )
        spec[key] = value
    spec.setdefault("time_embedding", time_embedding)
    if time_embedding is not None and spec["time_embedding"] is None:
        raise ValueError(
            "model.net.time_embedding: this family conditions on noise level/time; set sinusoidal or fourier"
        )
    try:
        return UNet(**spec)
    except TypeError as err:
        raise ValueError(f"model.net: {err}") from None


class Translator(L.LightningModule):
    """Base LightningModule of the generator families (subclasses define the loss and ``generate``).

    Shared options: ``target_channels`` (one per target domain; linked to ``data.targets``
    by the CLI), ``lr``,
    ``ema_decay`` (0 disables EMA; validation and sampling use the EMA weights),
    ``val_batches`` (validation batches that are generated and scored with ``physics``),
    ``sample_seed`` (fixed seed of validation/prediction sampling).
    """

    net: nn.Module

    def _init_common(self, target_channels: int, ema_decay: float, val_batches: int) -> None:
        if target_channels < 1:
            raise ValueError(f"model.target_channels must be >= 1, got {target_channels}")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in [0, 1), got {ema_decay}")
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False) if ema_decay > 0 else None

    # ------------------------------------------------------------------ hooks for families
    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def generate(
        self, source: torch.Tensor, generator: torch.Generator | None = None, **overrides: Any
    ) -> torch.Tensor:
        """Normalised prediction ``(B, targets, H, W)`` for normalised ``source`` ``(B, 1, H, W)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared machinery
    @property
    def inference_net(self) -> nn.Module:
        return self.ema_net if self.ema_net is not None else self.net

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "targets"):
            return
        if len(dm.targets) != self.hparams.target_channels:
            raise ValueError(
                f"model.target_channels is {self.hparams.target_channels} but data.targets lists "
                f"{len(dm.targets)} domain(s) {dm.targets}"
            )
        size = dm.hparams.size
        try:
            self.net.check_size(size, size)
        except ValueError as err:
            raise ValueError(f"data.size={size} does not fit model.net: {err}") from None

    def _check_finite(self, loss: torch.Tensor, what: str = "training loss") -> None:
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(
                f"non-finite {what} ({float(loss)}) at step {self.global_step}, epoch {self.current_epoch}: "
                "training stopped; the last good checkpoint is kept (lower model.lr or check the data)"
            )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch)
        self._check_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["source"].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema_net is None:
            return
        step = self.global_step
        decay = min(self.hparams.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(self.ema_net.parameters(), self.net.parameters(), strict=True):
                e.lerp_(p.detach(), 1 - decay)
            for e, b in zip(self.ema_net.buffers(), self.net.buffers(), strict=True):
                e.copy_(b)

    def _generator(self, offset: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.hparams.sample_seed + offset)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        b = batch["source"].shape[0]
        val_loss = self.training_loss(
            batch, generator=torch.Generator().manual_seed(self.hparams.sample_seed + batch_idx)
        )
        self.log("val/loss", val_loss, prog_bar=True, batch_size=b, sync_dist=True)
        if batch_idx < self.hparams.val_batches:
            pred = self.generate(batch["source"], generator=self._generator(batch_idx))
            self._log_physics(pred, batch)

    def _log_physics(self, pred: torch.Tensor, batch: dict[str, Any]) -> None:
        dm = self.trainer.datamodule
        # Scoring only: an untrained sampler can leave values far outside the data; beyond
        # ±SCORE_CLAMP standard deviations of the training data the inverse transform would
        # overflow. The clamped fraction is logged so this never hides a problem.
        clamped = pred.abs() > SCORE_CLAMP
        self.log("val/clamped_fraction", clamped.float().mean(), batch_size=pred.shape[0])
        pred = pred.clamp(-SCORE_CLAMP, SCORE_CLAMP)
        phys_pred = dm.to_physical(pred.double())
        phys_true = dm.to_physical(batch["target"].double())
        b = pred.shape[0]
        totals = {"mass_rel_error": [], "pk_dex": [], "one_minus_r": []}
        for c, domain in enumerate(dm.targets):
            p, t = phys_pred[:, c], phys_true[:, c]
            scores = {
                "mass_rel_error": physics.relative_mass_error(p, t).abs().mean(),
                "pk_dex": physics.spectrum_log_error(p, t).mean(),
                "one_minus_r": physics.correlation_error(p, t).mean(),
            }
            for name, value in scores.items():
                self.log(f"val/{domain}/{name}", value.float(), batch_size=b, sync_dist=True)
                totals[name].append(value)
            if get_domain(domain).kind == "surface_density":  # masses in Msun (pixel size in kpc)
                pix = batch["pixel_size"].double()
                m_pred = physics.total_mass(p, pix)
                m_true = physics.total_mass(t, pix)
                self.log(
                    f"val/{domain}/log10_mass_pred_msun",
                    torch.log10(m_pred.clamp(min=1e-30)).mean().float(),
                    batch_size=b,
                )
                self.log(
                    f"val/{domain}/log10_mass_true_msun", torch.log10(m_true).mean().float(), batch_size=b
                )
        for name, values in totals.items():
            self.log(
                f"val/{name}",
                torch.stack(values).mean().float(),
                prog_bar=name != "one_minus_r",
                batch_size=b,
                sync_dist=True,
            )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        pred = self.generate(batch["source"], generator=self._generator(10_000 + batch_idx))
        dm = getattr(self.trainer, "datamodule", None)
        physical = dm.to_physical(pred.double()) if dm is not None else pred.double()
        bad = ~torch.isfinite(physical)
        if bool(bad.any()):
            rows = batch["index"][bad.flatten(1).any(1).cpu()].tolist()
            raise FloatingPointError(
                f"prediction overflowed to non-finite physical values for rows {rows} "
                "(the model is untrained or diverged; check the checkpoint)"
            )
        return {"index": batch["index"].cpu(), "prediction": physical.cpu()}

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=0.0)

    # ------------------------------------------------------------------ exact resumption
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the global RNG states (as tensors and numbers: safe for ``weights_only`` loading)."""
        _, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 - the legacy global state is what code may use
        version, internal, gauss_next = random.getstate()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                       "gauss_next": gauss_next},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the global RNG states, so a resumed run draws the same noise as an uninterrupted one."""
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        n = states["numpy"]
        legacy = ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
        np.random.set_state(legacy)  # noqa: NPY002 - restoring the legacy global state
        p = states["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
