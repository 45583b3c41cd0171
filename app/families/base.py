"""What every generator family shares: the shared options, the U-Net from a config dict, the
data contract, physics scores during validation and test, and prediction in physical units."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from app.data.contract import DataContract
from app.data.domains import get_domain
from app.families.callbacks import AtomicCheckpoints, GlobalRNGState, ema
from app.families.inference import SCORE_CLAMP, generate_physical, index_noise
from app.nets import UNet
from app.nets.options import net_dict
from app.nets.tome import check_ratio
from app.noise import BatchNoise, NoiseSource
from validation import PhysicsMetrics

__all__ = ["SCORE_CLAMP", "Translator", "build_unet"]


def build_unet(
    spec: Any, in_channels: int, out_channels: int, time_embedding: str | None
) -> UNet:
    """A U-Net from ``spec`` (the ``model.net`` config) with the family's channels and time embedding."""
    spec = net_dict(spec)
    for key, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if key in spec and spec[key] != value:
            raise ValueError(
                f"model.net.{key} is {spec[key]} but this family and data need {value}; leave it out"
            )
        spec[key] = value
    if spec.get("time_embedding") is None:
        spec["time_embedding"] = time_embedding  # unset (None): the family's own choice
    elif time_embedding is None:
        raise ValueError("model.net.time_embedding: this family does not condition on noise level or time; "
                         "leave it out")  # fmt: skip
    try:
        return UNet(**spec)
    except TypeError as err:
        raise ValueError(f"model.net: {err}") from None


class Translator(L.LightningModule):
    """Base LightningModule of the generator families (subclasses define the loss and ``generate``).

    Args:
        target_channels: one per target domain (linked to ``data.targets`` by the CLI).
        lr: learning rate of the optimiser(s).
        ema_decay: EMA of the weights (0 disables; warm-up ``min(decay, (1+n)/(10+n))``).
            Validation, test, prediction and saved checkpoints use the EMA weights.
        val_maps: the first ``val_maps`` views (by dataset index) of each validation or test
            split are generated and scored with ``validation.PhysicsMetrics``.
        score_weights: weights of ``val/physics_score`` (``validation.DEFAULT_WEIGHTS``).
        sample_seed: fixed seed of validation / test / prediction sampling.
        token_merging: fraction of tokens merged away in every attention when generating
            (``app.nets.tome``; 0: off); a sampling option, overridable per call, no retraining.

    At set-up the model receives the data's ``app.data.DataContract`` (``self.data``); it
    never reaches into the data module at run time.
    """

    net: nn.Module
    data: DataContract | None = None

    def __init__(
        self,
        *,
        target_channels: int = 1,
        lr: float = 2e-4,
        ema_decay: float = 0.999,
        val_maps: int = 16,
        score_weights: dict[str, float] | None = None,
        sample_seed: int = 1234,
        token_merging: float = 0.0,
    ) -> None:
        super().__init__()
        check_ratio(token_merging)
        if target_channels < 1:
            raise ValueError(f"model.target_channels must be >= 1, got {target_channels}")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in [0, 1), got {ema_decay}")
        if lr < 0:
            raise ValueError(f"model.lr must be >= 0, got {lr}")
        if val_maps < 1:
            raise ValueError(f"model.val_maps must be >= 1, got {val_maps}: val/physics_score, which checkpoint "
                             "selection and early stopping watch, is computed on the first val_maps views")  # fmt: skip
        self.save_hyperparameters()  # the subclass's arguments too (Lightning walks the __init__ frames)
        # LightningCLI hands save_hyperparameters only the arguments its parser saw (a baseline's
        # parser has no lr or ema_decay): the shared values always land in hparams
        shared = {"target_channels": target_channels, "lr": lr, "ema_decay": ema_decay, "val_maps": val_maps,
                  "score_weights": score_weights, "sample_seed": sample_seed, "token_merging": token_merging}  # fmt: skip
        for key, value in shared.items():
            self.hparams.setdefault(key, value)
        if self.hparams.get("net") is not None:  # UNetOptions → plain dict: loadable with weights_only
            self.hparams["net"] = net_dict(self.hparams["net"])
        self.checkpoint_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ hooks for families
    def training_loss(self, batch: dict[str, Any], generator: NoiseSource = None) -> torch.Tensor:
        """The training objective on a batch (normalised units); ``val/loss`` uses it too.
        ``generator``: where its randomness comes from, per map (``app.noise.BatchNoise``, as in
        training) or one generator for the batch (``None``: the global RNG)."""
        raise NotImplementedError

    def validation_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """``val/loss`` and ``test/loss`` (normalised units): the training objective unless a family
        trains in its own ``training_step`` (pix2pix)."""
        return self.training_loss(batch, generator)

    def generate(self, source: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, **overrides: Any) -> torch.Tensor:  # fmt: skip
        """Normalised prediction ``(B, target_channels, H, W)`` for normalised ``source`` ``(B, 1, H, W)``.

        ``noise`` (standard normal, the prediction's shape) fixes a sampler's starting noise.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ shared machinery
    def configure_callbacks(self) -> list[L.Callback]:
        """EMA weights (Lightning's ``WeightAveraging``), exact-resumption RNG states and atomic checkpoints."""
        extra: list[L.Callback] = [GlobalRNGState(), AtomicCheckpoints()]
        if self.hparams.ema_decay > 0:
            trainer = self._trainer  # None when called outside a Trainer
            extra.append(ema(self.hparams.ema_decay, trainer.strategy if trainer is not None else None))
        return extra

    def setup(self, stage: str) -> None:
        """Take the data contract from the trainer's data module and build the physics metrics."""
        dm = self.trainer.datamodule
        if not callable(getattr(dm, "contract", None)):
            raise TypeError(
                f"{type(self).__name__} needs a galchemy data module (app.data.GalaxyDataModule), got "
                f"{type(dm).__name__}: pass datamodule=… to the Trainer"
            )
        data: DataContract = dm.contract()
        if len(data.targets) != self.hparams.target_channels:
            raise ValueError(
                f"model.target_channels is {self.hparams.target_channels} but data.targets lists "
                f"{len(data.targets)} domain(s) {list(data.targets)}"
            )
        for name, module in self.named_children():  # the U-Net, and a residual model's mean network
            try:
                if hasattr(module, "check_size"):
                    module.check_size(data.size, data.size)
            except ValueError as err:
                raise ValueError(f"data.size={data.size} does not fit model.{name}: {err}") from None
        self.data = data
        domains = {d: get_domain(d) for d in data.targets}
        self.val_metrics = PhysicsMetrics((data.size,) * 2, domains, weights=self.hparams.get("score_weights"))

    def _check_finite(self, loss: torch.Tensor, what: str = "training loss") -> None:
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(
                f"non-finite {what} ({float(loss)}) at step {self.global_step}, epoch {self.current_epoch}: "
                "training stopped; the last good checkpoint is kept (lower model.lr or check the data)"
            )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """Log ``training_loss`` of the batch (normalised units) as ``train/loss`` and return it;
        stops on a non-finite loss. Each map's noise is seeded by ``(seed_everything's seed, epoch,
        index)`` (``app.noise``): the same in any batch, on any DDP rank, after any resume."""
        loss = self.training_loss(batch, BatchNoise.for_batch(batch))
        self._check_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["source"].shape[0])
        return loss

    def _index_noise(self, batch: dict[str, Any]) -> torch.Tensor:
        """Initial noise ``(B, C, H, W)`` seeded by each map's dataset index (DDP- and batch-invariant)."""
        return index_noise(batch, self.hparams.target_channels, self.hparams.sample_seed)

    def _to_physical(self) -> Any:
        if self.data is None:
            raise RuntimeError(
                f"{type(self).__name__} has no data contract: run it through a Trainer with a data module, "
                "or pass to_physical"
            )
        return self.data.to_physical

    def generate_physical(self, batch: dict[str, Any], to_physical=None, **overrides: Any):
        """Predictions of ``batch`` in normalised and physical units (``app.families.inference``)."""
        return generate_physical(
            self, batch, to_physical or self._to_physical(), self.hparams.sample_seed,
            self.hparams.target_channels, **overrides,
        )  # fmt: skip

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """``val/loss`` on every batch; generated maps of the first ``val_maps`` views scored with physics."""
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As validation, on the test split, logged as ``test/…``."""
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        b = batch["source"].shape[0]
        loss = self.validation_loss(
            batch, generator=torch.Generator().manual_seed(self.hparams.sample_seed + batch_idx)
        )
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=b, sync_dist=True)
        keep = batch["index"] < self.hparams.val_maps
        if not bool(keep.any()):
            return
        sub = {k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        out = self.generate_physical(sub)
        self.log(f"{stage}/clamped_fraction", out.clamped_fraction, batch_size=out.physical.shape[0], sync_dist=True)
        phys_true = self._to_physical()(sub["target"].double())
        self.val_metrics.update(out.physical, phys_true, out.normalised, sub["target"])

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's physics metrics as ``val/…`` and reset them."""
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        """Log the epoch's physics metrics as ``test/…`` and reset them."""
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
        """``index`` ``(B,)`` and ``prediction`` ``(B, C, H, W)`` float64 in physical units, on the CPU;
        raises FloatingPointError when the prediction left the data range."""
        out = self.generate_physical(batch)
        if out.clamped_fraction > 0 or not bool(torch.isfinite(out.physical).all()):
            raise FloatingPointError(
                f"prediction of batch {batch_idx} (rows {batch['index'].tolist()}) left the data range: "
                f"{out.clamped_fraction:.2%} of pixels beyond ±{SCORE_CLAMP:g} training standard deviations "
                "(the model is untrained or diverged; check the checkpoint)"
            )
        return {"index": batch["index"].cpu(), "prediction": out.physical.cpu()}

    def configure_optimizers(self):
        """One AdamW over the network's weights at ``lr`` (no weight decay, no schedule)."""
        return torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=0.0)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. by ``ddp_spawn``) without the data contract, which refers to the data
        module and its maps; ``setup`` hands the contract over again in the new process."""
        state = dict(super().__getstate__())
        state["data"] = None
        return state

    # ------------------------------------------------------------------ checkpoints
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the checkpoint's epoch and step (for reports); read checkpoints of the own EMA
        (``ema_net.*`` keys, before Lightning's weight averaging) with their EMA weights."""
        self.checkpoint_info = {"epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step")}
        state = checkpoint.get("state_dict", {})
        if any(k.startswith("ema_net.") for k in state):
            raw = {k: v for k, v in state.items() if not k.startswith("ema_net.")}
            checkpoint["current_model_state"] = raw
            checkpoint["state_dict"] = {**raw, **{k[4:]: v for k, v in state.items() if k.startswith("ema_net.")}}
            checkpoint["averaging_state"] = {"n_averaged": torch.tensor(checkpoint.get("global_step", 0))}
