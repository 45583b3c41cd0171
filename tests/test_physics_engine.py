"""The spectrum engine behind ``physics``: its two range paths, batching and chunking, devices,
numpy/torch input (shared, never modified), per-map pixel scales."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch

import physics as ph
from physics.fourier import cpu_modes, fourier_modes


@pytest.mark.parametrize("shape", [(2, 64, 64), (2, 33, 35)])
def test_ordinary_and_rescaled_paths_agree_bitwise(rng, shape):
    """Maps and pixel scales within 2^±64 skip the power-of-two mantissas; outside they use them.

    Scaling a map by 2^a and its pixel by 2^b multiplies P by 4^(a+b) and k by 2^-b, exactly,
    whichever path each call takes (a, b from inside to far outside the ordinary range).
    """
    x = rng.lognormal(size=shape)
    ref = ph.power_spectrum(x, 1.0, window="hann")
    ref_cross = ph.cross_power(x, x**2, 1.0)
    for a, b in [(0, 0), (3, -3), (70, 0), (-70, 0), (0, 70), (0, -70), (500, -200), (-400, 300)]:
        ps = ph.power_spectrum(x * 2.0**a, 2.0**b, window="hann")
        assert np.array_equal(ps.power, ref.power * 4.0 ** (a + b)), (a, b)
        assert np.array_equal(ps.k, ref.k * 2.0**-b), (a, b)
        cs = ph.cross_power(x * 2.0**a, x**2, 2.0**b)
        assert np.array_equal(cs.cross, ref_cross.cross * 2.0**a * 4.0**b), (a, b)
        assert np.array_equal(cs.r, ref_cross.r), (a, b)


def test_numpy_and_torch_agree_batched_and_unbatched(rng):
    maps = rng.lognormal(size=(3, 2, 64, 64))
    for arr in (maps, maps[0, 0]):
        for fn in (
            lambda a: ph.power_spectrum(a, 0.3, window="hann").power,
            lambda a: ph.cross_power(a, a**0.5, 0.3).r,
            lambda a: ph.radial_profile(a, 0.3, center="com").value,
            lambda a: ph.half_mass_radius(a, 0.3),
            lambda a: ph.total_mass(a, 0.3),
            lambda a: ph.spectrum_log_error(a**1.1, a),
            lambda a: ph.pixel_distribution(a, 20).density,
            lambda a: ph.asymmetry(a),
        ):
            via_np = fn(arr)
            via_torch = fn(torch.from_numpy(arr))
            assert isinstance(via_torch, torch.Tensor)
            np.testing.assert_allclose(via_torch.numpy(), via_np, rtol=1e-10, atol=0)


def test_per_map_pixel_scale_matches_separate_calls(rng):
    maps = rng.normal(size=(3, 32, 32))
    sizes = np.array([0.1, 0.5, 2.0])
    batched = ph.power_spectrum(maps, sizes)
    assert batched.k.shape == (3, len(batched.n_modes))
    for i in range(3):
        one = ph.power_spectrum(maps[i], sizes[i])
        np.testing.assert_allclose(batched.k[i], one.k, rtol=1e-12)
        np.testing.assert_allclose(batched.power[i], one.power, rtol=1e-12)
    extents = np.array([[-s * 16, s * 16, -s * 16, s * 16] for s in sizes])
    via_extent = ph.power_spectrum(maps, extent=extents)
    np.testing.assert_allclose(via_extent.power, batched.power, rtol=1e-12)


def _tensor_fields(modes) -> dict[str, torch.Tensor]:
    return {f.name: getattr(modes, f.name) for f in dataclasses.fields(modes)}


def test_mode_cache_holds_only_cpu_tensors():
    """The binning cache is keyed without a device and built on the CPU, so it pins no GPU memory."""
    assert "device" not in inspect.signature(cpu_modes).parameters
    before = cpu_modes.cache_info().currsize
    # a non-CPU device that exists on every machine: the copy is on it, the cache is not
    on_meta = fourier_modes(20, 24, None, "meta")
    tensors = {k: v for k, v in _tensor_fields(on_meta).items() if isinstance(v, torch.Tensor)}
    assert len(tensors) == 5 and all(t.device.type == "meta" for t in tensors.values())
    # even a default-device context cannot put accelerator tensors into the cache
    with torch.device("meta"):
        cpu_modes(22, 26, 5)
    assert cpu_modes.cache_info().currsize >= before + 1
    hits = cpu_modes.cache_info().hits
    for args in ((20, 24, None), (22, 26, 5)):
        cached = cpu_modes(*args)
        assert all(t.device.type == "cpu" for t in _tensor_fields(cached).values() if isinstance(t, torch.Tensor))
    assert cpu_modes.cache_info().hits == hits + 2  # both were served from the cache
    assert fourier_modes(20, 24, None, "cpu") is cpu_modes(20, 24, None)
    if torch.cuda.is_available():
        x = torch.randn(2, 20, 24, device="cuda", dtype=torch.float64)
        ps = ph.power_spectrum(x, 1.0)
        assert ps.power.device.type == "cuda"
        assert all(t.device.type == "cpu" for t in _tensor_fields(cpu_modes(20, 24, None)).values()
                   if isinstance(t, torch.Tensor))  # fmt: skip


def test_chunked_batches_equal_map_by_map_spectra_bitwise(monkeypatch):
    """A batch is transformed a few maps at a time on the CPU: forcing 2-map chunks on a
    (5, 16, 16) batch gives each map's spectrum bit for bit, cross spectra too."""
    import physics._power as engine

    rng = np.random.default_rng(7)
    a, b = rng.lognormal(size=(5, 16, 16)), rng.lognormal(size=(5, 16, 16))
    monkeypatch.setattr(engine, "CHUNK_BYTES", 2 * 16 * 16 * 8)
    whole = ph.power_spectrum(a, 0.5).power
    cross = ph.cross_power(a, b, 0.5)
    for i in range(5):
        assert np.array_equal(whole[i], ph.power_spectrum(a[i], 0.5).power)
        one = ph.cross_power(a[i], b[i], 0.5)
        assert np.array_equal(cross.cross[i], one.cross) and np.array_equal(cross.r[i], one.r)


def test_numpy_input_is_shared_never_modified_and_read_only_or_strided_input_works():
    rng = np.random.default_rng(8)
    x = rng.lognormal(size=(3, 16, 16))
    keep = x.copy()
    ref = ph.power_spectrum(x, 0.5).power
    assert np.array_equal(x, keep)
    ro = x.copy()
    ro.flags.writeable = False
    strided = np.asfortranarray(x)[:, :, :]
    assert np.array_equal(ph.power_spectrum(ro, 0.5).power, ref)
    assert np.allclose(ph.power_spectrum(strided, 0.5).power, ref, rtol=1e-12, atol=0)
    assert np.allclose(ph.power_spectrum(x[:, ::-1, ::-1].copy()[:, ::-1, ::-1], 0.5).power, ref, rtol=1e-12, atol=0)
