"""Known answers of the bin-level helpers in ``physics.binned`` (guarded ratio, floored log ratio, r)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import physics as ph
from physics.binned import POWER_RATIO_FLOOR


def test_floor_is_one_definition():
    assert ph.POWER_RATIO_FLOOR == POWER_RATIO_FLOOR == 1e-10


def test_guarded_ratio_known_values_torch():
    num = torch.tensor([6.0, 1.0, 5.0, -3.0], dtype=torch.float64)
    den = torch.tensor([3.0, 0.0, -1.0, 4.0], dtype=torch.float64)
    out = ph.guarded_ratio(num, den, -7.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert out.tolist() == [2.0, -7.0, -7.0, -0.75]
    nan_fill = ph.guarded_ratio(num, den, math.nan)
    assert torch.isnan(nan_fill[1:3]).all() and nan_fill[0] == 2.0


def test_guarded_ratio_keeps_dtype_broadcasts_and_treats_nan_as_empty():
    num = torch.ones(2, 3, dtype=torch.float32)
    den = torch.tensor([2.0, 0.0, math.nan], dtype=torch.float32)
    out = ph.guarded_ratio(num, den, 0.0)
    assert out.dtype == torch.float32 and out.shape == (2, 3)
    assert out[0].tolist() == [0.5, 0.0, 0.0]


def test_guarded_ratio_numpy_in_numpy_out():
    out = ph.guarded_ratio(np.array([1.0, 2.0]), np.array([4.0, 0.0]), np.nan)
    assert isinstance(out, np.ndarray)
    assert out[0] == 0.25 and np.isnan(out[1])
    assert ph.guarded_ratio(3.0, 2.0, 0.0) == 1.5


def test_log_power_ratio_known_values_and_floor():
    pp = torch.tensor([100.0, 1.0, 0.0, 3.0, 1e-30], dtype=torch.float64)
    pt = torch.tensor([1.0, 1000.0, 5.0, 0.0, 1.0], dtype=torch.float64)
    out = ph.log_power_ratio(pp, pt)
    assert out[0].item() == pytest.approx(2.0, abs=1e-15)
    assert out[1].item() == pytest.approx(-3.0, abs=1e-15)
    assert out[2].item() == pytest.approx(-10.0, abs=1e-15)  # no power: floored at 1e-10
    assert math.isnan(out[3].item())  # empty truth: undefined
    assert out[4].item() == pytest.approx(math.log10(POWER_RATIO_FLOOR), abs=1e-15)
    assert np.allclose(ph.log_power_ratio(np.array([10.0, 0.0]), np.array([1.0, 1.0])), [1.0, -10.0])
    assert ph.log_power_ratio(1.0, 10.0) == pytest.approx(-1.0)


def test_correlation_from_power_known_values():
    # a map and 2x itself: P_b = 4 P_a, P_x = 2 P_a -> r = 1; against -x: r = -1
    pa = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    r = ph.correlation_from_power(2 * pa, pa, 4 * pa, empty=0.0)
    assert r.tolist() == [1.0, 1.0, 0.0]
    assert ph.correlation_from_power(-pa[:2], pa[:2], pa[:2]).tolist() == [-1.0, -1.0]
    assert math.isnan(ph.correlation_from_power(pa, pa, torch.zeros(3, dtype=torch.float64))[0].item())
    # uncorrelated halves: P_x = 0.5 sqrt(P_a P_b) -> r = 0.5
    assert ph.correlation_from_power(np.array([3.0]), np.array([4.0]), np.array([9.0]))[0] == pytest.approx(0.5)


def test_helpers_match_the_spectral_functions(rng):
    a = rng.normal(size=(32, 32))
    b = a + rng.normal(size=(32, 32))
    cs = ph.cross_power(a, b, 1.0)
    np.testing.assert_array_equal(cs.r, ph.correlation_from_power(cs.cross, cs.power_a, cs.power_b))
    t = ph.transfer_function(a, b, 1.0)
    np.testing.assert_allclose(t.value, np.sqrt(ph.guarded_ratio(cs.power_a, cs.power_b, np.nan)), rtol=1e-14)
    k_over_kf, _ = ph.mode_bins(a.shape)
    use = (k_over_kf >= 3) & (k_over_kf <= 8)
    expected = np.mean(np.abs(ph.log_power_ratio(cs.power_a[use], cs.power_b[use])))
    assert ph.spectrum_log_error(a, b) == pytest.approx(expected, rel=1e-12)


def test_power_of_two_scaling_is_exact_over_the_whole_range():
    """``physics._finite``: the scaling behind the overflow guards is exact, in any number of steps."""
    from physics._finite import map_exponent, split_pow2, times_pow2

    n = torch.arange(-1074, 1024)
    ones = torch.ones(n.numel(), dtype=torch.float64)
    np.testing.assert_array_equal(times_pow2(ones, n).numpy(), 2.0 ** n.numpy())
    x = torch.tensor([1.5, -3.0, 1e-300, 5e-324, 0.0], dtype=torch.float64)
    tiny = torch.tensor([-(2.0**-1000), 1.5 * 2.0**-1010], dtype=torch.float64)
    huge = torch.tensor([-(2.0**1000), 1.5 * 2.0**990], dtype=torch.float64)
    np.testing.assert_array_equal(times_pow2(tiny, 2000).numpy(), huge.numpy())  # in two steps of 2^1000
    np.testing.assert_array_equal(times_pow2(huge, -2000).numpy(), tiny.numpy())
    assert times_pow2(torch.tensor([1.0], dtype=torch.float64), 1024).isinf().all()
    m, e = split_pow2(x)
    np.testing.assert_array_equal(times_pow2(m, e).numpy(), x.numpy())
    assert bool(((m.abs() >= 0.5) & (m.abs() < 1) | (x == 0)).all())
    maps = torch.tensor([[[1e308, -3.0]], [[0.0, 0.0]], [[5e-324, 0.0]]], dtype=torch.float64)
    scaled = times_pow2(maps, -map_exponent(maps)[:, None, None])
    np.testing.assert_array_equal(scaled.abs().amax(dim=(-2, -1)).numpy() >= 0.5, [True, False, True])
    assert bool((scaled.abs() < 1).all())
