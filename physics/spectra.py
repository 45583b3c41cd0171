"""Power spectra of 2-D maps in the Pylians convention, and paired spectral statistics.

Conventions (see ``docs/physics.md``):

* ``P(k) = A_pix · ⟨|FFT_ortho(δ)|²⟩ / ⟨w²⟩`` averaged over the modes of a bin, so ``P``
  has units ``[map]² · [length]²`` and Parseval reads ``var(δ) = Σ_{k≠0} P / A``.
* ``k = 2π/λ`` in 1/kpc (1/rad for angular pixel scales). ``k_F = 2π/L`` with ``L`` the
  longer side; bin ``n`` holds modes with ``floor(|k|/k_F) = n``. The DC bin is dropped.
* Each bin reports the mean ``|k|`` of its modes and the number of independent
  (half-plane) modes ``n_modes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import torch
from astropy import units as u

from physics._arrays import Boundary, as_map, check_same_shape, give_back
from physics.grid import PixelScale, resolve_scale

__all__ = [
    "WINDOWS",
    "CrossSpectrum",
    "PowerLawFit",
    "PowerSpectrum",
    "SpectralCurve",
    "correlation_coefficient",
    "cross_power",
    "dimensionless_power",
    "error_power",
    "fundamental_frequency",
    "mode_bins",
    "nyquist_frequency",
    "power_law_slope",
    "power_spectrum",
    "transfer_function",
    "window_2d",
]


class PowerSpectrum(NamedTuple):
    """Auto power spectrum.

    Attributes:
        k: mean |k| of each bin, ``(n_bins,)`` or ``(..., n_bins)`` for per-map pixel
            scales; 1/kpc (1/rad for angular maps).
        power: ``(..., n_bins)``; ``[map]² · kpc²``.
        n_modes: ``(n_bins,)`` independent modes per bin.
    """

    k: Any
    power: Any
    n_modes: Any


class CrossSpectrum(NamedTuple):
    """Auto and cross spectra of two maps, and ``r(k) = P_ab / sqrt(P_a P_b)``."""

    k: Any
    power_a: Any
    power_b: Any
    cross: Any
    r: Any
    n_modes: Any


class SpectralCurve(NamedTuple):
    """A dimensionless function of k (``T(k)``, ``r(k)``, ``E(k)``, ``Δ²(k)``)."""

    k: Any
    value: Any
    n_modes: Any


class PowerLawFit(NamedTuple):
    """``P = amplitude · k^slope``; ``amplitude`` in the spectrum's power unit at k = 1."""

    slope: Any
    amplitude: Any
    slope_error: Any


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
    """Separable 2-D apodisation window ``(H, W)`` float64, or None for no window.

    Args:
        window: ``None``/``"none"``, ``"hann"`` or ``"tukey"``.
        alpha: Tukey taper fraction in [0, 1] (ignored for Hann).
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


WINDOWS = ("none", "hann", "tukey")

# ------------------------------------------------------------------------ mode binning


@dataclass(frozen=True)
class _Modes:
    """Binning of the rfft half-plane of an ``(H, W)`` map.

    ``index`` maps each stored mode to its bin (``n_bins`` for the dropped DC mode),
    ``weight`` is its full-plane multiplicity (1 on self-paired columns, 2 elsewhere).
    """

    index: torch.Tensor
    weight: torch.Tensor
    k_mean: torch.Tensor  # (n_bins,) in units of k_F
    n_modes: torch.Tensor  # (n_bins,)
    weight_sum: torch.Tensor  # (n_bins,)
    n_bins: int
    longer_side: int


@lru_cache(maxsize=64)
def _modes(height: int, width: int, log_bins: int | None, device: str) -> _Modes:
    dev = torch.device(device)
    side = max(height, width)
    fy = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64)
    fx = torch.fft.rfftfreq(width, d=1.0 / width, dtype=torch.float64)
    ky = (fy * (side / height))[:, None]
    kx = (fx * (side / width))[None, :]
    kmag = torch.sqrt(ky**2 + kx**2)  # |k| / k_F, exact integers on the integer circles
    paired = (fx == 0) | ((width % 2 == 0) & (fx == width // 2))
    weight = torch.where(paired, 1.0, 2.0).to(torch.float64)[None, :].expand(height, -1)
    self_conj = paired[None, :] & ((fy == 0) | ((height % 2 == 0) & (fy == -(height // 2))))[:, None]
    independent = weight / 2 + 0.5 * self_conj
    is_dc = kmag == 0
    if log_bins is None:
        label = torch.floor(kmag + 1e-9).long()  # 1e-9 guards non-square grids only
    else:
        if log_bins < 1:
            raise ValueError(f"log_bins must be a positive integer, got {log_bins}")
        edges = torch.logspace(0.0, math.log10(float(kmag.max())) + 1e-12, log_bins + 1, dtype=torch.float64)
        label = torch.searchsorted(edges, kmag.contiguous(), right=True)
    label = torch.where(is_dc, 0, label).reshape(-1)
    counts = torch.bincount(label, minlength=int(label.max()) + 1)
    occupied = torch.nonzero(counts[1:] > 0).flatten() + 1  # drop the DC label 0
    remap = torch.full((counts.numel(),), occupied.numel(), dtype=torch.long)
    remap[occupied] = torch.arange(occupied.numel())
    index = remap[label]
    n_bins = occupied.numel()
    w = weight.reshape(-1)

    def bin_sum(v: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, index, v)[:n_bins]

    weight_sum = bin_sum(w)
    return _Modes(
        index=index.to(dev),
        weight=w.to(dev),
        k_mean=(bin_sum(w * kmag.reshape(-1)) / weight_sum).to(dev),
        n_modes=bin_sum(independent.reshape(-1)).to(dev),
        weight_sum=weight_sum.to(dev),
        n_bins=n_bins,
        longer_side=side,
    )


def _re_dot(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``Re(fa · conj(fb))`` of complex tensors (plain multiplies: ~2x faster than ``.real**2``)."""
    ra, rb = torch.view_as_real(fa), torch.view_as_real(fb)
    return torch.addcmul(ra[..., 0] * rb[..., 0], ra[..., 1], rb[..., 1])


def _bin_average(values: torch.Tensor, modes: _Modes) -> torch.Tensor:
    """Mode-weighted bin means of half-plane values ``(..., H, W//2+1)`` → ``(..., n_bins)``."""
    batch = values.shape[:-2]
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1]) * modes.weight
    sums = torch.zeros(flat.shape[0], modes.n_bins + 1, dtype=torch.float64, device=flat.device)
    sums.index_add_(1, modes.index, flat)
    return (sums[:, : modes.n_bins] / modes.weight_sum).reshape(*batch, modes.n_bins)


# ------------------------------------------------------------------------ the engine


@dataclass(frozen=True)
class _Prepared:
    ffts: list[torch.Tensor]
    modes: _Modes
    scale: PixelScale
    boundary: Boundary
    units: list[u.UnitBase | None]
    norm: torch.Tensor  # pixel area / <w²>, broadcastable to (..., n_bins)


def _prepare(
    maps: list[tuple[Any, str]],
    pixel_size: Any,
    extent: Any,
    window: str | None,
    alpha: float,
    subtract_mean: bool,
    log_bins: int | None,
) -> _Prepared:
    tensors, boundaries = zip(*(as_map(m, name) for m, name in maps), strict=True)
    for t, (_, name) in zip(tensors[1:], maps[1:], strict=True):
        check_same_shape(tensors[0], t, maps[0][1], name)
    first = tensors[0]
    height, width = first.shape[-2:]
    scale = resolve_scale(pixel_size, extent, tuple(first.shape), first.device)
    win = window_2d(height, width, window, alpha, first.device)
    ffts = []
    for t in tensors:
        if subtract_mean and win is not None:  # without a window the mean only moves the dropped DC mode
            t = t - t.mean(dim=(-2, -1), keepdim=True)
        if win is not None:
            t = t * win
        ffts.append(torch.fft.rfft2(t, norm="ortho"))
    w2 = 1.0 if win is None else float((win**2).mean())
    modes = _modes(height, width, log_bins, str(first.device))
    return _Prepared(
        ffts=ffts,
        modes=modes,
        scale=scale,
        boundary=boundaries[0],
        units=[b.unit for b in boundaries],
        norm=scale.per_map() ** 2 / w2,
    )


def _k_of(prep: _Prepared) -> torch.Tensor:
    k_fund = 2 * math.pi / (prep.modes.longer_side * prep.scale.per_map())
    return prep.modes.k_mean * k_fund


def _k_unit(prep: _Prepared) -> u.UnitBase | None:
    if prep.boundary.wants_units(*prep.units, u.kpc if prep.scale.has_units else None):
        return 1 / prep.scale.unit
    return None


def _power_unit(
    prep: _Prepared, map_unit_a: u.UnitBase | None, map_unit_b: u.UnitBase | None
) -> u.UnitBase | None:
    if _k_unit(prep) is None:
        return None
    ua = map_unit_a if map_unit_a is not None else u.dimensionless_unscaled
    ub = map_unit_b if map_unit_b is not None else u.dimensionless_unscaled
    return ua * ub * prep.scale.unit**2


def _out(prep: _Prepared, t: torch.Tensor, unit: u.UnitBase | None = None) -> Any:
    return give_back(t, prep.boundary, unit)


def power_spectrum(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    window: str | None = None,
    alpha: float = 0.5,
    subtract_mean: bool = True,
    log_bins: int | None = None,
) -> PowerSpectrum:
    """Azimuthally averaged power spectrum of ``field`` ``(..., H, W)``.

    With only ``pixel_size`` this is Pylians' ``Pk_plane`` (no window, DC dropped,
    integer-mode bins). Mean subtraction only changes the dropped DC mode unless a
    window is used, where it is needed to stop the mean leaking into low k.

    Args:
        field: map(s) in physical units (numpy, Quantity or torch; any device).
        pixel_size: pixel side, float in kpc or a length/angle Quantity; per map allowed.
        extent: ``[x0, x1, y0, y1]`` instead of ``pixel_size``.
        window: ``None``, ``"hann"`` or ``"tukey"``; P is divided by ``⟨w²⟩``.
        alpha: Tukey taper fraction.
        subtract_mean: remove each map's mean (in float64) before windowing.
        log_bins: number of log-spaced bins between k_F and the corner instead of
            integer bins (empty bins are dropped).

    Returns:
        PowerSpectrum(k [1/kpc], power [[map]² kpc²], n_modes).
    """
    prep = _prepare([(field, "field")], pixel_size, extent, window, alpha, subtract_mean, log_bins)
    f = prep.ffts[0]
    power = _bin_average(_re_dot(f, f), prep.modes) * prep.norm
    unit = _power_unit(prep, prep.units[0], prep.units[0])
    return PowerSpectrum(
        k=_out(prep, _k_of(prep), _k_unit(prep)),
        power=_out(prep, power, unit),
        n_modes=_out(prep, prep.modes.n_modes),
    )


def _cross_parts(prep: _Prepared) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fa, fb = prep.ffts
    pa = _bin_average(_re_dot(fa, fa), prep.modes) * prep.norm
    pb = _bin_average(_re_dot(fb, fb), prep.modes) * prep.norm
    pab = _bin_average(_re_dot(fa, fb), prep.modes) * prep.norm
    return pa, pb, pab


def _require_power(p: torch.Tensor, name: str) -> None:
    if bool((p.amax(dim=-1) <= 0).any()):
        raise ValueError(
            f"{name} has no fluctuation power (all-zero or constant map); this spectral ratio is undefined"
        )


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num/den`` with NaN where ``den`` is zero (a bin without power)."""
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.nan)


def cross_power(
    a: Any,
    b: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    window: str | None = None,
    alpha: float = 0.5,
    subtract_mean: bool = True,
    log_bins: int | None = None,
) -> CrossSpectrum:
    """Auto and cross spectra of ``a`` and ``b`` on the same grid, and ``r(k)``.

    ``cross = A_pix ⟨Re(ã b̃*)⟩`` in ``[a]·[b]·kpc²``; ``r = cross / sqrt(P_a P_b)`` (NaN in
    bins where either map has no power). Arguments as in :func:`power_spectrum`.
    """
    prep = _prepare([(a, "a"), (b, "b")], pixel_size, extent, window, alpha, subtract_mean, log_bins)
    pa, pb, pab = _cross_parts(prep)
    r = _ratio(pab, torch.sqrt(pa * pb))
    return CrossSpectrum(
        k=_out(prep, _k_of(prep), _k_unit(prep)),
        power_a=_out(prep, pa, _power_unit(prep, prep.units[0], prep.units[0])),
        power_b=_out(prep, pb, _power_unit(prep, prep.units[1], prep.units[1])),
        cross=_out(prep, pab, _power_unit(prep, prep.units[0], prep.units[1])),
        r=_out(prep, r),
        n_modes=_out(prep, prep.modes.n_modes),
    )


def _paired_curve(pred: Any, true: Any, what: str, pixel_size: Any, options: dict[str, Any]) -> SpectralCurve:
    unknown = set(options) - {"extent", "window", "alpha", "subtract_mean", "log_bins"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
    opts = {"extent": None, "window": None, "alpha": 0.5, "subtract_mean": True, "log_bins": None} | options
    prep = _prepare([(pred, "pred"), (true, "true")], pixel_size, **opts)
    pp, pt, pc = _cross_parts(prep)
    _require_power(pt, "true")
    if what == "transfer":
        value = torch.sqrt(_ratio(pp, pt))
    elif what == "correlation":
        _require_power(pp, "pred")
        value = _ratio(pc, torch.sqrt(pp * pt))
    else:  # error power P_{pred-true} / P_true
        value = _ratio(pp + pt - 2 * pc, pt)
    return SpectralCurve(
        k=_out(prep, _k_of(prep), _k_unit(prep)),
        value=_out(prep, value),
        n_modes=_out(prep, prep.modes.n_modes),
    )


def transfer_function(pred: Any, true: Any, pixel_size: Any = None, **options: Any) -> SpectralCurve:
    """``T(k) = sqrt(P_pred / P_true)``; 1 for a perfect prediction.

    ``options`` are :func:`power_spectrum`'s keywords (``extent``, ``window``, ``alpha``,
    ``subtract_mean``, ``log_bins``), applied identically to both maps.

    Raises:
        ValueError: ``true`` has no power at all.
    """
    return _paired_curve(pred, true, "transfer", pixel_size, options)


def correlation_coefficient(pred: Any, true: Any, pixel_size: Any = None, **options: Any) -> SpectralCurve:
    """Cross-correlation coefficient ``r(k) = P_× / sqrt(P_pred P_true)`` in [-1, 1].

    Options as in :func:`transfer_function`.

    Raises:
        ValueError: ``pred`` or ``true`` has no power at all.
    """
    return _paired_curve(pred, true, "correlation", pixel_size, options)


def error_power(pred: Any, true: Any, pixel_size: Any = None, **options: Any) -> SpectralCurve:
    """Relative error power ``E(k) = P_{pred−true} / P_true = T² + 1 − 2 T r``.

    Options as in :func:`transfer_function`.

    Raises:
        ValueError: ``true`` has no power at all.
    """
    return _paired_curve(pred, true, "error", pixel_size, options)


# ----------------------------------------------------------------- derived quantities


def _plain(x: Any) -> tuple[torch.Tensor, u.UnitBase | None, Boundary]:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64), None, Boundary("torch", x.device)
    if isinstance(x, u.Quantity):
        return (
            torch.as_tensor(x.value, dtype=torch.float64),
            x.unit,
            Boundary("numpy", torch.device("cpu"), x.unit),
        )
    return torch.as_tensor(x, dtype=torch.float64), None, Boundary("numpy", torch.device("cpu"))


def dimensionless_power(spectrum: PowerSpectrum) -> SpectralCurve:
    """2-D dimensionless power ``Δ²(k) = k² P(k) / (2π)``, so ``σ² = ∫ Δ² d ln k``.

    Units: ``[map]²`` (dimensionless for a dimensionless field).
    """
    k, ku, boundary = _plain(spectrum.k)
    p, pu, _ = _plain(spectrum.power)
    value = k**2 * p.to(k.device) / (2 * math.pi)
    unit = ku**2 * pu if (ku is not None and pu is not None) else None
    return SpectralCurve(k=spectrum.k, value=give_back(value, boundary, unit), n_modes=spectrum.n_modes)


def power_law_slope(spectrum: PowerSpectrum, k_min: Any = None, k_max: Any = None) -> PowerLawFit:
    """Weighted least-squares fit of ``log10 P = log10 A + n log10 k`` over ``[k_min, k_max]``.

    Each bin is weighted by its ``n_modes`` (the inverse variance of ``ln P̂``). Bins
    with zero power are skipped. ``k_min``/``k_max`` are in the units of ``spectrum.k``.

    Returns:
        PowerLawFit(slope, amplitude at k = 1 in the power's units, slope_error).

    Raises:
        ValueError: fewer than three usable bins in the range.
    """
    k, ku, boundary = _plain(spectrum.k)
    p, pu, _ = _plain(spectrum.power)
    n, _, _ = _plain(spectrum.n_modes)
    p, n = p.to(k.device), n.to(k.device)

    def limit(v: Any, name: str) -> float | None:
        if v is None:
            return None
        if isinstance(v, u.Quantity):
            if ku is None:
                raise ValueError(f"{name} has units but spectrum.k does not")
            return float(v.to_value(ku))
        return float(v)

    lo, hi = limit(k_min, "k_min"), limit(k_max, "k_max")
    k, p = torch.broadcast_tensors(k, p)
    use = p > 0
    if lo is not None:
        use &= k >= lo
    if hi is not None:
        use &= k <= hi
    if bool((use.sum(dim=-1) < 3).any()):
        raise ValueError(f"power_law_slope needs at least 3 bins with power in [{k_min}, {k_max}]")
    w = torch.where(use, n.expand_as(p), 0.0)
    x = torch.log10(torch.where(use, k, 1.0))
    y = torch.log10(torch.where(use, p, 1.0))
    s, sx, sy = w.sum(-1), (w * x).sum(-1), (w * y).sum(-1)
    sxx, sxy = (w * x * x).sum(-1), (w * x * y).sum(-1)
    det = s * sxx - sx**2
    slope = (s * sxy - sx * sy) / det
    intercept = (sy - slope * sx) / s
    resid = y - intercept[..., None] - slope[..., None] * x
    dof = use.sum(-1) - 2
    sigma2 = (w * resid**2).sum(-1) / dof * (use.sum(-1) / s)  # scatter per unit mean weight
    slope_err = torch.sqrt(sigma2 * s / det * (s / use.sum(-1)))
    amp = 10**intercept
    return PowerLawFit(
        slope=give_back(slope, boundary),
        amplitude=give_back(amp, boundary, pu),
        slope_error=give_back(slope_err, boundary),
    )


def mode_bins(shape: tuple[int, ...], log_bins: int | None = None) -> tuple[Any, Any]:
    """``(k / k_F, n_modes)`` of the bins of maps of ``shape`` (numpy, ``(n_bins,)`` each).

    The bins depend only on the map's pixel dimensions, so maps of different physical pixel
    scale share them when compared in units of ``k_F``.
    """
    modes = _modes(int(shape[-2]), int(shape[-1]), log_bins, "cpu")
    return modes.k_mean.numpy().copy(), modes.n_modes.numpy().copy()


def fundamental_frequency(shape: tuple[int, ...], pixel_size: Any = None, *, extent: Any = None) -> Any:
    """``k_F = 2π / L`` for maps of ``shape`` (``L`` the longer side), in 1/kpc or 1/rad."""
    scale = resolve_scale(pixel_size, extent, tuple(shape), torch.device("cpu"))
    value = 2 * math.pi / (max(shape[-2:]) * scale.size)
    unit = 1 / scale.unit if scale.has_units else None
    return give_back(value, Boundary("numpy", torch.device("cpu")), unit)


def nyquist_frequency(pixel_size: Any = None, *, extent: Any = None, shape: tuple[int, ...] = (1, 1)) -> Any:
    """``k_Nyq = π / Δ`` in 1/kpc (1/rad); ``shape`` is needed only with ``extent``."""
    scale = resolve_scale(pixel_size, extent, tuple(shape), torch.device("cpu"))
    unit = 1 / scale.unit if scale.has_units else None
    return give_back(math.pi / scale.size, Boundary("numpy", torch.device("cpu")), unit)
