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
from physics.distributions import _paired_distance
from physics.profiles import _enclosed, _radii, _radius_at_fraction
from physics.spectra import cross_power, mode_bins

__all__ = [
    "POWER_RATIO_FLOOR",
    "correlation_error",
    "mass_log_error",
    "profile_error_dex",
    "r50_error",
    "r50_log_error",
    "relative_mass_error",
    "spectrum_log_error",
    "w1_dex",
]

POWER_RATIO_FLOOR = 1e-10  # |log10 P_pred/P_true| is capped at 10 dex per bin


def _pair(pred: Any, true: Any) -> tuple[torch.Tensor, torch.Tensor, Boundary]:
    p, boundary = as_map(pred, "pred")
    t, _ = as_map(true, "true")
    check_same_shape(p, t, "pred", "true")
    return p, t, Boundary(boundary.kind, boundary.device)


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
    ``POWER_RATIO_FLOOR``. ``k_range`` in units of ``k_F``; upper default ``k_Nyq/2``.
    """
    p, t, boundary = _pair(pred, true)
    pp, pt, _ = _spectra(p, t, k_range)
    has = pt > 0
    ratio = torch.clamp(pp / torch.where(has, pt, 1.0), min=POWER_RATIO_FLOOR)
    err = (torch.abs(torch.log10(ratio)) * has).sum(-1) / has.sum(-1)
    return give_back(err, boundary)


def correlation_error(pred: Any, true: Any, *, k_range: tuple[float, float | None] = (3.0, None)) -> Any:
    """Mean over bins in ``k_range`` of ``1 − r(k)`` (0 perfect, 1 uncorrelated, 2 anti), ``(...,)``."""
    p, t, boundary = _pair(pred, true)
    pp, pt, pc = _spectra(p, t, k_range)
    denom = torch.sqrt(pp * pt)
    r = torch.where(denom > 0, pc / torch.where(denom > 0, denom, 1.0), 0.0)
    has = pt > 0
    err = ((1 - r) * has).sum(-1) / has.sum(-1)
    return give_back(err, boundary)


def relative_mass_error(pred: Any, true: Any) -> Any:
    """Signed relative total-mass error ``M_pred / M_true − 1``, ``(...,)``.

    Raises:
        ValueError: a true map with non-positive total.
    """
    p, t, boundary = _pair(pred, true)
    return give_back(_mass_ratio(p, t, "relative error") - 1, boundary)


def _mass_ratio(p: torch.Tensor, t: torch.Tensor, what: str) -> torch.Tensor:
    """``M_pred / M_true`` per map; ValueError naming ``what`` for a non-positive true total."""
    mt = t.sum(dim=(-2, -1))
    if bool((mt <= 0).any()):
        raise ValueError(f"true has non-positive total mass: the {what} is undefined")
    return p.sum(dim=(-2, -1)) / mt


def _log_ratio(ratio: torch.Tensor) -> torch.Tensor:
    """``log10`` of a non-negative ratio, floored at ``POWER_RATIO_FLOOR`` (−10 dex)."""
    return torch.log10(torch.clamp(ratio, min=POWER_RATIO_FLOOR))


def mass_log_error(pred: Any, true: Any) -> Any:
    """Signed total-mass error ``log10 M_pred / M_true`` [dex], ``(...,)``.

    Symmetric: ``k × truth`` and ``truth / k`` score ``±log10 k``. A prediction with
    non-positive total scores −10 dex (the ratio is floored at ``POWER_RATIO_FLOOR``).

    Raises:
        ValueError: a true map with non-positive total.
    """
    p, t, boundary = _pair(pred, true)
    return give_back(_log_ratio(_mass_ratio(p, t, "mass error")), boundary)


def profile_error_dex(pred: Any, true: Any, *, floor: float = 1e-3, center: str = "image") -> Any:
    """Mean ``|log10 Σ_pred/Σ_true|`` [dex] over one-pixel annuli where ``Σ_true > floor·max Σ_true``.

    Both profiles are taken about the same centre (the truth's, for ``"com"``/``"peak"``).
    """
    p, t, boundary = _pair(pred, true)
    if bool((t < 0).any()) or bool((p < 0).any()):
        raise ValueError("pred and true must be non-negative for a profile error in dex")
    from physics.profiles import radial_profile

    c = None
    if center != "image":
        from physics.profiles import find_center

        c = find_center(t, 1.0, center=center)
    prof_t = radial_profile(t, 1.0, center=c if c is not None else "image").value
    prof_p = radial_profile(p, 1.0, center=c if c is not None else "image").value
    top = torch.nan_to_num(prof_t, nan=0.0).amax(dim=-1, keepdim=True)
    if bool((top <= 0).any()):
        raise ValueError("true has an all-zero profile: the profile error is undefined")
    use = torch.nan_to_num(prof_t, nan=0.0) > floor * top
    ratio = torch.clamp(torch.nan_to_num(prof_p, nan=0.0), min=0.0) / torch.where(use, prof_t, 1.0)
    dex = torch.abs(torch.log10(torch.clamp(ratio, min=POWER_RATIO_FLOOR)))
    return give_back((dex * use).sum(-1) / use.sum(-1), boundary)


def _r50_ratio(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``R50_pred / R50_true`` about the map centre; 0 for an all-zero prediction."""
    if bool((t < 0).any()) or bool((p < 0).any()):
        raise ValueError("pred and true must be non-negative for R50")
    r = _radii(t, torch.zeros(*t.shape[:-2], 2, dtype=torch.float64, device=t.device))
    r_ap = torch.full(t.shape[:-2], min(t.shape[-2:]) / 2, dtype=torch.float64, device=t.device)
    half = torch.tensor([0.5], dtype=torch.float64, device=t.device)
    r50_t = _radius_at_fraction(t, r, r_ap, half)[..., 0]
    empty = _enclosed(p, r, r_ap[..., None])[..., 0] <= 0
    r50_p = _radius_at_fraction(torch.where(empty[..., None, None], t, p), r, r_ap, half)[..., 0]
    return torch.where(empty, 0.0, r50_p) / r50_t


def r50_error(pred: Any, true: Any) -> Any:
    """Relative half-mass-radius error ``R50_pred / R50_true − 1`` about the map centre.

    An all-zero prediction scores ``-1`` (its R50 is taken as 0).
    """
    p, t, boundary = _pair(pred, true)
    return give_back(_r50_ratio(p, t) - 1, boundary)


def r50_log_error(pred: Any, true: Any) -> Any:
    """Signed half-mass-radius error ``log10 R50_pred / R50_true`` [dex] about the map centre.

    An all-zero prediction scores −10 dex (its R50 is taken as 0; the ratio is floored).
    """
    p, t, boundary = _pair(pred, true)
    return give_back(_log_ratio(_r50_ratio(p, t)), boundary)


def w1_dex(pred: Any, true: Any) -> Any:
    """Per-map Wasserstein-1 distance between ``log10`` pixel distributions [dex], ``(...,)``.

    Raises:
        ValueError: a map of ``pred`` or ``true`` with no positive pixel.
    """
    return _paired_distance(pred, true, True, True, "w1", ("pred", "true"))
