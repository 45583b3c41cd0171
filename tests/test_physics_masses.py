"""Integrated quantities, pixel distributions, CAS morphology and paired scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from astropy import constants as const
from astropy import units as u
from conftest import disk_map, gaussian_random_field

import physics as ph
from physics.morphology import gaussian_blur


def test_total_mass_of_constant_map():
    assert ph.total_mass(np.ones((512, 512)), 0.1) == pytest.approx(2621.44, rel=1e-12)
    q = ph.total_mass(np.ones((512, 512)) * u.Msun / u.kpc**2, 100 * u.pc)
    assert q.unit == u.Msun and q.value == pytest.approx(2621.44)


def test_cmd_units_convert_to_msun_per_kpc2():
    h = 0.67
    unit = (u.Msun / h) / (u.Mpc / h) ** 2
    field = np.full((4, 4), 1e10) * unit
    expected = 1e10 * h * 1e-6
    assert field.to_value(u.Msun / u.kpc**2)[0, 0] == pytest.approx(expected)
    m = ph.total_mass(field, (25 / 256) * u.Mpc / h)
    assert m.to_value(u.Msun) == pytest.approx(1e10 * 16 * (25 / 256) ** 2 / h, rel=1e-10)


def test_mass_weighted_temperature_two_phases():
    gas = np.ones((8, 8))
    temp = np.full((8, 8), 1e4)
    gas[:, :4] = 3.0
    temp[:, :4] = 1e6
    expected = (3 * 1e6 + 1 * 1e4) / 4
    assert ph.mass_weighted_temperature(temp, gas) == pytest.approx(expected)
    assert ph.mass_weighted_temperature(np.full((8, 8), 5e5), gas) == pytest.approx(5e5)
    tq = ph.mass_weighted_temperature(temp * u.K, gas)
    assert tq.unit == u.K


def test_thermal_and_magnetic_energy():
    gas = np.full((10, 10), 1e7)  # Msun/kpc²
    temp = np.full((10, 10), 1e6)  # K
    e = ph.thermal_energy(gas, temp, 0.5, mu=0.6)
    mass = 1e7 * 100 * 0.25 * u.Msun
    expected = (1.5 * mass * const.k_B * 1e6 * u.K / (0.6 * const.m_p)).to_value(u.erg)
    assert e == pytest.approx(expected, rel=1e-10)
    b = np.full((10, 10), 1e-6)  # G
    eb = ph.magnetic_energy(b, 2.0, 0.5)
    volume = (100 * 0.25 * 2.0 * u.kpc**3).to_value(u.cm**3)
    assert eb == pytest.approx(1e-12 / (8 * math.pi) * volume, rel=1e-10)
    assert ph.magnetic_energy(b, 2 * u.kpc, 0.5 * u.kpc).unit == u.erg


def test_pixel_distribution_and_zero_fraction(rng):
    x = 10 ** rng.normal(3.0, 0.5, size=(2, 64, 64))
    x[:, :8, :] = 0.0
    dist = ph.pixel_distribution(x, 40)
    np.testing.assert_allclose(dist.zero_fraction, 8 / 64)
    widths = np.diff(dist.edges)
    np.testing.assert_allclose((dist.density * widths).sum(-1), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="field has 1 negative pixel"):
        x[0, 20, 20] = -1.0
        ph.pixel_distribution(x)


@pytest.mark.parametrize("edges", [(-1.0, 12.0, 401), (0.0, 1.0, 7), (-3.0, 3.0, 2)])
def test_histogram_bins_equal_searchsorted_at_and_around_every_edge(edges):
    """Evenly spaced edges are indexed arithmetically (``physics.distributions._bin_index``): the
    bins equal ``searchsorted(right=True) − 1`` for values on every edge, one ulp either side,
    random values and far outside; uneven edges take the search itself."""
    from physics.distributions import _bin_index

    e = torch.linspace(*edges, dtype=torch.float64)
    g = torch.Generator().manual_seed(len(e))
    v = torch.cat([
        e, torch.nextafter(e, e + 1), torch.nextafter(e, e - 1),
        torch.rand(20_000, generator=g, dtype=torch.float64) * 2 * (e[-1] - e[0]) + 1.5 * e[0] - 0.5 * e[-1],
        torch.tensor([-1e300, 1e300, -math.inf, math.inf], dtype=torch.float64),
    ])  # fmt: skip
    assert torch.equal(_bin_index(v, e), torch.searchsorted(e, v, right=True) - 1)
    uneven = torch.tensor([0.0, 1.0, 3.0, 7.0], dtype=torch.float64)
    w = torch.rand(1000, generator=g, dtype=torch.float64) * 9 - 1
    assert torch.equal(_bin_index(w, uneven), torch.searchsorted(uneven, w, right=True) - 1)


def test_wasserstein_between_gaussians(rng):
    a = rng.normal(0.0, 1.0, size=(1, 400_000))
    b = rng.normal(0.3, 1.0, size=(1, 400_000))
    assert ph.wasserstein_1(a, b, log=False) == pytest.approx(0.3, abs=0.01)
    c = rng.normal(0.0, 2.0, size=(1, 400_000))
    assert ph.wasserstein_1(a, c, log=False) == pytest.approx(math.sqrt(2 / math.pi), abs=0.01)
    # in dex: log10 of a log-normal is normal
    la, lb = 10 ** (2 + 0.5 * a), 10 ** (2.2 + 0.5 * a)
    assert ph.wasserstein_1(la, lb) == pytest.approx(0.2, rel=1e-9)
    assert ph.ks_distance(a, a, log=False) == 0.0
    assert ph.ks_distance(a, b, log=False) == pytest.approx(math.erf(0.15 / math.sqrt(2)), abs=0.01)


def test_asymmetry_known_value():
    n = 64
    x = np.arange(n) + 0.5 - n / 2
    r = np.hypot(*np.meshgrid(x, x, indexing="ij"))
    disk = np.exp(-r / 6.0)
    assert ph.asymmetry(disk, 1.0, r50=10.0) == 0.0
    bumped = disk.copy()
    bumped[36, 40] += 0.5  # inside 1.5·R50 = 15 px
    inside = r <= 15.0
    expected = 2 * 0.5 / (disk[inside].sum() + 0.5)
    assert ph.asymmetry(bumped, 1.0, r50=10.0) == pytest.approx(expected, rel=1e-12)


def test_clumpiness_known_value():
    n = 64
    x = np.arange(n) + 0.5 - n / 2
    r = np.hypot(*np.meshgrid(x, x, indexing="ij"))
    smooth = np.exp(-(r**2) / (2 * 12.0**2))
    s0 = ph.clumpiness(smooth, 1.0, r50=12.0)
    # the 1-px blur of a smooth 12-px Gaussian leaves ~σ_b²∇²I/2 ≈ 0.4% of positive residual
    assert s0 < 5e-3
    # exact case: one clump on a constant background b, whose blur is itself
    b = 0.01
    clumpy = np.full((n, n), b)
    clumpy[32, 42] += 1.0  # r = 10 px, inside the 2.4–18 px annulus
    kernel = np.exp(-0.5 * np.arange(-4, 5) ** 2)
    centre_weight = (1 / kernel.sum()) ** 2
    ann = (r >= 0.2 * 12) & (r <= 1.5 * 12)
    expected = (1 - centre_weight) / (b * ann.sum() + 1.0)
    assert ph.clumpiness(clumpy, 1.0, r50=12.0) == pytest.approx(expected, rel=1e-12)
    blurred = gaussian_blur(torch.from_numpy(clumpy), 1.0)
    assert float(blurred.sum()) == pytest.approx(clumpy.sum(), rel=1e-3)


class TestScores:
    def test_perfect_prediction_scores_zero(self, rng):
        t = 10 ** rng.normal(size=(2, 32, 32))
        for fn in (
            ph.spectrum_log_error,
            ph.correlation_error,
            ph.relative_mass_error,
            ph.profile_error_dex,
            ph.r50_error,
            ph.w1_dex,
        ):
            np.testing.assert_allclose(fn(t, t), 0.0, atol=1e-12)

    def test_scaled_prediction_known_values(self, rng):
        t = disk_map(64, 50.0, 3.0) * (1 + 0.1 * rng.random((64, 64)))
        c = 2.0
        assert ph.spectrum_log_error(c * t, t) == pytest.approx(2 * math.log10(c), rel=1e-10)
        assert ph.correlation_error(c * t, t) == pytest.approx(0.0, abs=1e-12)
        assert ph.relative_mass_error(c * t, t) == pytest.approx(c - 1)
        assert ph.profile_error_dex(c * t, t) == pytest.approx(math.log10(c), rel=1e-10)
        assert ph.r50_error(c * t, t) == pytest.approx(0.0, abs=1e-9)
        assert ph.w1_dex(c * t, t) == pytest.approx(math.log10(c), rel=1e-9)

    def test_noise_gives_analytic_correlation_error(self, rng):
        alpha = 1.0
        x = np.stack([gaussian_random_field(128, 25.0, -2.0, rng) for _ in range(8)])
        noise = np.stack([gaussian_random_field(128, 25.0, -2.0, rng) for _ in range(8)])
        err = ph.correlation_error(x + math.sqrt(alpha) * noise, x)
        assert err.mean() == pytest.approx(1 - 1 / math.sqrt(1 + alpha), abs=0.03)

    def test_all_zero_prediction_is_scored_not_raised(self):
        t = disk_map(32, 50.0, 3.0)
        z = np.zeros_like(t)
        assert ph.spectrum_log_error(z, t) == pytest.approx(10.0)
        assert ph.correlation_error(z, t) == pytest.approx(1.0)
        assert ph.r50_error(z, t) == pytest.approx(-1.0)
        # in a batch the empty prediction scores -1 and the others are untouched by it
        both = ph.r50_error(np.stack([z, 0.5 * t, disk_map(32, 50.0, 4.0)]), np.stack([t, t, t]))
        assert both[0] == pytest.approx(-1.0) and both[1] == pytest.approx(0.0, abs=1e-12)
        assert both[2] == pytest.approx(ph.r50_error(disk_map(32, 50.0, 4.0), t), abs=1e-12) and both[2] > 0
        with pytest.raises(ValueError, match="true has no mass inside the aperture"):
            ph.r50_error(t, z)
        with pytest.raises(ValueError, match="true has non-positive total"):
            ph.relative_mass_error(t, z)
        with pytest.raises(ValueError, match="pred has no positive pixels"):
            ph.w1_dex(z, t)
