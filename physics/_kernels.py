"""Tensor kernels shared by the statistics modules (private to ``physics``).

These work on float64 torch tensors that :func:`physics._arrays.as_map` has already
validated; lengths are in pixels. ``profiles``, ``distributions`` and ``scores`` import
them from here so that no module reaches into another's private names.
"""

from __future__ import annotations

from typing import Any

import torch

from physics._arrays import Boundary, as_map, give_back
from physics.grid import pixel_offsets

__all__ = ["check_log_domain", "enclosed", "paired_distance", "pixel_radii", "radius_at_fraction"]


# ------------------------------------------------------------------- radii and masses


def pixel_radii(t: torch.Tensor, center_px: torch.Tensor) -> torch.Tensor:
    """Pixel-centre distances ``(..., H, W)`` [pixels] of the maps ``t`` ``(..., H, W)``.

    ``center_px`` ``(..., 2)`` is the centre as (row, col) offsets from the map centre
    [pixels].
    """
    rows, cols = pixel_offsets(*t.shape[-2:], t.device)
    dy = rows - center_px[..., 0, None, None]
    dx = cols - center_px[..., 1, None, None]
    return torch.sqrt(dy**2 + dx**2)


def enclosed(t: torch.Tensor, r: torch.Tensor, radius_px: torch.Tensor) -> torch.Tensor:
    """Mass-like sum of ``t`` ``(..., H, W)`` inside ``radius_px`` ``(..., n)`` → ``(..., n)``.

    ``r`` ``(..., H, W)`` are the pixel-centre distances [pixels] (:func:`pixel_radii`); the
    result is in ``[map]·pixel²``. A pixel at centre distance ``r`` counts with weight
    ``clip(R − r + 1/2, 0, 1)``: its content is spread over one pixel in radius, which
    removes the pixel-centre staircase (R50 of a sampled exponential disk to ~3e-4 at
    128², ~5e-5 at 512²).
    """
    w = torch.clamp(radius_px[..., :, None, None] - r[..., None, :, :] + 0.5, 0.0, 1.0)
    return (t[..., None, :, :] * w).sum(dim=(-2, -1))


def radius_at_fraction(
    t: torch.Tensor,
    r: torch.Tensor,
    r_ap: torch.Tensor,
    fractions: torch.Tensor,
    iterations: int = 32,
) -> torch.Tensor:
    """Radius ``(..., F)`` [pixels] enclosing ``fractions`` ``(F,)`` of the mass inside ``r_ap``.

    ``t`` ``(..., H, W)`` non-negative maps, ``r`` their pixel-centre distances [pixels],
    ``r_ap`` ``(...,)`` the aperture radius [pixels]. Bisection on :func:`enclosed`
    (``iterations`` halvings of ``[0, r_ap]``).

    Raises:
        ValueError: a map with no mass inside the aperture.
    """
    total = enclosed(t, r, r_ap[..., None])  # (..., 1)
    if bool((total <= 0).any()):
        raise ValueError("field has no mass inside the aperture")
    target = fractions * total  # (..., F)
    lo = torch.zeros_like(target)
    hi = r_ap[..., None].expand_as(target).clone()
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = enclosed(t, r, mid) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


# ------------------------------------------------------------ pixel distributions


def check_log_domain(t: torch.Tensor, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``t`` has negative pixels (log10 undefined)."""
    n_neg = int((t < 0).sum())
    if n_neg:
        raise ValueError(f"{name} has {n_neg} negative pixel(s); log10 is undefined for them")


def _samples(x: torch.Tensor, log: bool, name: str) -> torch.Tensor:
    """Sorted pixel values of ``x`` (``log10`` of the positive ones when ``log``), 1-D."""
    if log:
        check_log_domain(x, name)
        x = x[x > 0]
        if x.numel() == 0:
            raise ValueError(f"{name} has no positive pixels: a distance in dex is undefined")
        return torch.sort(torch.log10(x)).values
    return torch.sort(x.flatten()).values


def _cdf_gap(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|F_a − F_b| on the merged sample grid, and the grid spacings."""
    grid = torch.sort(torch.cat([a, b])).values
    fa = torch.searchsorted(a, grid[:-1], right=True) / a.numel()
    fb = torch.searchsorted(b, grid[:-1], right=True) / b.numel()
    return torch.abs(fa - fb), torch.diff(grid)


def paired_distance(
    a: Any, b: Any, log: bool, per_map: bool, statistic: str, names: tuple[str, str] = ("a", "b")
) -> Any:
    """Distance between the pixel distributions of ``a`` and ``b`` (maps ``(..., H, W)``).

    ``statistic`` is ``"w1"`` (Wasserstein-1; dex when ``log``, else map units) or
    ``"ks"`` (Kolmogorov–Smirnov, dimensionless). With ``per_map`` one value per map pair
    ``(...,)``, else one value for the pooled sets (a scalar). ``names`` label errors.
    """
    ta, boundary = as_map(a, names[0])
    tb, _ = as_map(b, names[1])
    if per_map:
        if ta.shape[:-2] != tb.shape[:-2]:
            raise ValueError(
                f"per_map needs {names[0]} and {names[1]} with the same batch shape; "
                f"got {tuple(ta.shape)} and {tuple(tb.shape)}"
            )
        pairs = list(zip(ta.reshape(-1, *ta.shape[-2:]), tb.reshape(-1, *tb.shape[-2:]), strict=True))
        batch = ta.shape[:-2]
    else:
        pairs = [(ta, tb)]
        batch = ()
    out = []
    for x, y in pairs:
        gap, dx = _cdf_gap(_samples(x, log, names[0]), _samples(y, log, names[1]))
        out.append((gap * dx).sum() if statistic == "w1" else gap.max())
    result = torch.stack(out).reshape(batch)
    return give_back(result, Boundary(boundary.library, boundary.device))
