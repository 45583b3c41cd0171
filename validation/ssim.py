"""Structural similarity (SSIM) of normalised maps, with the Gaussian window as two matrix products.

The index is Wang et al. (2004)'s, with torchmetrics' conventions (an 11-pixel Gaussian window
of σ = 1.5 pixels, the maps reflect-padded by 5 pixels so the index map has the input's size,
``c1 = (0.01 L)²``, ``c2 = (0.03 L)²`` for a data range ``L``, variances clamped at 0, the mean
over pixels then over maps). The window is separable, so blurring an ``H × W`` map is
``A_H X A_Wᵀ`` with ``A_n`` the ``n × n`` matrix of the 1-D window with the reflection folded
in: two small matrix products instead of a 121-tap convolution (tested equal to torchmetrics'
``StructuralSimilarityIndexMeasure`` in ``tests/test_validation_ssim.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torchmetrics import Metric

__all__ = ["StructuralSimilarity", "ssim_per_map"]


def blur_matrix(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(n, n)`` matrix ``A`` with ``(A x)_i = Σ_k g_k x_{reflect(i + k − r)}``: the normalised 1-D
    Gaussian ``g`` of ``sigma`` [pixels] and half-width ``r = int(3.5 σ + 0.5)``, reflected at
    the edges without repeating the edge pixel (``F.pad(..., mode="reflect")``)."""
    half = int(3.5 * sigma + 0.5)
    if n <= half:
        raise ValueError(f"SSIM: a map side of {n} pixels is too small for the {2 * half + 1}-pixel window; need > {half}")
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (offsets / sigma) ** 2)
    g = g / g.sum()
    rows = torch.arange(n)[:, None]
    cols = rows + torch.arange(-half, half + 1)[None, :]
    cols = torch.where(cols < 0, -cols, cols)
    cols = torch.where(cols > n - 1, 2 * (n - 1) - cols, cols)
    a = torch.zeros(n, n, dtype=torch.float64)
    a.index_put_((rows.expand_as(cols), cols), g.expand_as(cols), accumulate=True)
    return a.to(dtype=dtype, device=device)


def ssim_per_map(
    pred: torch.Tensor, true: torch.Tensor, data_range: float, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03
) -> torch.Tensor:
    """Mean SSIM of each map pair ``(N,)`` for ``pred``, ``true`` ``(N, C, H, W)`` (the mean over the
    ``C`` channels and pixels; dimensionless, 1 for identical maps). ``data_range`` is the
    range ``L`` of the (normalised) values."""
    if pred.shape != true.shape or pred.ndim != 4:
        raise ValueError(f"SSIM: pred and true must be (N, C, H, W) of one shape, got {tuple(pred.shape)}, {tuple(true.shape)}")
    _check_range(data_range)
    height, width = pred.shape[-2:]
    a_h = blur_matrix(height, sigma, pred.dtype, pred.device)
    a_w = blur_matrix(width, sigma, pred.dtype, pred.device)
    stack = torch.stack([pred, true, pred * pred, true * true, pred * true])
    mu_p, mu_t, pp, tt, pt = a_h @ stack @ a_w.T
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_pp, mu_tt, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    var_p = torch.clamp(pp - mu_pp, min=0.0)
    var_t = torch.clamp(tt - mu_tt, min=0.0)
    cov = pt - mu_pt
    index = ((2 * mu_pt + c1) * (2 * cov + c2)) / ((mu_pp + mu_tt + c1) * (var_p + var_t + c2))
    return index.reshape(index.shape[0], -1).mean(-1)


def _check_range(data_range: float) -> None:
    if not (math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"SSIM: data_range must be finite and > 0, got {data_range}")


class StructuralSimilarity(Metric):
    """Mean SSIM over every map pair seen (:func:`ssim_per_map`; higher is better, 1 at best).

    States: the sum of per-map indices and the number of maps (``sum`` over processes)."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, data_range: float, sigma: float = 1.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_range(data_range)
        self.data_range, self.sigma = float(data_range), float(sigma)
        self.add_state("similarity", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("maps", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """Add the maps ``(N, C, H, W)`` (normalised units)."""
        per_map = ssim_per_map(pred.detach(), true.detach(), self.data_range, self.sigma)
        self.similarity += per_map.to(torch.float64).sum()
        self.maps += per_map.numel()

    def compute(self) -> torch.Tensor:
        """The mean index over maps (float64 scalar)."""
        return self.similarity / self.maps
