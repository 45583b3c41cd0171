"""Bin-level arithmetic shared by every spectral statistic and score.

One definition each of the guarded division, the floored log ratio (``POWER_RATIO_FLOOR``)
and the cross-correlation coefficient ``r = P_× / sqrt(P_a P_b)``. The functions work on
binned values of any shape, e.g. ``(..., n_bins)`` spectra; inputs broadcast against each
other. Torch tensors stay torch (same device and dtype); numpy arrays and scalars come back
as numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["POWER_RATIO_FLOOR", "correlation_from_power", "guarded_ratio", "log_power_ratio"]

#: Floor of every ratio taken under a log10: ``|log10 P_pred/P_true|`` is capped at 10 dex.
POWER_RATIO_FLOOR = 1e-10


def _tensors(*xs: Any) -> tuple[list[torch.Tensor], bool]:
    """``xs`` as tensors (numpy and scalars on the first tensor's device), and whether the
    caller gave numpy (no tensor among ``xs``)."""
    devices = [x.device for x in xs if isinstance(x, torch.Tensor)]
    device = devices[0] if devices else torch.device("cpu")
    out = [
        x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
        for x in xs
    ]
    return out, not devices


def _back(t: torch.Tensor, as_numpy: bool) -> Any:
    if not as_numpy:
        return t
    arr = t.numpy()
    return arr[()] if arr.ndim == 0 else arr


def _guarded(num: torch.Tensor, den: torch.Tensor, fill: float) -> torch.Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), fill)


def guarded_ratio(num: Any, den: Any, fill: float) -> Any:
    """``num / den`` where ``den > 0``, ``fill`` elsewhere (no division by zero is evaluated).

    Args:
        num, den: broadcastable arrays or tensors, e.g. ``(..., n_bins)`` binned power
            [any units; the result is in ``[num]/[den]``]. A NaN ``den`` counts as empty.
        fill: value where ``den`` is not positive (NaN for "undefined", 0 for "nothing").

    Returns:
        The broadcast shape, in the input's dtype (torch) or float64 (numpy).
    """
    (n, d), as_numpy = _tensors(num, den)
    return _back(_guarded(n, d, fill), as_numpy)


def log_power_ratio(p_pred: Any, p_true: Any) -> Any:
    """``log10 max(P_pred / P_true, POWER_RATIO_FLOOR)`` [dex]; NaN where ``P_true <= 0``.

    The floored log ratio behind every dex score (spectra, masses, profiles, radii):
    a prediction with no power (or mass) scores −10 dex instead of −inf.

    Args:
        p_pred, p_true: broadcastable non-negative quantities in the same unit, e.g.
            ``(..., n_bins)`` spectra in ``[map]²·kpc²`` or ``(...,)`` masses.

    Returns:
        The broadcast shape in dex; NaN marks bins where the truth is empty, which
        callers drop (``torch.where(p_true > 0, ...)``) before averaging.
    """
    (pp, pt), as_numpy = _tensors(p_pred, p_true)
    ratio = _guarded(pp, pt, math.nan)
    return _back(torch.log10(torch.clamp(ratio, min=POWER_RATIO_FLOOR)), as_numpy)


def correlation_from_power(p_cross: Any, p_a: Any, p_b: Any, empty: float = math.nan) -> Any:
    """Cross-correlation coefficient ``r = P_× / sqrt(P_a P_b)`` per bin, in [-1, 1].

    Args:
        p_cross: cross power ``(..., n_bins)`` in ``[a]·[b]·kpc²``.
        p_a, p_b: auto powers of the two maps, broadcastable to ``p_cross``, in
            ``[a]²·kpc²`` and ``[b]²·kpc²``.
        empty: value of bins where either map has no power (NaN: undefined; the scores
            use 0, "uncorrelated", so that an all-zero prediction scores ``1 − r = 1``).

    Returns:
        Dimensionless ``r`` of the broadcast shape.
    """
    (px, pa, pb), as_numpy = _tensors(p_cross, p_a, p_b)
    return _back(_guarded(px, torch.sqrt(pa * pb), empty), as_numpy)
