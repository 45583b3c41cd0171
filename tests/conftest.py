"""Shared test helpers: seeded random fields, analytic maps and the small mock set."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from app.data.mock_set import write_mock_set


def gaussian_random_field(n: int, box: float, index: float, rng: np.random.Generator, amp: float = 10.0):
    """Periodic GRF on ``n²`` pixels of side ``box`` [kpc] with ``P(k) = amp·k^index``.

    Built as FFT(real white noise)·sqrt(P/A_pix) so that the Hermitian symmetry is exact
    (filling rfft slots with independent complex Gaussians would halve the ky=0 power).
    """
    dx = box / n
    ky = 2 * np.pi * np.fft.fftfreq(n, d=dx)[:, None]
    kx = 2 * np.pi * np.fft.fftfreq(n, d=dx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = np.inf
    power = amp * k**index
    white = rng.normal(size=(n, n))
    return np.fft.ifft2(np.fft.fft2(white, norm="ortho") * np.sqrt(power / dx**2), norm="ortho").real


def disk_map(n: int, box: float, r_d: float, sigma0: float = 1e9, supersample: int = 8) -> np.ndarray:
    """Exponential disk ``Σ0 exp(-R/R_d)`` averaged over ``supersample²`` sub-pixels."""
    m = n * supersample
    x = (np.arange(m) + 0.5) * box / m - box / 2
    r = np.hypot(*np.meshgrid(x, x, indexing="ij"))
    return (sigma0 * np.exp(-r / r_d)).reshape(n, supersample, n, supersample).mean(axis=(1, 3))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def mock_dir(tmp_path_factory) -> Path:
    """A mock set of 8 galaxies at 32² (seed 0), written once per test session; tests only read it."""
    logging.getLogger("app").setLevel(logging.ERROR)
    return write_mock_set(tmp_path_factory.mktemp("mock") / "set", galaxies=8, size=32, seed=0, progress=False)
