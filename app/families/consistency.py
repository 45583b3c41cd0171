"""Consistency models (Song et al. 2023): one- to few-step sampling, distilled from a diffusion
teacher (CD) or trained without one (CT). The pieces are ``app.diffusion.distillation``."""

from __future__ import annotations

import copy
from typing import Any

import torch

from app.diffusion.distillation import consistency_loss, consistency_scalings, sample_consistency
from app.diffusion.samplers import karras_sigmas
from app.families.diffusion import denoiser_unet, measure_sigma_data
from app.families.student import Student, resolve_teacher
from app.nets.options import UNetOptions, net_dict
from app.noise import NoiseSource, as_noise

__all__ = ["Consistency"]


class Consistency(Student):
    """``f(x, σ) = c_skip(σ) x + c_out(σ) F(cat[source, c_in x], ln σ/4)`` with ``f(x, σ_min) = x``.

    Args:
        teacher: a diffusion checkpoint (``Diffusion``/``DiffusionMamba``/``Progressive``) to distil;
            the student starts from its U-Net and σ_data. None: consistency training, on ``net``.
        net: U-Net options, only without a teacher.
        distill_steps: N, the Karras discretisation of [σ_min, σ_max] the loss compares neighbours on.
        target_decay: μ of the target network ``θ⁻ ← μ θ⁻ + (1 − μ) θ`` after every optimiser step.
        distance: ``l2`` or ``pseudo_huber`` (``app.diffusion.distillation.distance``).
        steps: sampling evaluations (1: one step); ``taus`` the σ's of the evaluations (default: the
            first ``steps`` σ's of a ``steps + 1``-point Karras grid, so ``τ₀ = σ_max``); both overridable per call.
        sigma_min, sigma_max, rho: the consistency function's σ range and grid; with a teacher the range
            defaults to (and must lie within) the one it was trained over, else 0.002 and 80.
        sigma_data: without a teacher, ``"auto"`` (measured on the training targets) or a number.
        teacher_spec, teacher_transforms: recorded from the teacher's file; leave them out.
    """

    def __init__(
        self,
        teacher: str | None = None,
        net: UNetOptions | None = None,
        distill_steps: int = 18,
        target_decay: float = 0.95,
        distance: str = "l2",
        steps: int = 1,
        taus: list[float] | None = None,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        rho: float = 7.0,
        sigma_data: float | str = "auto",
        teacher_spec: dict[str, Any] | None = None,
        teacher_transforms: dict[str, Any] | None = None,
        **common: Any,
    ) -> None:
        teacher_spec, file = resolve_teacher(teacher, teacher_spec)
        if teacher_spec is not None and net_dict(net):
            raise ValueError("model.net: a distilled student takes its teacher's U-Net; leave model.net out")
        if distill_steps < 2:
            raise ValueError(f"model.distill_steps must be >= 2, got {distill_steps}")
        if not 0 <= target_decay < 1:
            raise ValueError(f"model.target_decay must be in [0, 1), got {target_decay}")
        if distance not in ("l2", "pseudo_huber"):
            raise ValueError(f"model.distance: unknown {distance!r}; choose l2 or pseudo_huber")
        if not (sigma_data == "auto" or (isinstance(sigma_data, (int, float)) and sigma_data > 0)):
            raise ValueError(f"model.sigma_data must be 'auto' or positive, got {sigma_data!r}")
        super().__init__(**common)
        self._attach_teacher(teacher_spec, file)
        lo, hi = self.teacher.sigma_range() if self.teacher is not None else (0.002, 80.0)
        sigma_min, sigma_max = lo if sigma_min is None else sigma_min, hi if sigma_max is None else sigma_max
        if not lo * (1 - 1e-9) <= sigma_min < sigma_max <= hi * (1 + 1e-9) and self.teacher is not None:
            raise ValueError(f"model.sigma_min, sigma_max = {sigma_min}, {sigma_max} leave the teacher's σ range "
                             f"[{lo:.4g}, {hi:.4g}]; leave them out to take it")  # fmt: skip
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < model.sigma_min < model.sigma_max, got {sigma_min}, {sigma_max}")
        self.hparams.update(sigma_min=sigma_min, sigma_max=sigma_max)  # as resolved, for the checkpoint
        self._taus(steps, taus)  # validates
        channels = self.hparams.target_channels
        self.net = denoiser_unet(teacher_spec["net"] if teacher_spec else net, "edm", channels)
        measured = teacher_spec is not None or sigma_data != "auto"
        initial = 1.0 if sigma_data == "auto" else float(sigma_data)
        self.register_buffer("sigma_data", torch.tensor(initial, dtype=torch.float64))
        self.register_buffer("sigma_data_measured", torch.tensor(measured))
        if self.teacher is not None:
            self.sigma_data.copy_(self.teacher.sigma_data)
            if teacher_spec["parameterization"] == "edm":  # same preconditioned network: start from it
                self.net.load_state_dict(self.teacher.net.state_dict())
        self.target_net = copy.deepcopy(self.net).requires_grad_(False)
        self.register_buffer("grid", karras_sigmas(distill_steps, sigma_min, sigma_max, rho)[:-1].flip(0))

    def _taus(self, steps: int, taus: list[float] | None) -> torch.Tensor:
        """The sampling σ's ``(steps,)`` float64, checked (ValueError naming ``taus``/``steps``)."""
        h = self.hparams
        if taus is None:
            if steps < 1:
                raise ValueError(f"model.steps must be >= 1, got {steps}")
            return karras_sigmas(steps + 1, h.sigma_min, h.sigma_max, h.rho)[:steps]
        t = torch.as_tensor(taus, dtype=torch.float64).reshape(-1)
        if len(t) != steps or not bool((t[1:] < t[:-1]).all()) or not (h.sigma_min < float(t[-1]) and
                                                                        float(t[0]) <= h.sigma_max):  # fmt: skip
            raise ValueError(f"model.taus: need {steps} (model.steps) decreasing σ's in (sigma_min, sigma_max], "
                             f"got {list(taus)}")  # fmt: skip
        return t

    def consistency_fn(self, net: torch.nn.Module, source: torch.Tensor):
        """``f(x, σ)`` of ``net`` with ``source`` ``(B, 1, H, W)`` bound in; σ scalar or ``(B,)``."""
        sd, smin = float(self.sigma_data), self.hparams.sigma_min

        def f(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            s = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).reshape(-1)
            c_skip, c_out, c_in = (c.reshape(-1, 1, 1, 1) for c in consistency_scalings(s, sd, smin))
            c_noise = (torch.log(s) / 4).expand(x.shape[0]).float()
            return c_skip * x + c_out * net(torch.cat([source, c_in * x], dim=1), c_noise)

        return f

    def on_fit_start(self) -> None:
        """Check the teacher; without one, measure σ_data on the training targets (``"auto"``)."""
        super().on_fit_start()
        if not bool(self.sigma_data_measured):
            self.sigma_data.fill_(measure_sigma_data(self.data))
            self.sigma_data_measured.fill_(True)

    def training_loss(self, batch: dict[str, Any], generator: NoiseSource = None) -> torch.Tensor:
        """``consistency_loss`` between neighbours ``σ_n < σ_{n+1}`` of the grid, ``n`` uniform per map."""
        x0, source = batch["target"], batch["source"]
        noise = as_noise(generator, x0.shape[0])
        n_max = len(self.grid) - 1
        n = (noise.uniform(torch.float64) * n_max).long().clamp(max=n_max - 1).to(self.grid.device)
        z = noise.normal(x0.shape[1:], x0.dtype).to(x0.device)
        teacher = self.teacher.denoiser(source) if self.teacher is not None else None
        return consistency_loss(
            self.consistency_fn(self.net, source), self.consistency_fn(self.target_net, source), x0, z,
            self.grid[n], self.grid[n + 1], teacher, self.hparams.distance,
        )  # fmt: skip

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """``θ⁻ ← μ θ⁻ + (1 − μ) θ`` once per optimiser step (not per accumulated batch; the same on
        every DDP rank)."""
        if self.trainer.global_step == getattr(self, "_target_step", None):
            return
        self._target_step = self.trainer.global_step
        with torch.no_grad():
            for target, online in zip(self.target_net.parameters(), self.net.parameters(), strict=True):
                target.lerp_(online, 1 - self.hparams.target_decay)

    def generate(self, source: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, **overrides: Any) -> torch.Tensor:  # fmt: skip
        """Normalised ``(B, C, H, W)`` in ``steps`` evaluations (``sample_consistency``); ``steps`` and
        ``taus`` overridable."""
        steps = int(overrides.get("steps", self.hparams.steps))
        taus = self._taus(steps, overrides.get("taus", self.hparams.taus if steps == self.hparams.steps else None))
        shape = (source.shape[0], self.hparams.target_channels, *source.shape[-2:])
        z = noise if noise is not None else torch.randn(shape, generator=generator, device=source.device,
                                                        dtype=source.dtype)  # fmt: skip
        with torch.no_grad():
            f = self.consistency_fn(self.net, source)
            return sample_consistency(f, z, taus.to(source.device, source.dtype), self.hparams.sigma_min, generator)
