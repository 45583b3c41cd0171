"""InDI — Inversion by Direct Iteration (Delbracio & Milanfar 2023)."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from app.families.base import Translator, build_unet
from app.nets.options import UNetOptions
from app.noise import NoiseSource, as_noise

__all__ = ["InDI", "indi_sample"]

log = logging.getLogger(__name__)


def _eps(t: float | torch.Tensor, eps0: float, schedule: str):
    return eps0 if schedule == "constant" else eps0 / math.sqrt(float(t))


def indi_sample(
    model, y: torch.Tensor, steps: int, eps0: float = 0.0, schedule: str = "constant", generator=None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x̂_{t−δ} = (δ/t) F(x̂_t, t) + (1 − δ/t) x̂_t + (t − δ) sqrt(ε²_{t−δ} − ε²_t) η`` from ``x̂_1 = y + ε_1 η``.

    ``model(x, t)`` predicts the clean target; ``t`` runs 1, 1 − 1/N, …, 1/N. With constant
    ε this is the Euler method of the probability-flow ODE with σ → t; N = 1 is ``F(y, 1)``.
    """
    if steps < 1:
        raise ValueError(f"InDI steps must be >= 1, got {steps}")
    delta = 1.0 / steps

    def draw() -> torch.Tensor:
        return torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)

    start = draw() if noise is None else noise.to(y)  # ``noise``: the starting noise, if fixed
    x = y + _eps(1.0, eps0, schedule) * start if eps0 > 0 else y
    for i in range(steps, 0, -1):
        t = i * delta
        f = model(x, torch.full((y.shape[0],), t, device=y.device))
        x = (delta / t) * f + (1 - delta / t) * x
        if eps0 > 0 and schedule != "constant" and i > 1:
            gap = _eps(t - delta, eps0, schedule) ** 2 - _eps(t, eps0, schedule) ** 2
            x = x + (t - delta) * math.sqrt(max(gap, 0.0)) * draw()
    return x


class InDI(Translator):
    """``x_t = (1 − t) x + t y (+ t ε_t η)``; F(x_t, t) predicts the clean target x.

    With ``concat_source`` and no noise (``eps0 = 0``), x_t = (1 − t) x + t y with y known
    makes x = (x_t − t y)/(1 − t) trivially recoverable for t < 1: the network learns that
    inversion, and several sampling steps compound its errors (measured on gas → HI: one
    step 0.92, two 2.47, four 3.0 against the lookup's 1.25). Use ``steps: 1`` for a
    deterministic mapping, or ``eps0 > 0`` (the noisy variant) for several steps; the
    combination ``steps > 1, eps0 = 0, concat_source`` logs a warning.

    Args:
        steps: sampling steps N (N = 1 is one-step regression).
        eps0, noise_schedule: ε_t = eps0 (``constant``) or eps0/√t (``brownian``).
        p_one: probability of training at exactly t = 1 (strengthens the one-step prediction).
        concat_source: also feed the source map y to F (an extension of the paper).
        loss: ``l2`` (F → conditional mean) or ``l1``.
    """

    def __init__(
        self,
        net: UNetOptions | None = None,
        steps: int = 1,
        eps0: float = 0.0,
        noise_schedule: str = "constant",
        p_one: float = 0.1,
        concat_source: bool = True,
        loss: str = "l2",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        target_channels = self.hparams.target_channels
        if steps < 1:
            raise ValueError(f"model.steps must be >= 1, got {steps}")
        if noise_schedule not in ("constant", "brownian"):
            raise ValueError(f"model.noise_schedule: unknown {noise_schedule!r}; choose constant or brownian")
        if loss not in ("l1", "l2"):
            raise ValueError(f"model.loss: unknown {loss!r}; choose l1 or l2")
        if not 0 <= p_one <= 1 or eps0 < 0:
            raise ValueError("model.p_one must be in [0, 1] and model.eps0 >= 0")
        if steps > 1 and eps0 == 0 and concat_source:
            log.warning(
                "InDI with steps=%d, eps0=0 and concat_source: multi-step deterministic InDI compounds the "
                "network's errors (docs/families.md); use steps=1 or eps0 > 0", steps
            )  # fmt: skip
        self.net = build_unet(net, target_channels + (1 if concat_source else 0), target_channels, "fourier")

    def _f(self, net, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        inp = torch.cat([y[:, :1], x_t], dim=1) if self.hparams.concat_source else x_t
        return net(inp, t)

    def training_loss(self, batch: dict[str, Any], generator: NoiseSource = None) -> torch.Tensor:
        """L2 or L1 error of F's clean-target prediction at random ``t ∈ (0, 1]`` (normalised units);
        ``generator``: per-map noise (``app.noise.BatchNoise``) or one generator for the batch."""
        x, y1 = batch["target"], batch["source"]
        y = y1.expand_as(x)
        b = x.shape[0]
        noise = as_noise(generator, b)
        t = 1 - noise.uniform()  # (0, 1]
        t = torch.where(noise.uniform() < self.hparams.p_one, torch.ones_like(t), t).to(x)
        tt = t.view(b, 1, 1, 1)
        x_t = (1 - tt) * x + tt * y
        if self.hparams.eps0 > 0:
            eps_t = self.hparams.eps0 / (tt.sqrt() if self.hparams.noise_schedule == "brownian" else 1)
            x_t = x_t + tt * eps_t * noise.normal(x.shape[1:]).to(x)
        err = self._f(self.net, x_t, t, y1) - x
        return err.square().mean() if self.hparams.loss == "l2" else err.abs().mean()

    def generate(self, source: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, **overrides: Any) -> torch.Tensor:  # fmt: skip
        """``indi_sample`` in ``steps`` steps (overridable) from normalised ``source`` ``(B, 1, H, W)``
        expanded to C channels: normalised ``(B, C, H, W)``."""
        steps = int(overrides.get("steps", self.hparams.steps))
        y = source.expand(source.shape[0], self.hparams.target_channels, *source.shape[-2:])
        net = self.net
        with torch.no_grad():
            return indi_sample(
                lambda x, t: self._f(net, x, t, source), y, steps, self.hparams.eps0,
                self.hparams.noise_schedule, generator, noise,
            )  # fmt: skip
