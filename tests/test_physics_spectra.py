"""Known-answer tests of the power-spectrum engine (conventions of docs/physics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from astropy import units as u
from conftest import gaussian_random_field

import physics as ph
from physics.fourier import bin_average, cpu_modes

N, L = 256, 25.0
DX = L / N


def _cosine(m: int, n: int, amp: float = 1.0, shift: int = 0) -> np.ndarray:
    x = np.arange(N) * DX
    xx, yy = np.meshgrid(x, x, indexing="ij")
    return amp * np.cos(2 * np.pi * (m * (xx - shift * DX) + n * yy) / L)


@pytest.mark.parametrize(
    ("m", "n", "n_modes", "power"), [(3, 4, 20, 7.8125), (10, 0, 34, 4.59559), (7, 7, 28, 5.58036)]
)
def test_single_cosine_lands_in_one_bin(m, n, n_modes, power):
    ps = ph.power_spectrum(_cosine(m, n), DX)
    hit = np.flatnonzero(ps.power > 1e-12 * ps.power.max())
    assert hit.tolist() == [math.floor(math.hypot(m, n)) - 1]  # DC bin dropped
    assert ps.n_modes[hit[0]] == n_modes
    assert ps.power[hit[0]] == pytest.approx(L**2 / (4 * n_modes), rel=1e-12)
    assert ps.power[hit[0]] == pytest.approx(power, rel=1e-5)


def test_white_noise_level_and_bins(rng):
    ps = ph.power_spectrum(rng.normal(size=(N, N)), DX)
    assert len(ps.k) == 181
    assert ps.k[0] == pytest.approx(0.3034, abs=1e-4)
    assert ps.n_modes[0] == 4
    assert np.average(ps.power, weights=ps.n_modes) == pytest.approx(DX**2, rel=0.02)


def test_parseval_odd_grid(rng):
    n = 255  # odd: no self-conjugate modes but DC, so the full plane is 2·n_modes
    field = rng.lognormal(size=(n, n))
    ps = ph.power_spectrum(field, 0.1)
    area = (n * 0.1) ** 2
    assert np.sum(2 * ps.n_modes * ps.power) / area == pytest.approx(field.var(), rel=1e-12)


def _pylians_pk_plane(delta: np.ndarray, box: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent reference: Pylians' ``Pk_plane`` loop over the modes, in plain numpy.

    Rows ``kxx`` (kx = kxx, or kxx − N above N//2, so kx = +N/2 on even sizes), rfft columns
    ``kyy`` (ky ≥ 0). On the columns ky = 0 and (even N) ky = N/2 the modes with kx < 0 are
    the conjugates of kept ones and are skipped; every kept mode, the self-conjugate
    Nyquist modes included, adds once to bin ``int(|k|/k_F)``. The DC bin is dropped.
    """
    grid = delta.shape[0]
    middle = grid // 2
    kmax = int(np.sqrt(2.0 * middle**2))
    fk = np.fft.rfft2(delta)  # unnormalised, like FFTW
    k_sum, p_sum, n_sum = np.zeros(kmax + 1), np.zeros(kmax + 1), np.zeros(kmax + 1)
    for kxx in range(grid):
        kx = kxx - grid if kxx > middle else kxx
        for kyy in range(middle + 1):
            ky = kyy
            if (ky == 0 or (ky == middle and grid % 2 == 0)) and kx < 0:
                continue
            k = math.sqrt(kx * kx + ky * ky)
            k_sum[int(k)] += k
            p_sum[int(k)] += abs(fk[kxx, kyy]) ** 2
            n_sum[int(k)] += 1.0
    k_sum, p_sum, n_sum = k_sum[1:], p_sum[1:], n_sum[1:]
    kf = 2 * math.pi / box
    return k_sum / n_sum * kf, p_sum / n_sum * (box / grid**2) ** 2, n_sum


@pytest.mark.parametrize("n", [2, 3, 8, 9, 32, 33, 64, 65])
def test_matches_pylians_pk_plane_on_even_and_odd_sizes(rng, n):
    """Every bin, the Nyquist ones of even sizes included, against the reference loop."""
    box = 10.0
    field = rng.lognormal(size=(n, n))
    k_ref, p_ref, n_ref = _pylians_pk_plane(field, box)
    ps = ph.power_spectrum(field, box / n)
    assert len(ps.k) == len(k_ref)
    np.testing.assert_array_equal(ps.n_modes, n_ref)
    np.testing.assert_allclose(ps.k, k_ref, rtol=1e-13)
    np.testing.assert_allclose(ps.power, p_ref, rtol=1e-11)
    # the same weights in torch, batched, and in the cross spectrum of a map with itself
    batched = ph.power_spectrum(torch.from_numpy(np.stack([field, 2 * field])), box / n)
    np.testing.assert_allclose(batched.power.numpy(), np.stack([p_ref, 4 * p_ref]), rtol=1e-11)
    np.testing.assert_allclose(ph.cross_power(field, field, box / n).cross, p_ref, rtol=1e-11)


def test_nyquist_modes_weigh_like_any_other(rng):
    """Even N: bin N/2 holds the self-conjugate (N/2, 0) and (0, N/2) among its modes, each
    weighing 1/n_modes (full-plane counting would give them half that), so Parseval's
    sum counts the three self-conjugate modes twice."""
    n, box = 16, 4.0
    x = np.arange(n)
    nyq = np.cos(np.pi * x)[:, None] * np.ones(n)[None, :]  # (−1)^row: the mode (N/2, 0) only
    ps = ph.power_spectrum(nyq, box / n)
    hit = np.flatnonzero(ps.power > 1e-20)
    assert hit.tolist() == [n // 2 - 1]
    # |F|² = N⁴ for the one mode; P = |F|² Δ² / N² / n_modes
    assert ps.power[hit[0]] == pytest.approx(n**2 * (box / n) ** 2 / ps.n_modes[hit[0]], rel=1e-13)
    field = rng.normal(size=(n, n))
    ps = ph.power_spectrum(field, box / n)
    f = np.fft.rfft2(field, norm="ortho")
    self_power = abs(f[n // 2, 0]) ** 2 + abs(f[0, n // 2]) ** 2 + abs(f[n // 2, n // 2]) ** 2
    parseval = np.sum(2 * ps.n_modes * ps.power) / box**2
    assert parseval == pytest.approx(field.var() + self_power / n**2, rel=1e-12)


def test_shifted_cosine_correlation():
    for m, expected in [(3, 0.932993), (10, 0.336890)]:
        cs = ph.cross_power(_cosine(m, 0, shift=5), _cosine(m, 0), DX)
        b = m - 1
        assert cs.r[b] == pytest.approx(expected, abs=1e-6)
        assert cs.r[b] == pytest.approx(math.cos(2 * math.pi * m * 5 / N), rel=1e-10)


def test_scaled_copy_and_sign(rng):
    x = gaussian_random_field(128, 20.0, -2.0, rng)
    t = ph.transfer_function(3.0 * x, x, 20.0 / 128)
    r = ph.correlation_coefficient(-2.0 * x, x, 20.0 / 128)
    np.testing.assert_allclose(t.value, 3.0, rtol=1e-12)
    np.testing.assert_allclose(r.value, -1.0, rtol=1e-12)
    e = ph.error_power(1.5 * x, x, 20.0 / 128)
    np.testing.assert_allclose(e.value, 0.25, rtol=1e-10)  # T² + 1 − 2T r = (T − 1)²


@pytest.mark.parametrize("alpha", [0.25, 1.0, 3.0])
def test_noise_gives_expected_r(rng, alpha):
    x = gaussian_random_field(256, L, -2.0, rng)
    noise = math.sqrt(alpha) * gaussian_random_field(256, L, -2.0, rng)
    cs = ph.cross_power(x + noise, x, DX)
    use = cs.n_modes >= 32
    expected = 1 / math.sqrt(1 + alpha)
    mean_r = np.average(cs.r[use], weights=cs.n_modes[use])
    assert mean_r == pytest.approx(expected, abs=0.01)


def test_gaussian_smoothing_transfer(rng):
    sigma = 0.1
    x = rng.normal(size=(N, N))
    ky = 2 * np.pi * np.fft.fftfreq(N, DX)[:, None]
    kx = 2 * np.pi * np.fft.fftfreq(N, DX)[None, :]
    y = np.fft.ifft2(np.fft.fft2(x) * np.exp(-(kx**2 + ky**2) * sigma**2 / 2)).real
    t = ph.transfer_function(y, x, DX)
    r = ph.correlation_coefficient(y, x, DX)
    knyq = math.pi / DX
    use = (t.k <= knyq) & (np.arange(len(t.k)) >= 2)
    np.testing.assert_allclose(t.value[use], np.exp(-(t.k[use] ** 2) * sigma**2 / 2), rtol=3.5e-3)
    assert r.value[t.k <= knyq].min() > 0.9997


def _true_binned(n: int, box: float, index: float, amp: float = 10.0) -> np.ndarray:
    dx = box / n
    modes = cpu_modes(n, n)
    ky = 2 * np.pi * np.fft.fftfreq(n, d=dx)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(n, d=dx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    return bin_average(torch.from_numpy(amp * k**index), modes).numpy()


@pytest.mark.parametrize("index", [-2.0, -3.0])
def test_grf_unbiased_and_slope(rng, index):
    reals = 40
    maps = np.stack([gaussian_random_field(N, L, index, rng) for _ in range(reals)])
    ps = ph.power_spectrum(maps, DX)  # batched
    truth = _true_binned(N, L, index)
    mean = ps.power.mean(axis=0)
    tol = 5 / np.sqrt(reals * ps.n_modes)
    assert np.all(np.abs(mean / truth - 1) < tol)
    # scatter per bin is 1/sqrt(N_modes)
    use = ps.n_modes >= 50
    frac_std = (ps.power / truth).std(axis=0)[use] * np.sqrt(ps.n_modes[use])
    assert np.median(frac_std) == pytest.approx(1.0, abs=0.1)
    # slope of one map, weighted, over [2 k_F, k_Nyq]
    kf = ph.fundamental_frequency((N, N), DX)
    fit = ph.power_law_slope(ph.PowerSpectrum(ps.k, ps.power[0], ps.n_modes), 2 * kf, math.pi / DX)
    assert abs(fit.slope - index) < 4 * max(fit.slope_error, 0.012)
    assert 0.003 < fit.slope_error < 0.05


def test_windowed_cutouts_recover_steep_slope(rng):
    big, box = 1024, 100.0
    slopes = {"none": [], "hann": []}
    for _ in range(6):
        field = gaussian_random_field(big, box, -3.0, rng)
        cut = field[:256, :256]
        for window in slopes:
            ps = ph.power_spectrum(cut, box / big, window=None if window == "none" else window)
            kf = 2 * math.pi / 25.0
            fit = ph.power_law_slope(ps, 3 * kf, math.pi / (box / big))
            slopes[window].append(float(fit.slope))
    assert np.mean(slopes["none"]) > -2.93  # the leakage the window must fix
    assert np.mean(slopes["hann"]) == pytest.approx(-3.0, abs=0.06)


def test_tukey_window_amplitude(rng):
    big, box = 1024, 100.0
    ratios = []
    truth = None
    for _ in range(6):
        field = gaussian_random_field(big, box, -2.0, rng)
        ps = ph.power_spectrum(field[:256, :256], box / big, window="tukey", alpha=0.5)
        if truth is None:
            truth = _true_binned(256, 25.0, -2.0)
        use = (ps.k >= 10 * 2 * math.pi / 25) & (ps.k < 60 * 2 * math.pi / 25)
        ratios.append(np.average(ps.power[use] / truth[use], weights=ps.n_modes[use]))
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.02)


def test_dimensionless_power_integrates_to_variance(rng):
    x = gaussian_random_field(255, 25.0, -2.5, rng)
    ps = ph.power_spectrum(x, 25.0 / 255, log_bins=None)
    d2 = ph.dimensionless_power(ps)
    np.testing.assert_allclose(d2.value, ps.k**2 * ps.power / (2 * math.pi))
    # σ² = ∫ Δ² d ln k ≈ Σ P · 2 n_modes / A for the discrete sum
    assert np.sum(2 * ps.n_modes * ps.power) / 25.0**2 == pytest.approx(x.var(), rel=1e-10)


def test_log_bins_cover_all_modes(rng):
    x = rng.normal(size=(63, 63))  # odd: every mode has a distinct conjugate
    lin = ph.power_spectrum(x, 1.0)
    log = ph.power_spectrum(x, 1.0, log_bins=12)
    assert len(log.k) <= 12 and np.all(np.diff(log.k) > 0)
    assert log.n_modes.sum() == pytest.approx(lin.n_modes.sum())
    assert np.sum(log.n_modes * log.power) == pytest.approx(np.sum(lin.n_modes * lin.power), rel=1e-12)


def test_rectangular_maps(rng):
    x = rng.normal(size=(64, 128))
    ps = ph.power_spectrum(x, 0.5)
    # k_F = 2π / (longer side = 128 · 0.5 kpc); the first bin holds |k| in [k_F, 2 k_F)
    kf = 2 * math.pi / 64.0
    assert kf <= ps.k[0] < 2 * kf
    assert np.all(ps.n_modes > 0)
    area = 64 * 128 * 0.25
    # Parseval still holds up to the few self-conjugate modes (each counted once, not twice)
    total = np.sum(2 * ps.n_modes * ps.power) / area
    assert total == pytest.approx(x.var(), rel=2e-3)


def test_units_flow_through():
    x = np.random.default_rng(0).lognormal(size=(32, 32)) * u.Msun / u.kpc**2
    ps = ph.power_spectrum(x, 100 * u.pc)
    assert ps.k.unit == 1 / u.kpc and ps.power.unit == (u.Msun / u.kpc**2) ** 2 * u.kpc**2
    np.testing.assert_allclose(ps.k.value, ph.power_spectrum(x.value, 0.1).k)
    ang = ph.power_spectrum(x.value, 1 * u.arcmin)
    assert ang.k.unit == 1 / u.rad
    fit = ph.power_law_slope(ps, 1 / u.kpc, 10 / u.kpc)
    assert np.isfinite(fit.slope)


class TestBadInput:
    def test_nan_and_inf(self):
        x = np.ones((16, 16))
        x[3, 4] = np.nan
        with pytest.raises(ValueError, match="field contains 1 NaN/Inf"):
            ph.power_spectrum(x, 1.0)
        x[3, 4] = np.inf
        with pytest.raises(ValueError, match="NaN/Inf"):
            ph.power_spectrum(torch.from_numpy(x), 1.0)

    def test_one_dimensional(self):
        with pytest.raises(ValueError, match=r"field must have shape \(\.\.\., H, W\)"):
            ph.power_spectrum(np.ones(16), 1.0)

    def test_mismatched_shapes(self):
        with pytest.raises(ValueError, match="pred and true must have the same shape"):
            ph.transfer_function(np.ones((8, 8)), np.ones((8, 9)), 1.0)

    @pytest.mark.parametrize("size", [0.0, -1.0])
    def test_non_positive_pixel_size(self, size):
        with pytest.raises(ValueError, match="pixel_size must be positive"):
            ph.power_spectrum(np.random.default_rng(0).normal(size=(8, 8)), size)

    def test_missing_pixel_scale(self):
        with pytest.raises(ValueError, match="pixel scale unknown"):
            ph.power_spectrum(np.ones((8, 8)))

    def test_all_zero_truth(self):
        with pytest.raises(ValueError, match="true has no fluctuation power"):
            ph.transfer_function(np.ones((8, 8)), np.zeros((8, 8)), 1.0)
        with pytest.raises(ValueError, match="pred has no fluctuation power"):
            ph.correlation_coefficient(np.zeros((8, 8)), np.eye(8), 1.0)

    def test_unknown_window(self):
        with pytest.raises(ValueError, match="unknown window 'hamming'"):
            ph.power_spectrum(np.eye(8), 1.0, window="hamming")

    def test_empty_and_complex(self):
        with pytest.raises(ValueError, match="empty"):
            ph.power_spectrum(np.ones((0, 8)), 1.0)
        with pytest.raises(TypeError, match="real-valued"):
            ph.power_spectrum(np.ones((8, 8), dtype=complex), 1.0)

    def test_wrong_unit_and_bad_extent(self):
        with pytest.raises(ValueError, match="length or angle unit"):
            ph.power_spectrum(np.eye(8), 1 * u.kg)
        with pytest.raises(ValueError, match="non-square pixels"):
            ph.power_spectrum(np.eye(8), extent=[-1, 1, -2, 2])


def test_paired_curve_options_are_checked(rng):
    x = rng.normal(size=(16, 16))
    hann = ph.transfer_function(2 * x, x, 1.0, window="hann")
    np.testing.assert_allclose(hann.value, 2.0, rtol=1e-12)
    with pytest.raises(TypeError, match="unexpected keyword"):
        ph.transfer_function(x, x, 1.0, windw="hann")

