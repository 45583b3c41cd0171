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

from app.data.domains import get_domain
from app.families.inference import SCORE_CLAMP, generate_physical, index_noise
from app.nets import UNet
from validation import PhysicsMetrics

__all__ = ["SCORE_CLAMP", "Translator", "build_unet"]


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
    ``val_maps`` (validation views, by dataset index, that are generated and scored with
    ``validation.PhysicsMetrics`` each epoch), ``score_weights`` (weights of ``val/physics_score``),
    ``sample_seed`` (fixed seed of validation/prediction sampling).
    """

    net: nn.Module

    def _init_common(self, target_channels: int, ema_decay: float) -> None:
        if target_channels < 1:
            raise ValueError(f"model.target_channels must be >= 1, got {target_channels}")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in [0, 1), got {ema_decay}")
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False) if ema_decay > 0 else None

    # ------------------------------------------------------------------ hooks for families
    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def generate(
        self,
        source: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        **overrides: Any,
    ) -> torch.Tensor:
        """Normalised prediction ``(B, target_channels, H, W)`` for normalised ``source`` ``(B, 1, H, W)``.

        ``noise`` (standard normal, the prediction's shape) fixes a sampler's starting noise.
        """
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
            if hasattr(self.net, "check_size"):
                self.net.check_size(size, size)
        except ValueError as err:
            raise ValueError(f"data.size={size} does not fit model.net: {err}") from None
        domains = {d: (get_domain(d).kind, get_domain(d).unit) for d in dm.targets}
        self.val_metrics = PhysicsMetrics((size, size), domains, weights=self.hparams.get("score_weights"))

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

    def _index_noise(self, batch: dict[str, Any]) -> torch.Tensor:
        """Initial noise ``(B, C, H, W)`` seeded by each map's dataset index (DDP- and batch-invariant)."""
        return index_noise(batch, self.hparams.target_channels, self.hparams.sample_seed)

    def generate_physical(self, batch: dict[str, Any], to_physical=None, **overrides: Any):
        """Predictions of ``batch`` in normalised and physical units (``app.families.inference``)."""
        if to_physical is None:
            to_physical = self.trainer.datamodule.to_physical
        return generate_physical(
            self, batch, to_physical, self.hparams.sample_seed, self.hparams.target_channels, **overrides
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """``val/loss`` on every batch; generated maps of the first ``val_maps`` views scored with physics."""
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As validation, on the test split, logged as ``test/…``."""
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        b = batch["source"].shape[0]
        loss = self.training_loss(
            batch, generator=torch.Generator().manual_seed(self.hparams.sample_seed + batch_idx)
        )
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=b, sync_dist=True)
        keep = batch["index"] < self.hparams.val_maps
        if not bool(keep.any()) or getattr(self, "val_metrics", None) is None:
            return
        sub = {k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        out = self.generate_physical(sub)
        self.log(f"{stage}/clamped_fraction", out.clamped_fraction, batch_size=out.physical.shape[0], sync_dist=True)
        phys_true = self.trainer.datamodule.to_physical(sub["target"].double())
        self.val_metrics.update(out.physical, phys_true, out.normalised, sub["target"])

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        metrics = getattr(self, "val_metrics", None)
        if metrics is None or not metrics.updated:
            return
        for name, value in metrics.compute().items():
            self.log(
                f"{stage}/{name}",
                value.float(),
                prog_bar=name in ("physics_score", "pk_dex", "mass_dex"),
                sync_dist=False,
            )
        metrics.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        out = self.generate_physical(batch)
        if out.clamped_fraction > 0 or not bool(torch.isfinite(out.physical).all()):
            raise FloatingPointError(
                f"prediction of batch {batch_idx} (rows {batch['index'].tolist()}) left the data range: "
                f"{out.clamped_fraction:.2%} of pixels beyond ±{SCORE_CLAMP:g} training standard deviations "
                "(the model is untrained or diverged; check the checkpoint)"
            )
        return {"index": batch["index"].cpu(), "prediction": out.physical.cpu()}

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
