"""All validation metrics of a run, per target domain, and the composite ``physics_score``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio

from validation.domains import DOMAIN_KINDS, PROFILED_KINDS, VALUE_RANGES, Domain, value_range
from validation.metrics import (
    CrossCorrelationError,
    HalfMassRadiusErrors,
    MassBiasDex,
    MassErrorDex,
    PixelW1Dex,
    PowerSpectrumError,
    ProfileErrorDex,
    RelativeMassError,
    TransferFunctionError,
)
from validation.ssim import StructuralSimilarity

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

# VALUE_RANGES (log10 pixel-histogram range [dex] by unit) is derived from the domain table,
# ``validation.domains.DOMAINS``, and re-exported here.


def physics_score(
    scores: dict[str, float | torch.Tensor], weights: dict[str, float] | None = None
) -> torch.Tensor:
    """``Σ w_m s_m`` over the weighted metrics present in ``scores`` (one domain).

    ``scores``: ``{metric: scalar}`` (floats or 0-d tensors, any device); ``weights``: default
    ``DEFAULT_WEIGHTS``. Returns a 0-d float64 CPU tensor (lower is better).
    """
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
        domains: in channel order, ``{name: (kind, unit)}`` or ``{name: Domain}`` (a row of
            ``validation.domains.DOMAINS``); ``kind`` is one of ``validation.domains.DOMAIN_KINDS``.
            Profile and R50 errors are computed for ``PROFILED_KINDS`` (surface densities and
            brightness maps).
        weights: composite weights (default ``DEFAULT_WEIGHTS``).
        value_ranges: log10 histogram range [dex] per unit string, overriding the domain
            table's (``validation.domains.VALUE_RANGES``; ±15 dex for a unit it lacks).
        data_range: PSNR/SSIM range of the *normalised* maps.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        domains: dict[str, tuple[str, str] | Domain],
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
        physical, normalised = {}, {}
        for name, spec in domains.items():
            kind, unit = (spec.kind, spec.unit) if isinstance(spec, Domain) else spec
            if kind not in DOMAIN_KINDS:
                raise ValueError(f"domain {name!r}: unknown kind {kind!r}; choose one of {DOMAIN_KINDS}")
            lo_hi = value_range(unit, value_ranges)
            m: dict[str, Any] = {
                "pk_dex": PowerSpectrumError(shape),
                "one_minus_r": CrossCorrelationError(shape),
                "transfer_dex": TransferFunctionError(shape),
                "mass_dex": MassErrorDex(),
                "mass_bias_dex": MassBiasDex(),
                "mass_rel": RelativeMassError(),
                "w1_dex": PixelW1Dex(lo_hi),
            }
            if kind in PROFILED_KINDS:
                m["profile_dex"] = ProfileErrorDex()
                m["r50"] = HalfMassRadiusErrors()  # r50_dex and r50_rel from one R50 pair per map
            # the three spectral metrics share their states: one cross spectrum per update
            physical[_key(name)] = MetricCollection(
                m, compute_groups=[["pk_dex", "one_minus_r", "transfer_dex"]]
            )
            normalised[_key(name)] = MetricCollection(
                {
                    "mse": MeanSquaredError(),
                    "psnr": PeakSignalNoiseRatio(data_range=data_range),
                    "ssim": StructuralSimilarity(data_range=data_range),  # torchmetrics' SSIM, separable window
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
        """Forget every map seen (all physical and normalised metrics)."""
        for m in (*self.physical.values(), *self.normalised.values()):
            m.reset()


def _key(name: str) -> str:
    return name.replace("/", "_")
