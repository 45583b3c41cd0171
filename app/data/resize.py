"""Resize maps by integer factors without losing mass.

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

__all__ = ["pool_factor", "pool_map", "pool_to"]


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
