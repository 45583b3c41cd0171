"""Progressive distillation (Salimans & Ho 2022): each round a student takes one deterministic
DDIM step where its teacher took two, so 64 steps become 32, 16, …, 1 over six rounds.

A round is an ordinary, resumable ``fit``: ``model.teacher`` is a diffusion checkpoint for the
first round and the previous round's checkpoint after that. The student starts from its
teacher's weights and keeps its parameterisation: a ``v`` teacher gives v-prediction students,
an EDM teacher EDM-preconditioned ones. Every round samples on the same base grid, every
``base_steps/steps``-th σ of it (``app.diffusion.distillation.halved_grid``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from app.diffusion.distillation import halved_grid, progressive_loss
from app.diffusion.samplers import sample_euler
from app.families.diffusion import denoiser_unet
from app.families.student import Student, resolve_teacher
from app.noise import NoiseSource, as_noise

__all__ = ["Progressive"]

log = logging.getLogger(__name__)


class Progressive(Student):
    """A student that samples in ``steps`` DDIM(η = 0) steps what its teacher samples in ``2·steps``.

    Args:
        teacher: a diffusion checkpoint (first round) or the previous round's checkpoint.
        steps: the student's steps; its teacher's are twice as many.
        base_steps: the first teacher's grid (default ``2·steps``); later rounds take the teacher's.
        teacher_spec, teacher_transforms, teacher_steps: recorded from the teacher's file; leave them out.
    """

    def __init__(
        self,
        teacher: str | None = None,
        steps: int = 32,
        base_steps: int | None = None,
        teacher_spec: dict[str, Any] | None = None,
        teacher_transforms: dict[str, Any] | None = None,
        teacher_steps: int | None = None,
        **common: Any,
    ) -> None:
        teacher_spec, file = resolve_teacher(teacher, teacher_spec)
        if teacher_spec is None:
            raise ValueError("model.teacher: progressive distillation needs a teacher checkpoint "
                             "(a diffusion model, or the previous round)")  # fmt: skip
        if steps < 1:
            raise ValueError(f"model.steps must be >= 1, got {steps}")
        if teacher_spec["parameterization"] == "eps":
            log.warning("progressive distillation of an eps-prediction teacher: at few steps D = x − σ ε̂ "
                        "multiplies the network's error by σ (Salimans & Ho use v or x targets)")  # fmt: skip
        if file is None and (teacher_steps is None or base_steps is None):
            raise ValueError("model.teacher_spec without a teacher file needs model.teacher_steps and "
                             "model.base_steps (as a student checkpoint records them)")  # fmt: skip
        if file is not None:
            if file.steps is None:  # the first round
                teacher_steps = 2 * steps
            elif base_steps is not None and base_steps != file.base_steps:
                raise ValueError(f"model.base_steps={base_steps}, but the teacher round samples on a "
                                 f"{file.base_steps}-step base grid; leave base_steps out")  # fmt: skip
            else:
                teacher_steps = file.steps
            base_steps = file.base_steps or base_steps or teacher_steps
        if teacher_steps != 2 * steps:
            raise ValueError(f"model.steps={steps}: a round halves its teacher's {teacher_steps} steps, so "
                             f"steps must be {teacher_steps // 2}")  # fmt: skip
        if base_steps % teacher_steps:
            raise ValueError(f"model.base_steps={base_steps} must be a multiple of the teacher's {teacher_steps} steps")
        super().__init__(**common)
        self.hparams.update(base_steps=base_steps, teacher_steps=teacher_steps)  # as resolved, for the checkpoint
        self._attach_teacher(teacher_spec, file)
        self.net = denoiser_unet(teacher_spec["net"], teacher_spec["parameterization"], self.hparams.target_channels)
        self.net.load_state_dict(self.teacher.net.state_dict())
        self.register_buffer("sigma_data", self.teacher.sigma_data.clone())  # the teacher's: one preconditioning
        base = self.teacher.grid(base_steps)
        self.register_buffer("student_grid", halved_grid(base, steps))
        self.register_buffer("teacher_grid", halved_grid(base, teacher_steps))

    @property
    def param(self):
        """The teacher's parameterisation (the student's too), at the student's σ_data."""
        return self.teacher.param

    def training_loss(self, batch: dict[str, Any], generator: NoiseSource = None) -> torch.Tensor:
        """``progressive_loss`` at a student step ``i`` uniform per map: σ_i → σ_{i+1} against the
        teacher's σ_i → σ'_{2i+1} → σ_{i+1}."""
        x0, source = batch["target"], batch["source"]
        noise = as_noise(generator, x0.shape[0])
        steps = self.hparams.steps
        i = (noise.uniform(torch.float64) * steps).long().clamp(max=steps - 1).to(self.student_grid.device)
        z = noise.normal(x0.shape[1:], x0.dtype).to(x0.device)
        s, t = self.student_grid, self.teacher_grid
        return progressive_loss(self.param.denoiser(self.net, source), self.teacher.denoiser(source), x0, z,
                                s[i], t[2 * i + 1], s[i + 1])  # fmt: skip

    def generate(self, source: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, **overrides: Any) -> torch.Tensor:  # fmt: skip
        """Normalised ``(B, C, H, W)``: ``steps`` DDIM(η = 0) steps on the student's grid (a ``steps``
        override must equal the trained steps)."""
        steps = int(overrides.get("steps", self.hparams.steps))
        if steps != self.hparams.steps:
            raise ValueError(f"steps={steps}: this progressive student was distilled for {self.hparams.steps} steps")
        shape = (source.shape[0], self.hparams.target_channels, *source.shape[-2:])
        z = noise if noise is not None else torch.randn(shape, generator=generator, device=source.device,
                                                        dtype=source.dtype)  # fmt: skip
        sigmas = self.student_grid.to(source.device)
        with torch.no_grad():
            x = z * self.param.initial_noise_scale(sigmas)
            return sample_euler(self.param.denoiser(self.net, source), x, sigmas)
