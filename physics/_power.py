"""Float64 engine of the spectra: scaled FFTs and binned power (private to ``physics``).

A map whose largest ``|value|`` lies outside float64's comfortable range is scaled by a
power of two ``2^-e`` (into ``[0.5, 1)``, see :mod:`physics._finite`) before its FFT, so
``|FFT|²`` never overflows; the binned power of maps ``i`` and ``j`` is kept as a mantissa
(:func:`binned`) and an exponent (:func:`exponent`). Ratios (``r``, ``T``, log ratios) are
taken on the mantissas, where no overflow can happen; :func:`physical` puts the scale back
and raises a ``ValueError`` naming the input when the power itself is beyond float64.
Scaling by powers of two is exact, so every representable result is what the unscaled
computation gives.

On a CPU, batches are transformed a few maps at a time (``CHUNK_BYTES`` of input per
chunk; a GPU takes the batch at once) and only the binned products are kept: a stack of
full-plane FFTs of many maps is never held, which keeps memory flat and the working set in
cache (a 64-map 256² batch in one piece was 2.6× slower per map, mostly page faults on its
fresh 33 MB buffers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from astropy import units as u

from physics._arrays import Boundary, as_map, check_same_shape, refuse_non_finite
from physics._finite import SAFE_EXPONENT, peak_abs, require_finite, split_pow2, times_pow2
from physics.fourier import Modes, bin_average, fourier_modes, window_2d
from physics.grid import PixelScale, resolve_scale

__all__ = ["Prepared", "binned", "exponent", "physical", "prepare", "wavenumbers"]


#: input bytes of one chunk of maps transformed together (a few 256² float64 maps)
CHUNK_BYTES = 1 << 22


@dataclass(frozen=True)
class Prepared:
    """Binned (cross) power mantissas of maps of one shape ``(..., H, W)``, and their scales.

    Attributes:
        products: ``{(i, j): (..., n_bins) float64}``, the binned ``Re(F_i F_j*)`` times
            ``norm`` of the scaled maps ``i`` and ``j`` (the pairs asked of :func:`prepare`).
        exponents: ``(..., 1)`` int64 per map: the map is its scaled map times ``2^e``.
        names: the argument name of each map (for errors).
        modes: the binning of k.
        scale: the pixel scale.
        boundary: how to hand results back (the first map's library and device).
        units: each map's astropy unit (or None).
        norm: mantissa of ``A_pix / ⟨w²⟩``, ``(..., 1)`` or a float [length², over
            ``2^norm_exponent``].
        norm_exponent: ``(..., 1)`` int64 exponent of ``A_pix / ⟨w²⟩`` (or the int 0).
        plain: every exponent is 0, so ``products`` *are* the powers, finite by construction
            (the maps and the pixel scale lie within ``2^±SAFE_EXPONENT``): the ordinary case,
            which skips the rescaling and the range checks.
    """

    products: dict[tuple[int, int], torch.Tensor]
    exponents: list[torch.Tensor]
    names: list[str]
    modes: Modes
    scale: PixelScale
    boundary: Boundary
    units: list[u.UnitBase | None]
    norm: torch.Tensor | float
    norm_exponent: torch.Tensor | int
    plain: bool = False


def prepare(
    maps: list[tuple[Any, str]],
    pixel_size: Any,
    extent: Any,
    window: str | None,
    alpha: float,
    subtract_mean: bool,
    log_bins: int | None,
) -> Prepared:
    """Validate ``maps`` (``(value, argument name)`` pairs of one shape) and FFT them scaled.

    Arguments after ``maps`` are :func:`physics.spectra.power_spectrum`'s.
    """
    # the NaN/Inf check is folded into the pass that finds each map's peak |value| below
    tensors, boundaries = zip(*(as_map(m, name, check_finite=False) for m, name in maps), strict=True)
    for t, (_, name) in zip(tensors[1:], maps[1:], strict=True):
        check_same_shape(tensors[0], t, maps[0][1], name)
    first = tensors[0]
    height, width = first.shape[-2:]
    batch = first.shape[:-2]
    scale = resolve_scale(pixel_size, extent, tuple(first.shape), first.device)
    win = window_2d(height, width, window, alpha, first.device)
    modes = fourier_modes(height, width, log_bins, first.device)
    if modes.n_bins == 0:
        raise ValueError(
            f"{maps[0][1]} of shape {tuple(first.shape)} has no Fourier mode but the mean (k = 0): "
            "a spectrum needs at least 2 pixels along one axis"
        )
    exponents = []
    flat = []
    scaled = False
    for t, (_, name) in zip(tensors, maps, strict=True):
        e = _exponent_if_needed(t, name)
        if e is None:  # within float64's comfortable range: no scaling pass over the maps
            e = torch.zeros(batch, dtype=torch.int64, device=t.device)
        else:
            t = times_pow2(t, -e[..., None, None])  # exact: max |t| in [0.5, 1)
            scaled = True
        exponents.append(e[..., None])
        flat.append(t.reshape(-1, height, width))
    pairs = [(0, 0)] if len(tensors) == 1 else [(0, 0), (1, 1), (0, 1)]
    # on a CPU, a few maps at a time stay in cache; a GPU wants the whole batch in one launch
    chunk = max(1, CHUNK_BYTES // (8 * height * width)) if first.device.type == "cpu" else max(1, len(flat[0]))
    parts: dict[tuple[int, int], list[torch.Tensor]] = {pair: [] for pair in pairs}
    for start in range(0, flat[0].shape[0], chunk):
        ffts = [_fft(f[start : start + chunk], win, subtract_mean) for f in flat]
        for i, j in pairs:
            parts[(i, j)].append(bin_average(_re_dot(ffts[i], ffts[j]), modes))
    w2 = 1.0 if win is None else float((win**2).mean())
    norm, norm_exponent, plain = _norm(scale, w2, scaled)
    products = {
        pair: (v[0] if len(v) == 1 else torch.cat(v)).reshape(*batch, modes.n_bins) * norm
        for pair, v in parts.items()
    }
    return Prepared(
        products=products,
        exponents=exponents,
        names=[name for _, name in maps],
        modes=modes,
        scale=scale,
        boundary=boundaries[0],
        units=[b.unit for b in boundaries],
        norm=norm,
        norm_exponent=norm_exponent,
        plain=plain,
    )


def _exponent_if_needed(t: torch.Tensor, name: str) -> torch.Tensor | None:
    """Per-map exponents ``(...,)`` of the finite maps ``t`` if any lies outside ``2^±SAFE_EXPONENT``.

    None for the ordinary case, decided from the extreme peaks alone. Refuses NaN/Inf pixels,
    naming the map.
    """
    peak = peak_abs(t)
    low, high = (peak, peak) if peak.ndim == 0 else (peak.amin(), peak.amax())
    high_value = high.item()
    if not math.isfinite(high_value):
        refuse_non_finite(t, name)
    if high_value < 2.0**SAFE_EXPONENT and low.item() >= 2.0 ** -(SAFE_EXPONENT + 1):
        return None
    e = split_pow2(peak)[1]  # an all-zero map (e = 0) among ordinary ones needs no scaling
    return e if bool((e.abs() > SAFE_EXPONENT).any()) else None


def _norm(scale: PixelScale, w2: float, scaled: bool) -> tuple[Any, Any, bool]:
    """``(norm, norm_exponent, plain)`` of :class:`Prepared`: ``A_pix / ⟨w²⟩`` as mantissa and exponent.

    Ordinary maps (max |x| within 2^±64, ``scaled`` False) and pixel scales (within 2^±64) need
    no mantissa: ``|FFT|² < 2^(2·64 + log2(H·W))`` and ``A_pix < 2^128`` keep every power far
    below float64's top, and a non-zero power cannot come near its bottom (the FFT's own
    round-off on a map whose peak is ≥ 2^-65 is ~2^-240 in power, times ``A_pix ≥ 2^-130``),
    so the norm is the plain ``A_pix / ⟨w²⟩`` with exponent 0.
    """
    if scale.value is not None and not scaled and abs(math.frexp(scale.value)[1]) <= SAFE_EXPONENT:
        return scale.value * scale.value / w2, 0, True
    size = scale.per_map()
    mantissa, e_size = split_pow2(size)
    if not scaled and int(e_size.abs().max()) <= SAFE_EXPONENT:
        return size * size / w2, torch.zeros_like(e_size), True
    return mantissa * mantissa / w2, 2 * e_size, False


def _fft(t: torch.Tensor, win: torch.Tensor | None, subtract_mean: bool) -> torch.Tensor:
    """``rfft2`` (ortho) of maps ``(n, H, W)``, mean-subtracted and windowed when a window is used."""
    if subtract_mean and win is not None:  # without a window the mean only moves the dropped DC mode
        t = t - t.mean(dim=(-2, -1), keepdim=True)
    if win is not None:
        t = t * win
    return torch.fft.rfft2(t, norm="ortho")


def _re_dot(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``Re(fa · conj(fb))`` of complex tensors (plain multiplies: ~2x faster than ``.real**2``)."""
    re_a, im_a = torch.view_as_real(fa).unbind(-1)
    re_b, im_b = (re_a, im_a) if fb is fa else torch.view_as_real(fb).unbind(-1)
    return torch.addcmul(re_a * re_b, im_a, im_b)


def binned(prep: Prepared, i: int, j: int) -> torch.Tensor:
    """Mantissa of the binned (cross) power of maps ``i`` and ``j``, ``(..., n_bins)``.

    The power is this times ``2^exponent(prep, i, j)``; ratios of mantissas with equal
    exponents are ratios of powers.
    """
    return prep.products[(i, j)]


def exponent(prep: Prepared, i: int, j: int) -> torch.Tensor:
    """Power-of-two exponent ``(..., 1)`` (int64) of :func:`binned` ``(prep, i, j)``."""
    return prep.exponents[i] + prep.exponents[j] + prep.norm_exponent


def physical(prep: Prepared, i: int, j: int, mantissa: torch.Tensor | None = None) -> torch.Tensor:
    """Binned power ``P_ij`` ``(..., n_bins)`` in ``[i]·[j]·length²``.

    Raises:
        ValueError: naming the maps when the power over- or underflows float64.
    """
    m = binned(prep, i, j) if mantissa is None else mantissa
    if prep.plain:
        return m
    power = times_pow2(m, exponent(prep, i, j))
    names = prep.names[i] if i == j else f"{prep.names[i]} and {prep.names[j]}"
    require_finite(
        power.abs().amax(dim=-1),
        f"the {'power' if i == j else 'cross'} spectrum of {names}",
        f"{names} or pixel_size (extent)",
        mantissa=m.abs().amax(dim=-1),
    )
    return power


def wavenumbers(prep: Prepared) -> torch.Tensor:
    """Mean ``|k|`` of each bin ``(n_bins,)`` or ``(..., n_bins)`` [1/length].

    Raises:
        ValueError: naming the pixel scale when ``k`` over- or underflows float64.
    """
    side, value = prep.modes.longer_side, prep.scale.value
    k_fund = 2 * math.pi / (side * (prep.scale.per_map() if value is None else value))
    k = prep.modes.k_mean * k_fund
    if prep.plain:  # a pixel scale within 2^±64: k is finite and non-zero
        return k
    require_finite(
        k,
        "the wavenumbers 2π/(N·pixel_size)",
        "pixel_size (or extent)",
        mantissa=prep.modes.k_mean.expand_as(k),
    )
    return k
