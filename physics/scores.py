"""Paired scores: compare a prediction with the truth, one scalar per map pair.

These are what the trainer monitors. All are ratios, so the pixel scale cancels and
none is needed; the k range is given in units of the fundamental mode ``k_F``
(default ``[3 k_F, k_Nyq/2]``), which also lets maps of different physical pixel scale
be compared bin by bin. Lower is better for every score; a perfect prediction scores 0.
An all-zero *truth* raises (nothing to compare against); an all-zero *prediction* is
scored as maximally wrong rather than raising, so a collapsed generator cannot crash a
validation loop.
"""

from __future__ import annotations

from typing import Any

import torch

from physics._arrays import Boundary, as_map, check_same_shape, give_back
from physics._kernels import enclosed, paired_distance, pixel_radii, radius_at_fraction
from physics.binned import correlation_from_power, log_power_ratio
from physics.fourier import mode_bins
from physics.profiles import find_center, radial_profile
from physics.spectra import cross_power

__all__ = [
    "correlation_error",
    "mass_log_error",
    "profile_error_dex",
    "r50_error",
    "r50_log_error",
    "relative_mass_error",
    "spectrum_log_error",
    "w1_dex",
]

def _pair(pred: Any, true: Any) -> tuple[torch.Tensor, torch.Tensor, Boundary]:
    p, boundary = as_map(pred, "pred")
    t, _ = as_map(true, "true")
    check_same_shape(p, t, "pred", "true")
    return p, t, Boundary(boundary.library, boundary.device)


def _spectra(p: torch.Tensor, t: torch.Tensor, k_range: tuple[float, float | None]):
    """Binned P_pred, P_true, P_cross ``(..., n_used)`` over ``k_range`` (units of k_F; pixel units)."""
    height, width = p.shape[-2:]
    cs = cross_power(p, t, 1.0)
    k_over_kf = torch.as_tensor(mode_bins((height, width))[0], device=p.device)
    lo, hi = k_range
    hi = min(height, width) / 4 if hi is None else hi
    use = (k_over_kf >= lo) & (k_over_kf <= hi)
    if not bool(use.any()):
        raise ValueError(f"k_range {k_range} (in units of k_F) selects no bins for {height}x{width} maps")
    pp, pt, pc = cs.power_a[..., use], cs.power_b[..., use], cs.cross[..., use]
    if bool((pt.amax(dim=-1) <= 0).any()):
        raise ValueError("true has no fluctuation power in k_range (all-zero or constant map)")
    return pp, pt, pc


def spectrum_log_error(pred: Any, true: Any, *, k_range: tuple[float, float | None] = (3.0, None)) -> Any:
    """Mean over bins in ``k_range`` of ``|log10 P_pred/P_true|`` [dex], ``(...,)``.

    Bins where the truth has no power are skipped; the ratio is floored at
    ``physics.binned.POWER_RATIO_FLOOR``. ``k_range`` in units of ``k_F``; upper default ``k_Nyq/2``.
    """
    p, t, boundary = _pair(pred, true)
    pp, pt, _ = _spectra(p, t, k_range)
    has = pt > 0
    err = torch.where(has, torch.abs(log_power_ratio(pp, pt)), 0.0).sum(-1) / has.sum(-1)
    return give_back(err, boundary)


def correlation_error(pred: Any, true: Any, *, k_range: tuple[float, float | None] = (3.0, None)) -> Any:
    """Mean over bins in ``k_range`` of ``1 − r(k)`` (0 perfect, 1 uncorrelated, 2 anti), ``(...,)``."""
    p, t, boundary = _pair(pred, true)
    pp, pt, pc = _spectra(p, t, k_range)
    r = correlation_from_power(pc, pp, pt, empty=0.0)  # no power in pred: uncorrelated
    has = pt > 0
    err = ((1 - r) * has).sum(-1) / has.sum(-1)
    return give_back(err, boundary)


def relative_mass_error(pred: Any, true: Any) -> Any:
    """Signed relative total-mass error ``M_pred / M_true − 1``, ``(...,)``.

    Raises:
        ValueError: a true map with non-positive total.
    """
    p, t, boundary = _pair(pred, true)
    mp, mt = _masses(p, t, "relative error")
    return give_back(mp / mt - 1, boundary)


def _masses(p: torch.Tensor, t: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M_pred, M_true)`` per map [map·pixel²]; ValueError naming ``what`` for a non-positive true total."""
    mt = t.sum(dim=(-2, -1))
    if bool((mt <= 0).any()):
        raise ValueError(f"true has non-positive total mass: the {what} is undefined")
    return p.sum(dim=(-2, -1)), mt


def mass_log_error(pred: Any, true: Any) -> Any:
    """Signed total-mass error ``log10 M_pred / M_true`` [dex], ``(...,)``.

    Symmetric: ``k × truth`` and ``truth / k`` score ``±log10 k``. A prediction with
    non-positive total scores −10 dex (the ratio is floored at ``physics.binned.POWER_RATIO_FLOOR``).

    Raises:
        ValueError: a true map with non-positive total.
    """
    p, t, boundary = _pair(pred, true)
    return give_back(log_power_ratio(*_masses(p, t, "mass error")), boundary)


def profile_error_dex(pred: Any, true: Any, *, floor: float = 1e-3, center: str = "image") -> Any:
    """Mean ``|log10 Σ_pred/Σ_true|`` [dex] over one-pixel annuli where ``Σ_true > floor·max Σ_true``.

    Both profiles are taken about the same centre (the truth's, for ``"com"``/``"peak"``).
    """
    p, t, boundary = _pair(pred, true)
    if bool((t < 0).any()) or bool((p < 0).any()):
        raise ValueError("pred and true must be non-negative for a profile error in dex")
    c = None
    if center != "image":
        c = find_center(t, 1.0, center=center)
    prof_t = radial_profile(t, 1.0, center=c if c is not None else "image").value
    prof_p = radial_profile(p, 1.0, center=c if c is not None else "image").value
    top = torch.nan_to_num(prof_t, nan=0.0).amax(dim=-1, keepdim=True)
    if bool((top <= 0).any()):
        raise ValueError("true has an all-zero profile: the profile error is undefined")
    use = torch.nan_to_num(prof_t, nan=0.0) > floor * top
    pred_sigma = torch.clamp(torch.nan_to_num(prof_p, nan=0.0), min=0.0)
    dex = torch.where(use, torch.abs(log_power_ratio(pred_sigma, prof_t)), 0.0)
    return give_back(dex.sum(-1) / use.sum(-1), boundary)


def _r50s(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R50_pred, R50_true)`` [pixels] about the map centre; ``R50_pred`` is 0 for an all-zero prediction."""
    if bool((t < 0).any()) or bool((p < 0).any()):
        raise ValueError("pred and true must be non-negative for R50")
    r = pixel_radii(t, torch.zeros(*t.shape[:-2], 2, dtype=torch.float64, device=t.device))
    r_ap = torch.full(t.shape[:-2], min(t.shape[-2:]) / 2, dtype=torch.float64, device=t.device)
    half = torch.tensor([0.5], dtype=torch.float64, device=t.device)
    r50_t = radius_at_fraction(t, r, r_ap, half)[..., 0]
    empty = enclosed(p, r, r_ap[..., None])[..., 0] <= 0
    r50_p = radius_at_fraction(torch.where(empty[..., None, None], t, p), r, r_ap, half)[..., 0]
    return torch.where(empty, 0.0, r50_p), r50_t


def r50_error(pred: Any, true: Any) -> Any:
    """Relative half-mass-radius error ``R50_pred / R50_true − 1`` about the map centre, ``(...,)``.

    Dimensionless; maps ``(..., H, W)`` must be non-negative.

    An all-zero prediction scores ``-1`` (its R50 is taken as 0).
    """
    p, t, boundary = _pair(pred, true)
    r50_p, r50_t = _r50s(p, t)
    return give_back(r50_p / r50_t - 1, boundary)


def r50_log_error(pred: Any, true: Any) -> Any:
    """Signed half-mass-radius error ``log10 R50_pred / R50_true`` [dex] about the map centre, ``(...,)``.

    An all-zero prediction scores −10 dex (its R50 is taken as 0; the ratio is floored).
    """
    p, t, boundary = _pair(pred, true)
    return give_back(log_power_ratio(*_r50s(p, t)), boundary)


def w1_dex(pred: Any, true: Any) -> Any:
    """Per-map Wasserstein-1 distance between ``log10`` pixel distributions [dex], ``(...,)``.

    Raises:
        ValueError: a map of ``pred`` or ``true`` with no positive pixel.
    """
    return paired_distance(pred, true, True, True, "w1", ("pred", "true"))
