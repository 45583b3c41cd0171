"""All validation metrics of a run, per target domain, and the composite ``physics_score``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from validation.metrics import (
    CrossCorrelationError,
    HalfMassRadiusError,
    HalfMassRadiusErrorDex,
    MassBiasDex,
    MassErrorDex,
    PixelW1Dex,
    PowerSpectrumError,
    ProfileErrorDex,
    RelativeMassError,
    TransferFunctionError,
)

__all__ = ["DEFAULT_WEIGHTS", "UNITS", "VALUE_RANGES", "PhysicsMetrics", "physics_score"]

#: weights of the composite score (lower is better; 0 for a perfect prediction). Every
#: term is symmetric: ``k × truth`` and ``truth / k`` score the same. ``transfer_dex`` is
#: left out because bin by bin it is half of ``pk_dex``; ``mass_bias_dex``, ``mass_rel``
#: and ``r50_rel`` are reported columns.
DEFAULT_WEIGHTS: dict[str, float] = {
    "pk_dex": 1.0,  # power-spectrum error |log10 P_pred/P_true| [dex]
    "one_minus_r": 1.0,  # 1 − cross-correlation coefficient
    "mass_dex": 1.0,  # |log10 M_pred/M_true| [dex]
    "profile_dex": 1.0,  # radial-profile error [dex] (surface densities)
    "r50_dex": 0.5,  # |log10 R50_pred/R50_true| [dex] (surface densities)
    "w1_dex": 1.0,  # pixel-distribution W1 [dex]
}

#: units of each score, for tables
UNITS: dict[str, str] = {
    "pk_dex": "dex", "one_minus_r": "", "transfer_dex": "dex", "mass_dex": "dex", "mass_bias_dex": "dex",
    "mass_rel": "", "profile_dex": "dex", "r50_dex": "dex", "r50_rel": "", "w1_dex": "dex",
    "mse": "(normalised units)²", "psnr": "dB", "ssim": "",
}  # fmt: skip

#: default log10 ranges of the pixel histograms by unit [dex]
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "solMass / kpc2": (-1.0, 12.0),
    "K": (1.0, 9.0),
    "G": (-12.0, -1.0),
    "mK": (-12.0, 4.0),
}


def physics_score(
    scores: dict[str, float | torch.Tensor], weights: dict[str, float] | None = None
) -> torch.Tensor:
    """``Σ w_m s_m`` over the weighted metrics present in ``scores`` (one domain)."""
    w = DEFAULT_WEIGHTS if weights is None else weights
    total = torch.tensor(0.0, dtype=torch.float64)
    for name, weight in w.items():
        if name in scores:
            total = total + weight * torch.as_tensor(scores[name], dtype=torch.float64).cpu()
    return total


class PhysicsMetrics(nn.Module):
    """Metrics of every target domain of maps ``(B, C, H, W)``.

    Args:
        shape: ``(H, W)`` of the maps.
        domains: ``{name: (kind, unit)}`` in channel order; ``kind`` is
            ``surface_density``, ``mass_weighted`` or ``brightness``. Profile and R50 errors
            are computed for surface densities and brightness maps.
        weights: composite weights (default ``DEFAULT_WEIGHTS``).
        value_ranges: log10 histogram range per unit (default ``VALUE_RANGES``).
        data_range: PSNR/SSIM range of the *normalised* maps.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        domains: dict[str, tuple[str, str]],
        weights: dict[str, float] | None = None,
        value_ranges: dict[str, tuple[float, float]] | None = None,
        data_range: float = 10.0,
    ) -> None:
        super().__init__()
        self.names = list(domains)
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = sorted(set(self.weights) - set(UNITS))
        if unknown:
            raise ValueError(
                f"score_weights: {unknown} name no metric (renamed in wave 2: mass → mass_dex, transfer → "
                f"transfer_dex, r50 → r50_dex); choose from {sorted(UNITS)}"
            )
        ranges = {**VALUE_RANGES, **(value_ranges or {})}
        physical, normalised = {}, {}
        for name, (kind, unit) in domains.items():
            m: dict[str, Any] = {
                "pk_dex": PowerSpectrumError(shape),
                "one_minus_r": CrossCorrelationError(shape),
                "transfer_dex": TransferFunctionError(shape),
                "mass_dex": MassErrorDex(),
                "mass_bias_dex": MassBiasDex(),
                "mass_rel": RelativeMassError(),
                "w1_dex": PixelW1Dex(ranges.get(unit, (-15.0, 15.0))),
            }
            if kind in ("surface_density", "brightness"):
                m["profile_dex"] = ProfileErrorDex()
                m["r50_dex"] = HalfMassRadiusErrorDex()
                m["r50_rel"] = HalfMassRadiusError()
            # the three spectral metrics share their states: one cross spectrum per update
            physical[_key(name)] = MetricCollection(
                m, compute_groups=[["pk_dex", "one_minus_r", "transfer_dex"]]
            )
            normalised[_key(name)] = MetricCollection(
                {
                    "mse": MeanSquaredError(),
                    "psnr": PeakSignalNoiseRatio(data_range=data_range),
                    "ssim": StructuralSimilarityIndexMeasure(data_range=data_range),
                },
                compute_groups=False,
            )
        self.physical = nn.ModuleDict(physical)
        self.normalised = nn.ModuleDict(normalised)

    def update(
        self,
        pred: torch.Tensor,
        true: torch.Tensor,
        pred_normalised: torch.Tensor | None = None,
        true_normalised: torch.Tensor | None = None,
    ) -> None:
        """Physical maps ``(B, C, H, W)`` (and optionally their normalised versions)."""
        for c, name in enumerate(self.names):
            self.physical[_key(name)].update(pred[:, c], true[:, c])
            if pred_normalised is not None and true_normalised is not None:
                p_n = pred_normalised[:, c : c + 1].float().contiguous()
                t_n = true_normalised[:, c : c + 1].float().contiguous()
                self.normalised[_key(name)].update(p_n, t_n)

    def compute(self) -> dict[str, torch.Tensor]:
        """``{domain/metric: value}``, ``{domain}/physics_score`` and the mean ``physics_score``."""
        out: dict[str, torch.Tensor] = {}
        per_domain = []
        for name in self.names:
            scores = dict(self.physical[_key(name)].compute())
            normalised = self.normalised[_key(name)]
            if all(m.update_called for m in normalised.values()):
                scores.update(normalised.compute())
            domain_score = physics_score(scores, self.weights)
            per_domain.append(domain_score)
            for k, v in scores.items():
                out[f"{name}/{k}"] = torch.as_tensor(v, dtype=torch.float64)
            out[f"{name}/physics_score"] = domain_score
        out["physics_score"] = torch.stack(per_domain).mean()
        for k in ("pk_dex", "one_minus_r", "mass_dex"):
            vals = [out[f"{n}/{k}"] for n in self.names if f"{n}/{k}" in out]
            out[k] = torch.stack(vals).mean()
        return out

    @property
    def updated(self) -> bool:
        """Whether any map has been seen since the last reset."""
        return any(m.update_called for coll in self.physical.values() for m in coll.values())

    def reset(self) -> None:
        for m in (*self.physical.values(), *self.normalised.values()):
            m.reset()


def _key(name: str) -> str:
    return name.replace("/", "_")
