"""Power spectra of 2-D maps in the Pylians convention, and paired spectral statistics.

Conventions (see ``docs/physics.md``):

* ``P(k) = A_pix · ⟨|FFT_ortho(δ)|²⟩ / ⟨w²⟩`` averaged with equal weight over the
  independent (half-plane) modes of a bin, self-conjugate Nyquist modes of even sizes
  included (Pylians' ``Pk_plane``), so ``P`` has units ``[map]² · [length]²`` and
  Parseval reads ``var(δ) = Σ_bins (2 n_modes − n_self) P / A`` (``n_self`` the
  self-conjugate modes of a bin: none on odd sizes).
* The binning of k (``k_F``, integer or log bins, ``n_modes``) and the windows live in
  :mod:`physics.fourier`; fits to spectra in :mod:`physics.fits`; the bin-level ratios
  in :mod:`physics.binned`; the scaled FFT engine in :mod:`physics._power`.
* Maps outside float64's comfortable range are scaled by a power of two before their FFT,
  so a spectrum is finite whenever it is representable; one beyond float64 raises a
  ``ValueError`` naming the map.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from astropy import units as u

from physics._arrays import give_back
from physics._finite import require_finite, times_pow2
from physics._power import Prepared, binned, physical, prepare, wavenumbers
from physics.binned import correlation_from_power, guarded_ratio

__all__ = [
    "CrossSpectrum",
    "PowerSpectrum",
    "SpectralCurve",
    "correlation_coefficient",
    "cross_power",
    "error_power",
    "power_spectrum",
    "transfer_function",
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
    """Auto and cross spectra of two maps, and ``r(k) = P_ab / sqrt(P_a P_b)``.

    Attributes:
        k: mean |k| of each bin as in :class:`PowerSpectrum` [1/kpc].
        power_a, power_b: auto spectra ``(..., n_bins)`` [``[a]²·kpc²``, ``[b]²·kpc²``].
        cross: cross spectrum ``A_pix ⟨Re(ã b̃*)⟩`` ``(..., n_bins)`` [``[a]·[b]·kpc²``].
        r: dimensionless correlation coefficient ``(..., n_bins)`` in [-1, 1] (NaN in
            bins where either map has no power).
        n_modes: ``(n_bins,)`` independent modes per bin.
    """

    k: Any
    power_a: Any
    power_b: Any
    cross: Any
    r: Any
    n_modes: Any


class SpectralCurve(NamedTuple):
    """A function of k (``T(k)``, ``r(k)``, ``E(k)``, ``Δ²(k)``).

    Attributes:
        k: mean |k| of each bin as in :class:`PowerSpectrum` [1/kpc].
        value: ``(..., n_bins)``; dimensionless except ``Δ²`` (``[map]²``).
        n_modes: ``(n_bins,)`` independent modes per bin.
    """

    k: Any
    value: Any
    n_modes: Any


# ------------------------------------------------------------------------ the engine


def _k_unit(prep: Prepared) -> u.UnitBase | None:
    if prep.boundary.wants_units(*prep.units, u.kpc if prep.scale.has_units else None):
        return 1 / prep.scale.unit
    return None


def _power_unit(
    prep: Prepared, map_unit_a: u.UnitBase | None, map_unit_b: u.UnitBase | None
) -> u.UnitBase | None:
    if _k_unit(prep) is None:
        return None
    ua = map_unit_a if map_unit_a is not None else u.dimensionless_unscaled
    ub = map_unit_b if map_unit_b is not None else u.dimensionless_unscaled
    return ua * ub * prep.scale.unit**2


def _out(prep: Prepared, t: torch.Tensor, unit: u.UnitBase | None = None) -> Any:
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
    integer-mode bins ``int(|k|/k_F)``, every independent mode of a bin weighted equally,
    the Nyquist modes of even sizes included). Mean subtraction only changes the dropped
    DC mode unless a window is used, where it is needed to stop the mean leaking into low k.
    A map outside ``2^±64`` is scaled by a power of two before its FFT, so any representable spectrum is
    returned finite (and exact); one beyond float64 raises.

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
        PowerSpectrum(k [1/kpc] ``(n_bins,)`` or ``(..., n_bins)`` for per-map scales,
        power [[map]² kpc²] ``(..., n_bins)``, n_modes ``(n_bins,)``).

    Raises:
        ValueError: a bad map, pixel scale or option (each named), or a spectrum (or k)
            beyond the float64 range.
    """
    prep = prepare([(field, "field")], pixel_size, extent, window, alpha, subtract_mean, log_bins)
    unit = _power_unit(prep, prep.units[0], prep.units[0])
    return PowerSpectrum(
        k=_out(prep, wavenumbers(prep), _k_unit(prep)),
        power=_out(prep, physical(prep, 0, 0), unit),
        n_modes=_out(prep, prep.modes.n_modes),
    )


def _require_power(p: torch.Tensor, name: str) -> None:
    if bool((p.amax(dim=-1) <= 0).any()):
        raise ValueError(
            f"{name} has no fluctuation power (all-zero or constant map); this spectral ratio is undefined"
        )


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
    bins where either map has no power). Arguments as in :func:`power_spectrum`; ``a`` and
    ``b`` are maps ``(..., H, W)`` of one shape, and every output is ``(..., n_bins)``. ``r``
    is computed on the scaled maps, so it is finite even where ``a`` and ``b`` are huge.

    Raises:
        ValueError: as :func:`power_spectrum`, naming ``a`` or ``b``.
    """
    prep = prepare([(a, "a"), (b, "b")], pixel_size, extent, window, alpha, subtract_mean, log_bins)
    ma, mb, mab = binned(prep, 0, 0), binned(prep, 1, 1), binned(prep, 0, 1)
    r = correlation_from_power(mab, ma, mb, empty=math.nan)  # scale-free: taken on the mantissas
    return CrossSpectrum(
        k=_out(prep, wavenumbers(prep), _k_unit(prep)),
        power_a=_out(prep, physical(prep, 0, 0, ma), _power_unit(prep, prep.units[0], prep.units[0])),
        power_b=_out(prep, physical(prep, 1, 1, mb), _power_unit(prep, prep.units[1], prep.units[1])),
        cross=_out(prep, physical(prep, 0, 1, mab), _power_unit(prep, prep.units[0], prep.units[1])),
        r=_out(prep, r),
        n_modes=_out(prep, prep.modes.n_modes),
    )


def _paired_curve(pred: Any, true: Any, what: str, pixel_size: Any, options: dict[str, Any]) -> SpectralCurve:
    unknown = set(options) - {"extent", "window", "alpha", "subtract_mean", "log_bins"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
    opts = {"extent": None, "window": None, "alpha": 0.5, "subtract_mean": True, "log_bins": None} | options
    prep = prepare([(pred, "pred"), (true, "true")], pixel_size, **opts)
    pp, pt, pc = binned(prep, 0, 0), binned(prep, 1, 1), binned(prep, 0, 1)
    _require_power(pt, "true")
    # mantissas of pred and true differ by 2^shift in amplitude (2^2shift in power)
    shift = prep.exponents[0] - prep.exponents[1]
    if what == "transfer":
        value = times_pow2(torch.sqrt(guarded_ratio(pp, pt, math.nan)), shift)
    elif what == "correlation":
        _require_power(pp, "pred")
        value = correlation_from_power(pc, pp, pt, empty=math.nan)
    else:  # error power P_{pred-true} / P_true = T² + 1 − 2 T r
        value = (
            times_pow2(guarded_ratio(pp, pt, math.nan), 2 * shift)
            + 1
            - 2 * times_pow2(guarded_ratio(pc, pt, math.nan), shift)
        )
    require_finite(
        torch.where(torch.isnan(value), 0.0, value), f"the {what} curve of pred and true", "pred or true"
    )
    return SpectralCurve(
        k=_out(prep, wavenumbers(prep), _k_unit(prep)),
        value=_out(prep, value),
        n_modes=_out(prep, prep.modes.n_modes),
    )


def transfer_function(pred: Any, true: Any, pixel_size: Any = None, **options: Any) -> SpectralCurve:
    """``T(k) = sqrt(P_pred / P_true)``; 1 for a perfect prediction.

    ``pred`` and ``true`` are maps ``(..., H, W)`` of the same shape and unit; the curve's
    ``value`` is ``(..., n_bins)``, dimensionless (NaN in bins where ``true`` has no power).
    ``options`` are :func:`power_spectrum`'s keywords (``extent``, ``window``, ``alpha``,
    ``subtract_mean``, ``log_bins``), applied identically to both maps.

    Raises:
        ValueError: ``true`` has no power at all, or ``T`` is beyond float64.
    """
    return _paired_curve(pred, true, "transfer", pixel_size, options)


def correlation_coefficient(pred: Any, true: Any, pixel_size: Any = None, **options: Any) -> SpectralCurve:
    """Cross-correlation coefficient ``r(k) = P_× / sqrt(P_pred P_true)`` in [-1, 1].

    Maps, shapes and options as in :func:`transfer_function`.

    Raises:
        ValueError: ``pred`` or ``true`` has no power at all.
    """
    return _paired_curve(pred, true, "correlation", pixel_size, options)


def error_power(pred: Any, true: Any, pixel_size: Any = None, **options: Any) -> SpectralCurve:
    """Relative error power ``E(k) = P_{pred−true} / P_true = T² + 1 − 2 T r`` (dimensionless).

    Maps, shapes and options as in :func:`transfer_function`.

    Raises:
        ValueError: ``true`` has no power at all, or ``E`` is beyond float64.
    """
    return _paired_curve(pred, true, "error", pixel_size, options)
