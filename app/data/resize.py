"""Resize maps without losing mass: by integer factors (training data) or to any grid
(a scientist's own maps, ``area_resample``).

Surface densities are average-pooled, which keeps ``Σ·A_pix`` summed over the map (the
total mass) exactly. Mass-weighted maps (T, |B|) are pooled with the gas surface density
as weight, ``Σ(Σ_gas·T)/Σ Σ_gas`` per block, which is what a coarser projection of the same
particles would give; blocks without gas get 0, as in the source maps. Without a gas map
they are plainly averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from physics import guarded_ratio

__all__ = ["area_resample", "overlap_matrix", "pool_factor", "pool_map", "pool_to"]


def pool_factor(shape: tuple[int, int], size: int, where: str) -> int:
    """The integer factor from ``shape`` down to ``size``; ValueError naming ``where`` otherwise."""
    h, w = shape
    if h != w:
        raise ValueError(f"{where}: maps must be square, got {h}x{w}")
    if size < 1 or h % size:
        raise ValueError(f"{where}: cannot resize {h}x{w} to {size}x{size}: {h} is not a multiple of {size}")
    return h // size


def pool_map(x: torch.Tensor, factor: int, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Average-pool ``(H, W)`` by ``factor``; weighted by ``weight`` when given."""
    if factor == 1:
        return x
    if weight is None:
        return F.avg_pool2d(x[None, None], factor)[0, 0]
    num = F.avg_pool2d((x * weight)[None, None], factor)[0, 0]
    den = F.avg_pool2d(weight[None, None], factor)[0, 0]
    return guarded_ratio(num, den, 0.0)


def pool_to(x: torch.Tensor, size: int, mass_weighted: bool, gas: torch.Tensor | None, where: str) -> torch.Tensor:
    """``x`` ``(H, W)`` pooled to ``size``: gas-weighted when ``mass_weighted`` and ``gas`` is given."""
    factor = pool_factor(tuple(x.shape), size, where)
    weight = gas if factor > 1 and mass_weighted and gas is not None else None
    return pool_map(x, factor, weight)


def overlap_matrix(n_in: int, n_out: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(n_out, n_in)``: the fraction of output cell ``i`` covered by input cell ``j``, when both
    grids span the same length (rows sum to 1, so averages and totals per area are kept)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"grid sizes must be >= 1, got {n_in} → {n_out}")
    edges_in = torch.linspace(0.0, 1.0, n_in + 1, dtype=torch.float64)
    edges_out = torch.linspace(0.0, 1.0, n_out + 1, dtype=torch.float64)
    lo = torch.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = torch.minimum(edges_out[1:, None], edges_in[None, 1:])
    return (torch.clamp(hi - lo, min=0.0) * n_out).to(dtype)


def area_resample(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``x`` ``(..., H, W)`` (a density per area, e.g. Msun/kpc²) on a grid of ``shape`` over the
    same field of view: each output pixel is the area-weighted mean of the input pixels it
    overlaps, so the total ``Σ·A_pix`` is kept exactly, up or down, by any factor."""
    h, w = x.shape[-2:]
    wy = overlap_matrix(h, shape[0], x.dtype).to(x.device)
    wx = overlap_matrix(w, shape[1], x.dtype).to(x.device)
    return wy @ x @ wx.T
