"""What a report shows, and its scores: the model next to its baselines and floor.

``ReportData`` holds arrays, not models, so it serves any generator. Besides the model's
``prediction`` it carries ``references``: other predictions of the same maps scored by
the same path — the baselines (fitted on the training split), and, where the data allow,
a floor (a twin realisation on the mock) and an oracle. Every score comes with a 68 %
bootstrap interval over galaxies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

import physics
from validation.bootstrap import Interval, bootstrap_scores
from validation.collection import PhysicsMetrics

__all__ = ["ReportData", "Scored", "score_all", "score_prediction", "spectral_curves"]


@dataclass
class ReportData:
    """Everything a report shows. Maps are float64 arrays in physical units.

    Attributes:
        source: ``(N, H, W)`` source maps; ``target``, ``prediction``: ``(N, C, H, W)``.
        pixel_size: ``(N,)`` pixel side [kpc]. ``domains``/``units``: per target channel.
        kinds: per target channel, one of ``validation.domains.DOMAIN_KINDS``.
        galaxy: ``(N,)`` galaxy labels (views of one galaxy share one; bootstrap unit);
            ``rotation``: ``(N,)`` labels of the views.
        references: ``{name: (N, C, H, W)}`` other predictions of the same maps (baselines,
            ``floor (twin)``, ``oracle``), scored and plotted beside the model.
        normalised_*: optional network-unit maps for MSE/PSNR/SSIM (the model only).
        meta: free-form run description (family, sampler, steps, checkpoint, …).
        history: optional training curves ``{metric: (steps, values)}`` (e.g. ``train/loss``,
            ``val/loss``, ``val/physics_score`` from the run's ``metrics.csv``).
    """

    source: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    pixel_size: np.ndarray
    domains: list[str]
    units: list[str]
    kinds: list[str]
    source_domain: str
    source_unit: str
    galaxy: list[str]
    rotation: list[str]
    references: dict[str, np.ndarray] = field(default_factory=dict)
    normalised_prediction: np.ndarray | None = None
    normalised_target: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)
    history: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def predictions(self) -> dict[str, np.ndarray]:
        """``{"model": prediction, **references}``."""
        return {"model": self.prediction, **self.references}


@dataclass
class Scored:
    """Scores of one predictor: ``{key: Interval}``, or plain fallbacks with a note."""

    scores: dict[str, Interval]
    note: str | None = None


def _fallback(data: ReportData, pred: np.ndarray) -> tuple[dict[str, Interval], list[str]]:
    """Per-score values where the full metric set is undefined (e.g. an all-zero prediction)."""
    out, notes = {}, []
    for c, d in enumerate(data.domains):
        for name, fn in (("pk_dex", physics.spectrum_log_error), ("one_minus_r", physics.correlation_error),
                         ("mass_dex", lambda p, t: np.abs(physics.mass_log_error(p, t)))):  # fmt: skip
            try:
                v = float(np.mean(fn(pred[:, c], data.target[:, c])))
                out[f"{d}/{name}"] = Interval(v, float("nan"), float("nan"), 0.68)
            except ValueError as err:
                notes.append(f"{d}/{name}: {err}")
    return out, notes


def score_prediction(
    data: ReportData, pred: np.ndarray, n_boot: int = 200, normalised: bool = False
) -> Scored:
    """Scores of one prediction ``(N, C, H, W)`` of ``data``'s targets, with bootstrap intervals."""
    shape = tuple(data.target.shape[-2:])
    domains = dict(zip(data.domains, zip(data.kinds, data.units, strict=True), strict=True))
    p, t = torch.as_tensor(pred), torch.as_tensor(data.target)
    pn = tn = None
    if normalised and data.normalised_prediction is not None and data.normalised_target is not None:
        pn, tn = torch.as_tensor(data.normalised_prediction), torch.as_tensor(data.normalised_target)

    def update(m: PhysicsMetrics, idx: np.ndarray) -> None:
        m.update(p[idx], t[idx], None if pn is None else pn[idx], None if tn is None else tn[idx])

    try:
        return Scored(bootstrap_scores(lambda: PhysicsMetrics(shape, domains), update, data.galaxy, n_boot))
    except ValueError as err:
        scores, notes = _fallback(data, pred)
        return Scored(scores, "; ".join([f"some scores are undefined: {err}", *notes]))


def score_all(data: ReportData, n_boot: int = 200) -> dict[str, Scored]:
    """Scores with bootstrap intervals of the model and of every reference."""
    n = len(data.source)
    if n == 0:
        raise ValueError("report: no maps to report on")
    for name, pred in data.predictions().items():
        if pred.shape != data.target.shape:
            raise ValueError(f"report: {name} has shape {pred.shape}, the targets {data.target.shape}")
        if not np.isfinite(pred).all():
            raise ValueError(f"report: {name} contains NaN/Inf")
    return {
        name: score_prediction(data, pred, n_boot, name == "model")
        for name, pred in data.predictions().items()
    }


def spectral_curves(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Summed spectra of maps ``(N, H, W)`` in pixel units: ``k_over_kf``, ``p_pred``, ``p_true``,
    ``transfer`` = sqrt(ΣP_pred/ΣP_true) and ``r`` = ΣP_×/sqrt(ΣP_pred ΣP_true) (NaN in bins
    without power)."""
    cs = physics.cross_power(pred, true, 1.0)
    sp, st, sc = cs.power_a.sum(0), cs.power_b.sum(0), cs.cross.sum(0)
    return {"k_over_kf": physics.mode_bins(true.shape)[0], "p_pred": sp, "p_true": st,
            "transfer": np.sqrt(physics.guarded_ratio(sp, st, np.nan)),
            "r": physics.correlation_from_power(sc, sp, st, empty=np.nan)}  # fmt: skip
