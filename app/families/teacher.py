"""A frozen diffusion teacher for the distilled families, read from a checkpoint file.

A teacher is what a diffusion checkpoint (``Diffusion``, ``DiffusionMamba``) or a
progressive-distillation round (``Progressive``) holds: a U-Net, its parameterisation and
σ_data, and the data transforms it was trained with. The student keeps the teacher's
hyper-parameters (``spec``), so a student's checkpoint rebuilds its teacher without the teacher's file
(the weights travel in the student's ``state_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.diffusion.samplers import Denoiser
from app.families.diffusion import DENOISER_KEYS, denoiser_param, denoiser_unet

__all__ = ["Teacher", "TeacherFile", "check_transforms", "read_checkpoint", "read_teacher"]


def read_checkpoint(path: str | Path, option: str = "ckpt_path") -> dict[str, Any]:
    """The Lightning checkpoint at ``path`` (tensors memory-mapped, ``weights_only``); ValueError naming
    ``option`` and the file when it is missing, truncated or not a Lightning checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{option}: no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, … on bad files
        raise ValueError(f"{option}: {path} is not a readable checkpoint (corrupt or truncated?): "
                         f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None  # fmt: skip
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{option}: {path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


@dataclass(frozen=True)
class TeacherFile:
    """What a teacher checkpoint holds.

    Attributes:
        spec: the denoiser's hyper-parameters (``DENOISER_KEYS``), plain types.
        weights: the U-Net's state dict and ``sigma_data`` (a ``Teacher``'s state dict).
        transforms: the data module's fitted transforms (``{domain: state}``), or None.
        steps, base_steps: a progressive round's steps and base grid; None for a diffusion model.
    """

    spec: dict[str, Any]
    weights: dict[str, torch.Tensor]
    transforms: dict[str, dict[str, Any]] | None
    steps: int | None = None
    base_steps: int | None = None


def read_teacher(path: str | Path, option: str = "model.teacher") -> TeacherFile:
    """Read a diffusion or progressive-distillation checkpoint as a teacher (ValueError naming ``option``)."""
    ckpt = read_checkpoint(path, option)  # memory-mapped: only the tensors used are read
    hp = dict(ckpt.get("hyper_parameters", {}))
    state = ckpt["state_dict"]
    if "mean_weight" in hp or any(k.startswith("mean_net.") for k in state):  # ResidualDiffusion: its
        # denoiser needs the regression mean beside it
        raise ValueError(f"{option}: {path} holds a residual diffusion model, whose denoiser samples only the "
                         "residual of its regression mean; distil a plain diffusion checkpoint (app.families.Diffusion)")  # fmt: skip
    if "base_steps" in hp and hp.get("teacher_spec"):  # a progressive round teaches the next
        spec, steps, base = dict(hp["teacher_spec"]), int(hp["steps"]), int(hp["base_steps"])
    elif all(k in hp for k in DENOISER_KEYS):
        spec, steps, base = {k: hp[k] for k in DENOISER_KEYS}, None, None
    else:
        kind = hp.get("_class_path", "non-diffusion")
        raise ValueError(f"{option}: {path} holds a {kind} model; a teacher is a diffusion checkpoint "
                         "(app.families.Diffusion, DiffusionMamba) or a progressive-distillation round")  # fmt: skip
    prefix = "ema_net." if any(k.startswith("ema_net.") for k in state) else "net."  # galchemy's earlier EMA
    if "sigma_data" not in state or not any(k.startswith(prefix) for k in state):
        raise ValueError(f"{option}: {path} has no network weights or sigma_data in its state_dict")
    weights = {"net." + k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    weights["sigma_data"] = state["sigma_data"]
    data_states = [v for v in ckpt.values() if _fitted_transforms(v)]  # stored under the data module's class name
    if not data_states:
        raise ValueError(f"{option}: {path} has no data-module state (fitted transforms): train the teacher with "
                         "a galchemy data module")  # fmt: skip
    return TeacherFile(spec, weights, data_states[0]["transforms"], steps, base)


def _fitted_transforms(state: Any) -> bool:
    """Whether ``state`` is a data module's saved state: ``{"transforms": {domain: fitted state}}``."""
    t = state.get("transforms") if isinstance(state, dict) else None
    return isinstance(t, dict) and bool(t) and all(isinstance(v, dict) and "shift" in v for v in t.values())


def check_transforms(saved: dict[str, dict[str, Any]] | None, data_transforms: dict[str, Any],
                     domains: list[str], option: str = "model.teacher") -> None:  # fmt: skip
    """ValueError when the teacher's fitted transforms (``saved``) differ from the data's for any of
    ``domains``: a teacher trained on other normalised units would teach wrong maps."""
    if saved is None:
        return
    for d in domains:
        mine = data_transforms[d].state()
        theirs = saved.get(d)
        if theirs is None:
            raise ValueError(f"{option}: the teacher was not trained on domain {d!r}")
        for key in ("name", "shift", "scale", "floor", "softening"):
            a, b = mine.get(key), theirs.get(key)
            same = a == b if isinstance(a, str) or a is None or b is None else abs(a - b) <= 1e-9 * max(1, abs(a))
            if not same:
                raise ValueError(f"{option}: the teacher's {d} transform has {key}={b!r}, this data's {a!r}: "
                                 "train the student on the data settings the teacher was trained with")  # fmt: skip


class Teacher(nn.Module):
    """A frozen denoiser ``D(x; σ, source)``: the U-Net, its parameterisation and σ_data.

    Args:
        spec: the denoiser's hyper-parameters (``DENOISER_KEYS``).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec = dict(spec)
        self.net = denoiser_unet(spec["net"], spec["parameterization"], spec["target_channels"])
        self.register_buffer("sigma_data", torch.tensor(1.0, dtype=torch.float64))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Teacher:
        """A teacher stays in evaluation mode (no dropout), whatever the student's mode."""
        return super().train(False)

    @property
    def param(self):
        """The parameterisation object at the loaded σ_data (rebuilt only when σ_data changes)."""
        sigma_data = float(self.sigma_data)
        cached = getattr(self, "_param_cache", None)
        if cached is None or cached[0] != sigma_data:
            self._param_cache = cached = (sigma_data, denoiser_param(self.spec, sigma_data))
        return cached[1]

    def sigma_range(self) -> tuple[float, float]:
        """``(σ_min, σ_max)`` the teacher was trained over: its EDM sampling range, or its VP schedule's."""
        param = self.param
        if hasattr(param, "sigmas"):
            return float(param.sigmas[0]), float(param.sigmas[-1])
        return float(self.spec["sigma_min"]), float(self.spec["sigma_max"])

    def denoiser(self, source: torch.Tensor) -> Denoiser:
        """``D(x; σ)`` with ``source`` ``(B, 1, H, W)`` bound in; σ scalar or ``(B,)``."""
        return self.param.denoiser(self.net, source)

    def grid(self, steps: int) -> torch.Tensor:
        """The teacher's deterministic (DDIM) σ grid of ``steps`` steps, ``(steps + 1,)`` float64 ending in 0."""
        return self.param.sampling_sigmas(steps, "ddim")
