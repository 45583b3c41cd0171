"""Bad and extreme inputs, as one table: each case raises a clear error naming the input, or
returns the right value (issue 14: no silent wrong numbers).

The table is ``CASES``, a list of ``Case(id, call, expect)``: ``call`` takes no argument
and ``expect`` is ``Raises(Error, match)`` / ``bad(match)`` (a ``ValueError``; ``match`` is
a regex that names the offending argument) or ``value(expected, rel=..., atol=...)`` (a
finite result). To add cases (app or CLI ones too), append with :func:`add`,
:func:`add_all` or :func:`keyword_cases`; ``test_case`` runs every row.
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from astropy import units as u

import physics as ph

Raises = namedtuple("Raises", "error match")  # expect ``error`` whose message matches regex ``match``
Value = namedtuple("Value", "expected rel atol", defaults=(1e-12, 0.0))  # expect a finite value
Case = namedtuple("Case", "id call expect")  # ``call()`` must meet ``expect`` (a Raises or a Value)
CASES: list[Case] = []


def bad(match: str) -> Raises:
    """Expect a ``ValueError`` whose message matches the regex ``match``."""
    return Raises(ValueError, match)


def value(expected: Any, rel: float = 1e-12, atol: float = 0.0) -> Value:
    """Expect a finite result equal to ``expected`` (``numpy.testing.assert_allclose``)."""
    return Value(expected, rel, atol)


def add(case_id: str, call: Callable[[], Any], expect: Raises | Value) -> None:
    CASES.append(Case(case_id, call, expect))


def add_all(rows: list[tuple[str, Callable[[], Any], Raises | Value]]) -> None:
    for row in rows:
        add(*row)


def keyword_cases(fn_id: str, call: Callable[..., Any], rows: list[tuple[dict[str, Any], Any]]) -> None:
    """One case per row ``(keywords, expect)``: ``call(**keywords)`` must meet ``expect``."""
    for kw, expect in rows:
        add(f"{fn_id}-" + ",".join(f"{k}={v}" for k, v in kw.items()), lambda kw=kw: call(**kw), expect)


# ------------------------------------------------------------------------ inputs


def pos(n: int = 16, seed: int = 0) -> np.ndarray:
    """A positive, structured ``(n, n)`` map (log-normal pixels)."""
    return np.random.default_rng(seed).lognormal(size=(n, n))


def disk(n: int = 32) -> np.ndarray:
    x = np.arange(n) + 0.5 - n / 2
    return np.exp(-np.hypot(*np.meshgrid(x, x, indexing="ij")) / 4.0)


def with_pixel(x: np.ndarray, v: float, at: tuple[int, int] = (3, 4)) -> np.ndarray:
    y = np.array(x, dtype=float)
    y[at] = v
    return y


X, Y, D, Z = pos(), pos(seed=1), disk(), np.zeros((16, 16))  # the functions never write to their inputs

#: malformed versions of a map and the error each must raise; ``{name}`` is the argument
BAD_MAPS: dict[str, tuple[Callable[[], Any], type[Exception], str]] = {
    "nan": (lambda: with_pixel(X, np.nan), ValueError, r"{name} contains 1 NaN/Inf"),
    "inf": (lambda: with_pixel(X, -np.inf), ValueError, r"{name} contains 1 NaN/Inf"),
    "1d": (lambda: np.ones(16), ValueError, r"{name} must have shape \(\.\.\., H, W\)"),
    "empty": (lambda: np.ones((0, 16)), ValueError, r"{name} is empty"),
    "complex": (lambda: X.astype(complex), TypeError, r"{name} must be real-valued"),
    "object": (lambda: np.array([[1, None], [2, 3]], dtype=object), TypeError, r"{name} must be a numeric"),
    "string": (lambda: "map.npy", TypeError, r"{name} must be a numeric"),
}

#: each map argument of each function: (id, function of the map, argument name)
MAP_ARGUMENTS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("power_spectrum", lambda m: ph.power_spectrum(m, 1.0), "field"),
    ("cross_power.a", lambda m: ph.cross_power(m, X, 1.0), "a"),
    ("cross_power.b", lambda m: ph.cross_power(X, m, 1.0), "b"),
    ("transfer_function.true", lambda m: ph.transfer_function(X, m, 1.0), "true"),
    ("radial_profile", lambda m: ph.radial_profile(m, 1.0), "field"),
    ("half_mass_radius", lambda m: ph.half_mass_radius(m, 1.0), "field"),
    ("total_mass", lambda m: ph.total_mass(m, 1.0), "surface_density"),
    ("mass_weighted_temperature.T", lambda m: ph.mass_weighted_temperature(m, X), "temperature"),
    ("thermal_energy.gas", lambda m: ph.thermal_energy(m, X, 1.0), "gas"),
    ("magnetic_energy", lambda m: ph.magnetic_energy(m, 1.0, 1.0), "bfield"),
    ("pixel_distribution", lambda m: ph.pixel_distribution(m), "field"),
    ("asymmetry", lambda m: ph.asymmetry(m), "field"),
    ("spectrum_log_error.pred", lambda m: ph.spectrum_log_error(m, X), "pred"),
    ("relative_mass_error.true", lambda m: ph.relative_mass_error(X, m), "true"),
    ("w1_dex.pred", lambda m: ph.w1_dex(m, X), "pred"),
]

for fn_id, fn, arg in MAP_ARGUMENTS:
    for kind, (make, error, pattern) in BAD_MAPS.items():
        add(f"{fn_id}-{kind}", lambda fn=fn, make=make: fn(make()), Raises(error, pattern.format(name=arg)))

# ----------------------------------------------------- huge and tiny values (overflow)

P1 = ph.power_spectrum(X, 1.0).power  # the reference spectrum of X at pixel_size 1
add_all([
    ("power_spectrum-1e300-map", lambda: ph.power_spectrum(X * 1e300, 1.0),
     bad(r"power spectrum of field overflows float64.*rescale field")),
    ("power_spectrum-one-1e300-pixel", lambda: ph.power_spectrum(with_pixel(X, 1e300), 1.0),
     bad(r"power spectrum of field overflows")),
    ("power_spectrum-1e150", lambda: ph.power_spectrum(X * 1e150, 1.0).power / 1e300, value(P1)),
    ("power_spectrum-1e-150", lambda: ph.power_spectrum(X * 1e-150, 1.0).power * 1e300, value(P1)),
    ("power_spectrum-1e-300", lambda: ph.power_spectrum(X * 1e-300, 1.0), bad(r"of field underflows")),
    ("power_spectrum-2^500", lambda: ph.power_spectrum(X * 2.0**500, 2.0**-500).power, value(P1, rel=0.0)),
    ("cross_power-1e200", lambda: ph.cross_power(X * 1e200, Y * 1e200, 1.0), bad(r"spectrum of a overflows")),
    ("correlation-1e200", lambda: ph.correlation_coefficient(X * 1e200, X * 1e200, 1.0).value, value(1.0)),
    ("transfer_function-1e200", lambda: ph.transfer_function(X * 1e200, X, 1.0).value, value(1e200)),
    ("error_power-1e200", lambda: ph.error_power(X * 1e200, X, 1), bad(r"curve of pred and true overflows")),
    ("spectrum_log_error-1e200-same", lambda: ph.spectrum_log_error(X * 1e200, X * 1e200), value(0.0)),
    ("spectrum_log_error-1e200-vs-1", lambda: ph.spectrum_log_error(X * 1e200, X), value(400.0)),
    ("spectrum_log_error-1e-300", lambda: ph.spectrum_log_error(X * 1e-300, X), value(10.0)),
    ("correlation_error-1e-300", lambda: ph.correlation_error(X * 1e-300, X), value(0.0, atol=1e-12)),
    ("mass_log_error-1e300/1e-300", lambda: ph.mass_log_error(X * 1e300, X * 1e-300), value(600.0)),
    ("relative_mass_error-1e300", lambda: ph.relative_mass_error(X * 1e300, X * 1e300), value(0, atol=1e-15)),
    ("relative_mass_error-1e300/1e-300", lambda: ph.relative_mass_error(X * 1e300, X * 1e-300),
     bad(r"M_pred/M_true of pred and true overflows")),
    ("profile_error_dex-1e300/1e-300", lambda: ph.profile_error_dex(D * 1e300, D * 1e-300), value(600.0)),
    ("T_mw-1e300", lambda: ph.mass_weighted_temperature(np.full((8, 8), 1e300), np.full((8, 8), 1e10)),
     value(1e300)),
    ("T_mw-1e308", lambda: ph.mass_weighted_temperature(np.full((8, 8), 1e308), pos(8)), value(1e308)),
    ("mass_weighted_mean-1e-300-weights", lambda: ph.mass_weighted_mean(X, Y * 1e-300),
     value(ph.mass_weighted_mean(X, Y))),
    ("total_mass-1e300", lambda: ph.total_mass(np.full((16, 16), 1e300), 0.5), value(1e300 * 64)),
    ("total_mass-1e308", lambda: ph.total_mass(np.full((16, 16), 1e308), 1.0),
     bad(r"total mass of surface_density overflows")),
    ("total_mass-1e-300", lambda: ph.total_mass(np.full((16, 16), 1e-300), 1e-5), value(1e-300 * 256e-10)),
    ("total_mass-underflows", lambda: ph.total_mass(np.full((16, 16), 1e-300), 1e-20),
     bad(r"total mass of surface_density underflows")),
    ("total_mass-pixel_size-1e200", lambda: ph.total_mass(X, 1e200), bad(r"overflows.*pixel_size")),
    # 1e307 is no power of two: the rescaled maps differ in their last bits, and the final chord of the
    # root search (``physics._kernels.radius_at_fraction``) passes that on (≲ 10 ulp)
    ("half_mass_radius-1e307", lambda: ph.half_mass_radius(D * 1e307, 1.0),
     value(ph.half_mass_radius(D, 1.0), rel=1e-14)),
    ("radial_profile-1e307", lambda: ph.radial_profile(np.full((16, 16), 1e307), 1.0).value, value(1e307)),
    ("find_center-com-1e308", lambda: ph.find_center(np.roll(D, 3, axis=0) * 1e308, 1.0),
     value(ph.find_center(np.roll(D, 3, axis=0), 1.0), atol=1e-12)),
    ("asymmetry-1e308", lambda: ph.asymmetry(with_pixel(D * 1e308, 1e308, (20, 21)), r50=4.0, pixel_size=1.0),
     value(ph.asymmetry(with_pixel(D, 1.0, (20, 21)), r50=4.0, pixel_size=1.0))),
    ("curve_of_growth-1e308", lambda: ph.curve_of_growth(np.full((16, 16), 1e308), [3.0], 1.0),
     bad(r"enclosed mass of field overflows")),
    ("thermal_energy-1e300", lambda: ph.thermal_energy(X * 1e300, X * 1e300, 1.0),
     bad(r"thermal energy of gas and temperature overflows")),
    ("magnetic_energy-1e200", lambda: ph.magnetic_energy(X * 1e200, 1.0, 1.0),
     bad(r"magnetic energy of bfield overflows")),
    ("magnetic_energy-1e120", lambda: ph.magnetic_energy(X * 1e120, 1.0, 1.0) / 1e240,
     value(ph.magnetic_energy(X, 1.0, 1.0))),
    ("wasserstein_1-linear-2.4e308", lambda: ph.wasserstein_1(Z + 1.2e308, Z - 1.2e308, log=False),
     bad(r"Wasserstein distance of a and b overflows")),
    ("wasserstein_1-lin-1.5e308", lambda: ph.wasserstein_1(Z + 1e308, Z - 5e307, log=False), value(15e307)),
    ("w1_dex-1e300/1e-300", lambda: ph.w1_dex(X * 1e300, X * 1e-300), value(600.0)),
])  # fmt: skip

# ------------------------------------------------------------------- negative values

add_all([
    ("total_mass-negative", lambda: ph.total_mass(-X, 1.0), bad(r"surface_density has 256 negative pixel")),
    ("total_mass-allow_negative", lambda: -ph.total_mass(-X, 1.0, allow_negative=True), value(X.sum())),
    ("relative_mass_error-negative-pred", lambda: ph.relative_mass_error(-X, X), value(-2.0)),
    ("mass_log_error-negative-pred", lambda: ph.mass_log_error(-X, X), value(-10.0)),
    ("relative_mass_error-negative-true", lambda: ph.relative_mass_error(X, -X), bad(r"true has non-pos")),
    ("relative_mass_error-negative-true-pixel", lambda: ph.relative_mass_error(X, with_pixel(X, -0.1)),
     bad(r"true has 1 negative pixel")),
    ("mass_log_error-negative-true-pixel", lambda: ph.mass_log_error(X, with_pixel(X, -0.1)),
     bad(r"true has 1 negative pixel")),
    ("thermal_energy-negative-gas", lambda: ph.thermal_energy(-X, X, 1.0), bad(r"gas has 256 negative")),
    ("thermal_energy-negative-T", lambda: ph.thermal_energy(X, with_pixel(X, -1.0), 1.0),
     bad(r"temperature has 1 negative pixel")),
    ("T_mw-negative-T", lambda: ph.mass_weighted_temperature(-X * 1e7, X), bad(r"temperature has 256 neg")),
    ("T_mw-negative-gas", lambda: ph.mass_weighted_temperature(X, with_pixel(X, -1)), bad(r"gas has 1 neg")),
    ("B_mw-negative-B", lambda: ph.mass_weighted_bfield(with_pixel(X, -1e-6), X), bad(r"bfield has 1 neg")),
    ("mass_weighted_mean-signed", lambda: ph.mass_weighted_mean(-X, np.ones((16, 16))), value(-X.mean())),
    ("half_mass_radius-negative", lambda: ph.half_mass_radius(with_pixel(X, -1.0), 1.0),
     bad(r"field has 1 negative pixel")),
    ("pixel_distribution-negative", lambda: ph.pixel_distribution(with_pixel(X, -1)), bad(r"field has 1 ")),
    ("w1_dex-negative-pred", lambda: ph.w1_dex(with_pixel(X, -1.0), X), bad(r"pred has 1 negative pixel")),
    ("profile_error_dex-negative", lambda: ph.profile_error_dex(with_pixel(D, -1.0), D),
     bad(r"pred and true must be non-negative")),
])  # fmt: skip

# ------------------------------------------------------------------------- shapes

for fn_id, fn, names in [
    ("w1_dex", ph.w1_dex, "pred and true"),
    ("spectrum_log_error", ph.spectrum_log_error, "pred and true"),
    ("relative_mass_error", ph.relative_mass_error, "pred and true"),
    ("cross_power", lambda a, b: ph.cross_power(a, b, 1.0), "a and b"),
    ("mass_weighted_temperature", ph.mass_weighted_temperature, "temperature and gas"),
    ("thermal_energy", lambda a, b: ph.thermal_energy(a, b, 1.0), "gas and temperature"),
    ("center_offset", lambda a, b: ph.center_offset(a, b, 1.0), "pred and true"),
]:
    add(f"{fn_id}-(32,32)-vs-(16,32)", lambda fn=fn: fn(pos(32), pos(32)[:16]),
        bad(rf"{names} must have the same shape; got \(32, 32\) and \(16, 32\)"))  # fmt: skip
add_all([
    ("wasserstein_1-pooled-any-size", lambda: ph.wasserstein_1(X, np.stack([X, X])), value(0.0)),
    ("power_spectrum-per-map-scale", lambda: ph.power_spectrum(np.stack([X] * 3), [1.0, 2.0]),
     bad(r"per-map pixel scale of shape \(2,\) does not broadcast")),
])  # fmt: skip

# --------------------------------------------------------- arguments: apertures, radii

keyword_cases("radial_profile", lambda **kw: ph.radial_profile(X, 1.0, **kw).value, [
    ({"r_max": -1}, bad(r"r_max must be positive, got -1")),
    ({"r_max": 0.0}, bad(r"r_max must be positive")),
    ({"r_max": np.nan}, bad(r"r_max must be finite")),
    ({"r_max": 1 * u.kg}, bad(r"r_max must be a length")),
    ({"bins": 0}, bad(r"bins must be a positive integer, got 0")),
    ({"bins": 2.5}, bad(r"bins must be a positive integer")),
    ({"r_max": 800 * u.pc, "bins": 1}, value(ph.radial_profile(X, 1.0, r_max=0.8, bins=1).value)),
])  # fmt: skip
keyword_cases("asymmetry", lambda **kw: ph.asymmetry(D, **kw), [
    ({"r50": -1, "pixel_size": 1.0}, bad(r"r50 must be positive, got -1")),
    ({"r50": np.nan, "pixel_size": 1.0}, bad(r"r50 must be finite")),
    ({"r50": 2 * u.kg, "pixel_size": 1.0}, bad(r"r50 must be a length")),
    ({"r50": 4000 * u.pc, "pixel_size": 1.0}, value(ph.asymmetry(D, 1.0, r50=4.0))),
    ({"aperture": 0.0}, bad(r"aperture must be a positive")),
])  # fmt: skip
keyword_cases("clumpiness", lambda **kw: ph.clumpiness(D, **kw), [
    ({"sigma_px": 0.0}, bad(r"sigma_px must be a positive")),
    ({"inner": np.nan}, bad(r"need 0 <= inner < outer")),
])  # fmt: skip
keyword_cases("radius_enclosing", lambda **kw: ph.radius_enclosing(D, pixel_size=1.0, **kw), [
    ({"fraction": 0.0}, bad(r"fraction must be in \(0, 1\]")),
    ({"fraction": np.nan}, bad(r"fraction must be finite")),
    ({"fraction": 0.5, "aperture": -2.0}, bad(r"aperture must be positive")),
    ({"fraction": 0.5, "aperture": [1.0, 2.0]}, bad(r"aperture of shape \(2,\) does not broadcast")),
])  # fmt: skip
keyword_cases("curve_of_growth", lambda **kw: ph.curve_of_growth(D, pixel_size=1.0, **kw).mass, [
    ({"radii": [-1.0]}, bad(r"radii must be non-negative")),
    ({"radii": 1 * u.kg}, bad(r"radii must be a length")),
    ({"radii": [[1.0]]}, bad(r"radii must be a scalar or 1-D")),
    ({"radii": [0.0]}, value([0.0])),
])  # fmt: skip
keyword_cases("find_center", lambda **kw: ph.find_center(D, 1.0, **kw), [
    ({"center": "middle"}, bad(r"unknown center 'middle'")),
    ({"center": (1.0, 2.0, 3.0)}, bad(r"center must be 'image', 'com', 'peak' or \(\.\.\., 2\)")),
    ({"center": (1, 2) * u.kg}, bad(r"center must be a length")),
    ({"center": (np.nan, 0.0)}, bad(r"center must be finite")),
])  # fmt: skip
keyword_cases("magnetic_energy", lambda **kw: ph.magnetic_energy(X, **kw), [
    ({"depth": 1 * u.kg, "pixel_size": 1.0}, bad(r"depth must be a length \(e\.g\. kpc\), got unit 'kg'")),
    ({"depth": -1.0, "pixel_size": 1.0}, bad(r"depth must be positive")),
    ({"depth": np.nan, "pixel_size": 1.0}, bad(r"depth must be finite")),
    ({"depth": "1 kpc", "pixel_size": 1.0}, Raises(TypeError, r"depth must be a numeric")),
    ({"depth": 2000 * u.pc, "pixel_size": 1.0}, value(ph.magnetic_energy(X, 2.0, 1.0))),
    ({"depth": 1.0, "pixel_size": 1 * u.arcsec}, bad(r"magnetic_energy needs a physical pixel_size")),
])  # fmt: skip
keyword_cases("thermal_energy", lambda **kw: ph.thermal_energy(X, X, 1.0, **kw), [
    ({"mu": 0.0}, bad(r"mu must be a positive")),
    ({"mu": np.nan}, bad(r"mu must be a positive")),
])  # fmt: skip

# ------------------------------------------------------------------- pixel scales

for fn_id, fn in [("power_spectrum", ph.power_spectrum), ("total_mass", ph.total_mass),
                  ("half_mass_radius", ph.half_mass_radius)]:  # fmt: skip
    keyword_cases(fn_id, lambda fn=fn, **kw: fn(X, **kw), [
        ({"pixel_size": 0.0}, bad(r"pixel_size must be positive")),
        ({"pixel_size": -1.0}, bad(r"pixel_size must be positive")),
        ({"pixel_size": np.nan}, bad(r"pixel_size must be finite")),
        ({"pixel_size": np.inf}, bad(r"pixel_size must be finite")),
        ({"pixel_size": "0.1"}, Raises(TypeError, r"pixel_size must be a number")),
        ({"pixel_size": 1 * u.kg}, bad(r"pixel_size must have a length or angle unit")),
        ({}, bad(r"pixel scale unknown: pass pixel_size")),
        ({"pixel_size": 1.0, "extent": [0, 16, 0, 16]}, bad(r"either pixel_size or extent")),
        ({"extent": [-1, 1, -2, 2]}, bad(r"extent .* non-square pixels")),
        ({"extent": [1, -1, -1, 1]}, bad(r"extent must satisfy x1 > x0")),
        ({"extent": [0, 1, 2]}, bad(r"extent must be \[x0, x1, y0, y1\]")),
    ])  # fmt: skip
keyword_cases("power_spectrum", lambda **kw: ph.power_spectrum(X, **kw).power, [
    ({"pixel_size": 1e-320}, bad(r"wavenumbers .* overflows .* pixel_size")),
    ({"pixel_size": 1e300}, bad(r"overflows.*pixel_size")),
    ({"pixel_size": 1e100}, value(P1 * 1e200)),
    ({"pixel_size": 1.0, "log_bins": 0}, bad(r"log_bins must be a positive integer")),
    ({"pixel_size": 1.0, "window": "hamming"}, bad(r"unknown window 'hamming'")),
    ({"pixel_size": 1.0, "window": "tukey", "alpha": 2.0}, bad(r"alpha must be in \[0, 1\]")),
])  # fmt: skip

# ---------------------------------------------------------------- k ranges, options

keyword_cases("spectrum_log_error", lambda **kw: ph.spectrum_log_error(X, Y, **kw), [
    ({"k_range": (5.0, 2.0)}, bad(r"k_range must satisfy 0 <= lo < hi")),
    ({"k_range": (4.0, 4.0)}, bad(r"k_range must satisfy")),
    ({"k_range": (np.nan, None)}, bad(r"k_range must satisfy")),
    ({"k_range": (-1.0, None)}, bad(r"k_range must satisfy")),
    ({"k_range": (3.0,)}, bad(r"k_range must be \(lo, hi\)")),
    ({"k_range": "abc"}, bad(r"k_range must be \(lo, hi\)")),
    ({"k_range": (20.0, 30.0)}, bad(r"k_range .* selects no bins")),
])  # fmt: skip
S1 = ph.power_spectrum(X, 1.0)
add_all([
    ("power_law_slope-k_min-kg", lambda: ph.power_law_slope(ph.power_spectrum(X * u.K, 1 * u.kpc), 1 * u.kg),
     bad(r"k_min must be a wavenumber")),
    ("power_law_slope-k_min>k_max", lambda: ph.power_law_slope(S1, 2.0, 1.0), bad(r"k_min must be below")),
    ("power_law_slope-k_max-nan", lambda: ph.power_law_slope(S1, None, np.nan), bad(r"k_max must be a num")),
    ("dimensionless_power-overflows", lambda: ph.dimensionless_power(ph.power_spectrum(X * 1e154, 1e-8)),
     bad(r"k² P overflows")),
    ("transfer_function-typo", lambda: ph.transfer_function(X, X, 1.0, windw="hann"),
     Raises(TypeError, r"unexpected keyword argument")),
    ("profile_error_dex-floor", lambda: ph.profile_error_dex(D, D, floor=2), bad(r"floor must be in \(0, 1")),
])  # fmt: skip

# ------------------------------------------------- dtypes, zero maps, 1×1, odd/even sizes


def parseval_excess(n: int) -> float:
    """``Σ 2 n_modes P / A − var``: the self-conjugate modes' power on even sizes, 0 on odd ones."""
    ps = ph.power_spectrum(pos(n), 1.0)
    return float(np.sum(2 * ps.n_modes * ps.power) / n**2 - pos(n).var())


def self_conjugate_power(n: int) -> float:
    f = np.fft.rfft2(pos(n), norm="ortho")
    return float(sum(abs(f[i, j]) ** 2 for i, j in ((0, n // 2), (n // 2, 0), (n // 2, n // 2)))) / n**2


def nyquist_row_mode(n: int) -> float:
    """P of ``(−1)^row``, the single mode (N/2, 0) of an even map, in its bin N/2."""
    return ph.power_spectrum(np.cos(np.pi * np.arange(n))[:, None] * np.ones(n), 1.0).power[n // 2 - 1]


add_all([
    ("bool-map", lambda: ph.power_spectrum(X > 1, 1).power, value(ph.power_spectrum(1.0 * (X > 1), 1).power)),
    ("int-map", lambda: ph.total_mass(np.ones((16, 16), dtype=np.int64), 0.5), value(64.0)),
    ("float16-map", lambda: ph.total_mass(np.ones((16, 16), dtype=np.float16), 1.0), value(256.0)),
    ("torch-complex", lambda: ph.total_mass(torch.ones(4, 4, dtype=torch.complex64), 1.0),
     Raises(TypeError, r"surface_density must be real-valued")),
    ("torch-float32", lambda: ph.total_mass(torch.ones(4, 4), 1.0).dtype == torch.float64, value(1.0)),
    ("power_spectrum-zero-map", lambda: ph.power_spectrum(Z, 1.0).power.max(), value(0.0)),
    ("transfer_function-zero-true", lambda: ph.transfer_function(X, Z, 1.0), bad(r"true has no fluctuation")),
    ("correlation-zero-pred", lambda: ph.correlation_coefficient(Z, X, 1.0), bad(r"pred has no fluctuation")),
    ("spectrum_log_error-zero-pred", lambda: ph.spectrum_log_error(Z, X), value(10.0)),
    ("spectrum_log_error-constant-true", lambda: ph.spectrum_log_error(X, Z + 1), bad(r"true has no fluct")),
    ("half_mass_radius-zero", lambda: ph.half_mass_radius(Z, 1.0), bad(r"field is all zero")),
    ("T_mw-zero-gas", lambda: ph.mass_weighted_temperature(X, Z), bad(r"gas is all zero")),
    ("pixel_distribution-zero", lambda: ph.pixel_distribution(Z), bad(r"field has no positive pixels")),
    ("w1_dex-zero-pred", lambda: ph.w1_dex(Z, X), bad(r"pred has no positive pixels")),
    ("asymmetry-zero", lambda: ph.asymmetry(Z, 1.0, r50=2.0), bad(r"field is zero inside")),
    ("total_mass-zero", lambda: ph.total_mass(Z, 1.0), value(0.0)),
    ("find_center-com-zero", lambda: ph.find_center(Z, 1.0), bad(r"field is all zero")),
    ("power_spectrum-1x1", lambda: ph.power_spectrum(np.ones((1, 1)), 1.0),
     bad(r"field of shape \(1, 1\) has no Fourier mode")),
    ("total_mass-1x1", lambda: ph.total_mass(np.full((1, 1), 5.0), 2.0), value(20.0)),
    ("radial_profile-1x1", lambda: ph.radial_profile(np.full((1, 1), 5.0), 1.0).value, value([5.0])),
    ("radial_profile-2x2", lambda: ph.radial_profile(np.arange(4.0).reshape(2, 2), 1.0).value, value([1.5])),
    ("half_mass_radius-1x1", lambda: ph.half_mass_radius(np.full((1, 1), 5.0), 1.0),  # πR² = π/8
     value(math.sqrt(1 / 8), rel=1e-9)),
    ("asymmetry-1x1", lambda: ph.asymmetry(np.full((1, 1), 2.0)), value(0.0)),
    ("power_spectrum-1x8-nyquist", lambda: ph.power_spectrum(np.cos(np.pi * np.arange(8))[None], 1).power,
     value([0, 0, 0, 8.0], atol=1e-14)),
    ("power_spectrum-parseval-9x9", lambda: parseval_excess(9), value(0.0, atol=1e-13)),
    ("power_spectrum-parseval-8x8", lambda: parseval_excess(8), value(self_conjugate_power(8), rel=1e-10)),
    ("power_spectrum-nyquist-8x8", lambda: nyquist_row_mode(8), value(64 / ph.mode_bins((8, 8))[1][3])),
])  # fmt: skip


# ----------------------------------------------------------------------------- runner


def _check(case: Case) -> None:
    if isinstance(case.expect, Raises):
        with pytest.raises(case.expect.error, match=case.expect.match):
            case.call()
        return
    got = case.call()
    if isinstance(got, u.Quantity):
        got = got.value
    if isinstance(got, torch.Tensor):
        got = got.cpu().numpy()
    got = np.asarray(got, dtype=float)
    assert np.all(np.isfinite(got)), f"{case.id}: non-finite result {got}"
    expected = np.asarray(case.expect.expected, dtype=float)
    np.testing.assert_allclose(got, expected, rtol=case.expect.rel, atol=case.expect.atol)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case) -> None:
    _check(case)


def test_the_table_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 100
