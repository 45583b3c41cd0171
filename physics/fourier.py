"""Fourier-plane geometry of 2-D maps: apodisation windows, mode binning, k_F and k_Nyq.

Conventions (see ``docs/physics.md``): ``k = 2π/λ`` in 1/kpc (1/rad for angular pixel
scales); ``k_F = 2π/L`` with ``L`` the longer side; bin ``n`` holds the modes with
``floor(|k|/k_F) = n`` and the DC bin is dropped. Each bin reports the mean ``|k|`` of
its modes and the number of independent (half-plane) modes ``n_modes``. As in Pylians'
``Pk_plane``, every independent mode weighs the same in a bin's means, the
self-conjugate (Nyquist) modes of even sizes included.

The binning of an ``(H, W)`` grid depends only on its pixel dimensions and is cached,
on the CPU only, so the cache never holds accelerator memory; :func:`fourier_modes`
copies it to the device each call asks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from physics._arrays import Boundary, give_back
from physics.grid import resolve_scale

__all__ = [
    "WINDOWS",
    "Modes",
    "bin_average",
    "cpu_modes",
    "fourier_modes",
    "fundamental_frequency",
    "mode_bins",
    "nyquist_frequency",
    "window_2d",
]

WINDOWS = ("none", "hann", "tukey")

# --------------------------------------------------------------------------- windows


def _taper_1d(n: int, alpha: float, device: torch.device) -> torch.Tensor:
    """Symmetric Tukey taper of length ``n`` (``alpha=1`` is Hann, ``0`` is flat)."""
    if n == 1 or alpha <= 0:
        return torch.ones(n, dtype=torch.float64, device=device)
    x = torch.arange(n, dtype=torch.float64, device=device) / (n - 1)
    x = torch.minimum(x, 1.0 - x)  # distance to the nearer edge, in [0, 0.5]
    edge = alpha / 2
    taper = 0.5 * (1 - torch.cos(math.pi * x / edge))
    return torch.where(x < edge, taper, torch.ones_like(x))


def window_2d(
    height: int, width: int, window: str | None, alpha: float = 0.5, device: Any = "cpu"
) -> torch.Tensor | None:
    """Separable 2-D apodisation window ``(H, W)`` float64 (dimensionless), or None for no window.

    Args:
        height, width: map size in pixels.
        window: ``None``/``"none"``, ``"hann"`` or ``"tukey"``.
        alpha: Tukey taper fraction in [0, 1] (ignored for Hann).
        device: torch device of the result.
    """
    if window is None or window == "none":
        return None
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; choose one of {sorted(WINDOWS)} or None")
    if window == "tukey" and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] for the Tukey window, got {alpha}")
    a = 1.0 if window == "hann" else alpha
    device = torch.device(device)
    return _taper_1d(height, a, device)[:, None] * _taper_1d(width, a, device)[None, :]


# ------------------------------------------------------------------------ mode binning


@dataclass(frozen=True)
class Modes:
    """Binning of the rfft half-plane of an ``(H, W)`` map (``H·(W//2+1)`` stored modes).

    Attributes:
        index: ``(H·(W//2+1),)`` long, the bin of each stored mode (``n_bins`` for the
            dropped DC mode).
        weight: ``(H·(W//2+1),)`` float64 weight of each stored mode: 2 per independent
            (half-plane) mode, as in Pylians' ``Pk_plane``: 1 for each member of a conjugate
            pair stored twice on the self-paired columns ``kx = 0`` and ``kx = W/2``, 2
            for the self-conjugate modes and for every other stored mode.
        k_mean: ``(n_bins,)`` mean ``|k|`` of each bin, in units of ``k_F``.
        n_modes: ``(n_bins,)`` independent modes per bin.
        weight_sum: ``(n_bins,)`` summed ``weight`` per bin (``2 · n_modes``).
        n_bins: number of (non-empty, non-DC) bins.
        longer_side: ``max(H, W)`` in pixels (``k_F = 2π / (longer_side · Δ)``).
    """

    index: torch.Tensor
    weight: torch.Tensor
    k_mean: torch.Tensor
    n_modes: torch.Tensor
    weight_sum: torch.Tensor
    n_bins: int
    longer_side: int

    def to(self, device: Any) -> Modes:
        """The same binning with its tensors on ``device``."""
        return Modes(
            index=self.index.to(device),
            weight=self.weight.to(device),
            k_mean=self.k_mean.to(device),
            n_modes=self.n_modes.to(device),
            weight_sum=self.weight_sum.to(device),
            n_bins=self.n_bins,
            longer_side=self.longer_side,
        )


@lru_cache(maxsize=64)
def cpu_modes(height: int, width: int, log_bins: int | None = None) -> Modes:
    """The :class:`Modes` of ``(height, width)`` maps, built and cached on the CPU.

    ``log_bins=None`` gives integer bins ``floor(|k|/k_F)``; ``log_bins=n`` gives ``n``
    log-spaced bins from ``k_F`` to the corner (empty bins dropped). The cache key has no
    device: every cached tensor lives in host memory. Treat the result as read-only.
    """
    cpu = torch.device("cpu")  # explicit, so that a default-device context cannot move the cache
    side = max(height, width)
    fy = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64, device=cpu)
    fx = torch.fft.rfftfreq(width, d=1.0 / width, dtype=torch.float64, device=cpu)
    ky = (fy * (side / height))[:, None]
    kx = (fx * (side / width))[None, :]
    kmag = torch.sqrt(ky**2 + kx**2)  # |k| / k_F, exact integers on the integer circles
    # Columns kx = 0 and kx = W/2 (even W) hold each conjugate pair twice (±ky) and the
    # self-conjugate modes once; every other stored mode stands for itself and its conjugate.
    paired = (fx == 0) | ((width % 2 == 0) & (fx == width // 2))
    self_conj = paired[None, :] & ((fy == 0) | ((height % 2 == 0) & (fy == -(height // 2))))[:, None]
    pair_weight = torch.where(paired, 1.0, 2.0).to(torch.float64)[None, :].expand(height, -1)
    independent = pair_weight / 2 + 0.5 * self_conj
    weight = 2.0 * independent  # Pylians: every independent mode weighs the same, self-conjugate ones too
    is_dc = kmag == 0
    if log_bins is None:
        label = torch.floor(kmag + 1e-9).long()  # 1e-9 guards non-square grids only
    else:
        if log_bins < 1:
            raise ValueError(f"log_bins must be a positive integer, got {log_bins}")
        top = math.log10(float(kmag.max())) + 1e-12
        edges = torch.logspace(0.0, top, log_bins + 1, dtype=torch.float64, device=cpu)
        label = torch.searchsorted(edges, kmag.contiguous(), right=True)
    label = torch.where(is_dc, 0, label).reshape(-1)
    counts = torch.bincount(label, minlength=int(label.max()) + 1)
    occupied = torch.nonzero(counts[1:] > 0).flatten() + 1  # drop the DC label 0
    remap = torch.full((counts.numel(),), occupied.numel(), dtype=torch.long, device=cpu)
    remap[occupied] = torch.arange(occupied.numel(), device=cpu)
    index = remap[label]
    n_bins = occupied.numel()
    w = weight.reshape(-1)

    def bin_sum(v: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_bins + 1, dtype=torch.float64, device=cpu).index_add_(0, index, v)[:n_bins]

    weight_sum = bin_sum(w)
    return Modes(
        index=index,
        weight=w.contiguous(),
        k_mean=bin_sum(w * kmag.reshape(-1)) / weight_sum,
        n_modes=bin_sum(independent.reshape(-1)),
        weight_sum=weight_sum,
        n_bins=n_bins,
        longer_side=side,
    )


def fourier_modes(height: int, width: int, log_bins: int | None = None, device: Any = "cpu") -> Modes:
    """The :class:`Modes` of ``(height, width)`` maps on ``device``.

    CPU calls return the cached binning itself; other devices get a fresh copy each call,
    so no accelerator memory outlives the call that uses it.
    """
    modes = cpu_modes(int(height), int(width), log_bins)
    device = torch.device(device)
    return modes if device.type == "cpu" else modes.to(device)


def bin_average(values: torch.Tensor, modes: Modes) -> torch.Tensor:
    """Mode-weighted bin means of half-plane values ``(..., H, W//2+1)`` → ``(..., n_bins)``.

    ``values`` float64 on the device of ``modes``; the result is in the units of ``values``.
    """
    batch = values.shape[:-2]
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1]) * modes.weight
    sums = torch.zeros(flat.shape[0], modes.n_bins + 1, dtype=torch.float64, device=flat.device)
    sums.index_add_(1, modes.index, flat)
    return (sums[:, : modes.n_bins] / modes.weight_sum).reshape(*batch, modes.n_bins)


def mode_bins(shape: tuple[int, ...], log_bins: int | None = None) -> tuple[Any, Any]:
    """``(k / k_F, n_modes)`` of the bins of maps of ``shape`` (numpy, ``(n_bins,)`` each).

    The bins depend only on the map's pixel dimensions, so maps of different physical pixel
    scale share them when compared in units of ``k_F``.
    """
    modes = cpu_modes(int(shape[-2]), int(shape[-1]), log_bins)
    return modes.k_mean.numpy().copy(), modes.n_modes.numpy().copy()


def fundamental_frequency(shape: tuple[int, ...], pixel_size: Any = None, *, extent: Any = None) -> Any:
    """``k_F = 2π / L`` for maps of ``shape`` ``(..., H, W)`` (``L`` the longer side).

    In 1/kpc (1/rad for angular pixel scales; a Quantity when the scale has units); a
    per-map pixel scale gives one value per map.
    """
    scale = resolve_scale(pixel_size, extent, tuple(shape), torch.device("cpu"))
    value = 2 * math.pi / (max(shape[-2:]) * scale.size)
    unit = 1 / scale.unit if scale.has_units else None
    return give_back(value, Boundary("numpy", torch.device("cpu")), unit)


def nyquist_frequency(pixel_size: Any = None, *, extent: Any = None, shape: tuple[int, ...] = (1, 1)) -> Any:
    """``k_Nyq = π / Δ`` in 1/kpc (1/rad; a Quantity when the scale has units).

    ``shape`` ``(..., H, W)`` is needed only with ``extent``.
    """
    scale = resolve_scale(pixel_size, extent, tuple(shape), torch.device("cpu"))
    unit = 1 / scale.unit if scale.has_units else None
    return give_back(math.pi / scale.size, Boundary("numpy", torch.device("cpu")), unit)
