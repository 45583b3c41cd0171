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

import math
from typing import Any

import torch

from physics._arrays import Boundary, as_map, check_same_shape, give_back
from physics._finite import map_exponent, require_finite, times_pow2
from physics._kernels import paired_distance, radius_at_fraction
from physics._power import binned, prepare
from physics.binned import POWER_RATIO_FLOOR, correlation_from_power, guarded_ratio, log_power_ratio
from physics.profiles import find_center, radial_profile

__all__ = [
    "correlation_error",
    "mass_log_error",
    "profile_error_dex",
    "r50_error",
    "r50_errors",
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


_LOG10_2 = math.log10(2.0)
_LOG_FLOOR = math.log10(POWER_RATIO_FLOOR)


def _log_ratio(num: torch.Tensor, den: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``log10 max(num/den · 2^shift, POWER_RATIO_FLOOR)`` [dex], taken in logs (no overflow).

    ``num``, ``den`` are mantissas (e.g. of scaled spectra or masses) and ``shift`` the
    int64 exponent of their ratio; NaN where ``den <= 0``, the floor where ``num <= 0``.
    """
    ratio = guarded_ratio(num, den, math.nan).clamp(min=0.0)  # NaN stays NaN; <= 0 goes to the floor
    return torch.clamp(torch.log10(ratio) + shift.to(torch.float64) * _LOG10_2, min=_LOG_FLOOR)


def _k_range(k_range: Any) -> tuple[float, float | None]:
    try:
        lo, hi = k_range
        lo = float(lo)
        hi = None if hi is None else float(hi)
    except (TypeError, ValueError):
        raise ValueError(
            f"k_range must be (lo, hi) in units of k_F (hi may be None), got {k_range!r}"
        ) from None
    if not math.isfinite(lo) or lo < 0 or (hi is not None and not (math.isfinite(hi) and hi > lo)):
        raise ValueError(f"k_range must satisfy 0 <= lo < hi (finite, units of k_F), got {k_range!r}")
    return lo, hi


def _spectra(p: torch.Tensor, t: torch.Tensor, k_range: Any) -> tuple[torch.Tensor, ...]:
    """Mantissas of the binned P_pred, P_true, P_cross ``(..., n_used)`` over ``k_range`` (units of
    k_F), and the amplitude exponent ``(..., 1)`` of pred over true: ``P_pred/P_true`` is the
    mantissa ratio times ``4^shift``, ``P_cross/P_true`` times ``2^shift``."""
    lo, hi = _k_range(k_range)
    height, width = p.shape[-2:]
    prep = prepare([(p, "pred"), (t, "true")], 1.0, None, None, 0.5, True, None)
    k_over_kf = prep.modes.k_mean
    hi = min(height, width) / 4 if hi is None else hi
    use = (k_over_kf >= lo) & (k_over_kf <= hi)
    if not bool(use.any()):
        raise ValueError(f"k_range {k_range} (in units of k_F) selects no bins for {height}x{width} maps")
    pp, pt, pc = (binned(prep, i, j)[..., use] for i, j in ((0, 0), (1, 1), (0, 1)))
    if bool((pt.amax(dim=-1) <= 0).any()):
        raise ValueError("true has no fluctuation power in k_range (all-zero or constant map)")
    return pp, pt, pc, prep.exponents[0] - prep.exponents[1]


def spectrum_log_error(pred: Any, true: Any, *, k_range: tuple[float, float | None] = (3.0, None)) -> Any:
    """Mean over bins in ``k_range`` of ``|log10 P_pred/P_true|`` [dex], ``(...,)``.

    ``pred`` and ``true`` are maps ``(..., H, W)`` of one shape. Bins where the truth has
    no power are skipped; the ratio is floored at ``physics.binned.POWER_RATIO_FLOOR``.
    ``k_range`` in units of ``k_F``; upper default ``k_Nyq/2``. The ratio is taken on
    power-of-two-scaled maps and in logs, so huge or tiny maps score finitely.
    """
    p, t, boundary = _pair(pred, true)
    pp, pt, _, shift = _spectra(p, t, k_range)
    has = pt > 0
    err = torch.where(has, torch.abs(_log_ratio(pp, pt, 2 * shift)), 0.0).sum(-1) / has.sum(-1)
    return give_back(err, boundary)


def correlation_error(pred: Any, true: Any, *, k_range: tuple[float, float | None] = (3.0, None)) -> Any:
    """Mean over bins in ``k_range`` of ``1 − r(k)`` (0 perfect, 1 uncorrelated, 2 anti), ``(...,)``.

    Maps ``(..., H, W)`` of one shape; ``r`` is scale-free, so the scaling of each map cancels.
    """
    p, t, boundary = _pair(pred, true)
    pp, pt, pc, _ = _spectra(p, t, k_range)
    r = correlation_from_power(pc, pp, pt, empty=0.0)  # no power in pred: uncorrelated
    has = pt > 0
    err = ((1 - r) * has).sum(-1) / has.sum(-1)
    return give_back(err, boundary)


def _masses(p: torch.Tensor, t: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mantissas of ``(M_pred, M_true)`` per map and the exponent of their ratio ``M_pred/M_true``.

    The truth must be a mass-like map: ValueError naming ``true`` (and ``what``) for a
    non-positive total or negative pixels. The prediction is scored as it is (signed).
    """
    ep, et = map_exponent(p), map_exponent(t)
    mt = times_pow2(t, -et[..., None, None]).sum(dim=(-2, -1))
    if bool((mt <= 0).any()):
        raise ValueError(f"true has non-positive total mass: the {what} is undefined")
    n_neg = int((t < 0).sum())
    if n_neg:
        raise ValueError(f"true has {n_neg} negative pixel(s): the {what} needs a mass-like truth (>= 0)")
    return times_pow2(p, -ep[..., None, None]).sum(dim=(-2, -1)), mt, ep - et


def relative_mass_error(pred: Any, true: Any) -> Any:
    """Signed relative total-mass error ``M_pred / M_true − 1``, ``(...,)``, dimensionless.

    ``pred`` and ``true`` are maps ``(..., H, W)`` of one shape. The truth must be
    non-negative with a positive total; the prediction is scored as it is, negative
    pixels included (a generator's output is judged, not refused), so it can score below −1.

    Raises:
        ValueError: a true map with negative pixels or a non-positive total, or a ratio
            beyond float64.
    """
    p, t, boundary = _pair(pred, true)
    mp, mt, shift = _masses(p, t, "relative error")
    ratio = times_pow2(mp / mt, shift)
    require_finite(ratio, "M_pred/M_true of pred and true", "pred or true")
    return give_back(ratio - 1, boundary)


def mass_log_error(pred: Any, true: Any) -> Any:
    """Signed total-mass error ``log10 M_pred / M_true`` [dex], ``(...,)``.

    Maps ``(..., H, W)`` of one shape. Symmetric: ``k × truth`` and ``truth / k`` score
    ``±log10 k``. A prediction with non-positive total scores −10 dex (the ratio is floored
    at ``physics.binned.POWER_RATIO_FLOOR``); taken in logs, so it is finite for any maps.

    Raises:
        ValueError: a true map with negative pixels or a non-positive total.
    """
    p, t, boundary = _pair(pred, true)
    mp, mt, shift = _masses(p, t, "mass error")
    return give_back(_log_ratio(mp, mt, shift), boundary)


def profile_error_dex(pred: Any, true: Any, *, floor: float = 1e-3, center: str = "image") -> Any:
    """Mean ``|log10 Σ_pred/Σ_true|`` [dex] over one-pixel annuli where ``Σ_true > floor·max Σ_true``.

    Both profiles are taken about the same centre (the truth's, for ``"com"``/``"peak"``).
    Maps ``(..., H, W)`` of one shape, non-negative, give ``(...,)``; ``floor`` in (0, 1).
    Each map is scaled by a power of two and the ratio taken in logs, so any finite maps
    score finitely.

    Raises:
        ValueError: negative pixels, a bad ``floor``, or a true map with an all-zero profile.
    """
    p, t, boundary = _pair(pred, true)
    if bool((t < 0).any()) or bool((p < 0).any()):
        raise ValueError("pred and true must be non-negative for a profile error in dex")
    if not (isinstance(floor, int | float) and 0 < floor < 1):
        raise ValueError(f"floor must be in (0, 1), got {floor!r}")
    c = None
    if center != "image":
        c = find_center(t, 1.0, center=center)
    ep, et = map_exponent(p)[..., None], map_exponent(t)[..., None]
    prof_t = radial_profile(times_pow2(t, -et[..., None]), 1.0, center=c if c is not None else "image").value
    prof_p = radial_profile(times_pow2(p, -ep[..., None]), 1.0, center=c if c is not None else "image").value
    top = torch.nan_to_num(prof_t, nan=0.0).amax(dim=-1, keepdim=True)
    if bool((top <= 0).any()):
        raise ValueError("true has an all-zero profile: the profile error is undefined")
    use = torch.nan_to_num(prof_t, nan=0.0) > floor * top
    pred_sigma = torch.clamp(torch.nan_to_num(prof_p, nan=0.0), min=0.0)
    dex = torch.where(use, torch.abs(_log_ratio(pred_sigma, prof_t, ep - et)), 0.0)
    return give_back(dex.sum(-1) / use.sum(-1), boundary)


def _r50s(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R50_pred, R50_true)`` [pixels] about the map centre, from one root search over both;
    ``R50_pred`` is 0 for a prediction with no mass in the aperture."""
    if bool((t < 0).any()) or bool((p < 0).any()):
        raise ValueError("pred and true must be non-negative for R50")
    c = torch.zeros(*t.shape[:-2], 2, dtype=torch.float64, device=t.device)
    r_ap = torch.full(t.shape[:-2], min(t.shape[-2:]) / 2, dtype=torch.float64, device=t.device)
    half = torch.tensor([0.5], dtype=torch.float64, device=t.device)
    r50_p, r50_t = radius_at_fraction(torch.stack([p, t]), c, r_ap, half, empty_ok=True)[..., 0]
    if bool(r50_t.isnan().any()):
        raise ValueError("true has no mass inside the aperture: its R50 is undefined")
    return torch.nan_to_num(r50_p, nan=0.0), r50_t


def r50_errors(pred: Any, true: Any) -> tuple[Any, Any]:
    """Both half-mass-radius errors about the map centre from one pair of R50s, ``(...,)`` each:
    ``(R50_pred / R50_true − 1, log10 R50_pred / R50_true [dex])``.

    Maps ``(..., H, W)`` must be non-negative. An all-zero prediction scores ``-1`` and
    −10 dex (its R50 is taken as 0; the ratio in dex is floored). One R50 search per map
    (prediction and truth) serves both, which is what a validation loop that reports both
    should call.
    """
    p, t, boundary = _pair(pred, true)
    r50_p, r50_t = _r50s(p, t)
    return give_back(r50_p / r50_t - 1, boundary), give_back(log_power_ratio(r50_p, r50_t), boundary)


def r50_error(pred: Any, true: Any) -> Any:
    """Relative half-mass-radius error ``R50_pred / R50_true − 1`` about the map centre, ``(...,)``.

    Dimensionless; maps ``(..., H, W)`` must be non-negative.

    An all-zero prediction scores ``-1`` (its R50 is taken as 0).
    """
    return r50_errors(pred, true)[0]


def r50_log_error(pred: Any, true: Any) -> Any:
    """Signed half-mass-radius error ``log10 R50_pred / R50_true`` [dex] about the map centre, ``(...,)``.

    An all-zero prediction scores −10 dex (its R50 is taken as 0; the ratio is floored).
    """
    return r50_errors(pred, true)[1]


def w1_dex(pred: Any, true: Any) -> Any:
    """Per-map Wasserstein-1 distance between ``log10`` pixel distributions [dex], ``(...,)``.

    ``pred`` and ``true`` are non-negative maps ``(..., H, W)`` of one shape (a prediction
    and its truth, pixel for pixel; :func:`physics.wasserstein_1` compares sets of any size).

    Raises:
        ValueError: different shapes, negative pixels, or a map of ``pred`` or ``true``
            with no positive pixel.
    """
    return paired_distance(pred, true, True, True, "w1", ("pred", "true"), same_shape=True)
