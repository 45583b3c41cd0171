"""The built-in mock galaxies: deterministic files, their physics (masses, ranges, B–gas slope,
the stellar disk's analytic R50), and the data module's fallback to them."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

import physics as ph
from app.data import GalaxyDataModule, mock_key, render, sample_params, write_mock_set


class TestMock:
    def test_deterministic(self, tmp_path):
        a = write_mock_set(tmp_path / "a", galaxies=3, size=32, seed=5, progress=False)
        b = write_mock_set(tmp_path / "b", galaxies=3, size=32, seed=5, progress=False)
        c = write_mock_set(tmp_path / "c", galaxies=3, size=32, seed=6, progress=False)
        for d in ("dm", "star", "gas", "hi", "temp", "bfield"):
            (fa,), (fb,), (fc,) = (list((x / d / "hdf5").glob("*.hdf5")) for x in (a, b, c))
            with h5py.File(fa) as ha, h5py.File(fb) as hb, h5py.File(fc) as hc:
                assert np.array_equal(ha[f"{d}/images"][()], hb[f"{d}/images"][()])
                assert not np.array_equal(ha[f"{d}/images"][()], hc[f"{d}/images"][()])
                assert ha[f"{d}/images"].shape == (12, 32, 32)
                assert ha[f"{d}/metadata/0005"].attrs["units"] == hb[f"{d}/metadata/0005"].attrs["units"]

    def test_physics_of_the_mock(self):
        for gid in range(12):
            p = sample_params(gid, seed=0)
            for rot in [(0, 0), (40, 20)]:
                m = render(p, rot, 128)
                pix = 2 * p.half_extent / 128
                assert (m["hi"] <= m["gas"]).all()
                assert all((v >= 0).all() and np.isfinite(v).all() for v in m.values())
                assert 1e10 < ph.total_mass(m["dm"], pix) < 3e12
                assert 5e8 < ph.total_mass(m["star"], pix) < 2e11
                assert 5e8 < ph.total_mass(m["gas"], pix) < 2e11
                assert 1e4 < m["temp"].min() and m["temp"].max() < 3e6
                assert 1e-8 < m["bfield"].min() and m["bfield"].max() < 1e-3
                # B is a power of the gas surface density (exactly per sub-pixel; the gas-weighted
                # sub-pixel average bends it slightly)
                slope = np.polyfit(np.log10(m["gas"].ravel()), np.log10(m["bfield"].ravel()), 1)[0]
                assert slope == pytest.approx(0.6, abs=1e-3)
                fine = render(p, rot, 32, supersample=1)
                slope = np.polyfit(np.log10(fine["gas"].ravel()), np.log10(fine["bfield"].ravel()), 1)[0]
                assert slope == pytest.approx(0.6, abs=1e-9)

    def test_stellar_disk_r50_matches_analytic(self):
        from dataclasses import replace

        p = replace(sample_params(1, seed=0), bulge_fraction=0.0, star_sigma=0.0, n_clusters=0)
        star = render(p, (0, 0), 256)["star"]
        r_ap = p.half_extent

        def m_in(r: float) -> float:
            return 1 - (1 + r / p.r_d) * math.exp(-r / p.r_d)

        from scipy.optimize import brentq

        r50 = brentq(lambda r: m_in(r) - 0.5 * m_in(r_ap), 1e-3, r_ap)
        assert ph.half_mass_radius(star, 2 * r_ap / 256) == pytest.approx(r50, rel=0.02)

    def test_datamodule_falls_back_to_mock(self, tmp_path):
        dm = GalaxyDataModule(
            source="gas",
            targets=["hi", "temp"],
            size=32,
            mock_dir=str(tmp_path / "mock"),
            mock_galaxies=5,
            mock_size=64,
            batch_size=2,
        )
        dm.prepare_data()
        dm.setup("fit")
        assert (tmp_path / "mock" / mock_key(5, 64, 0) / "COMPLETE").is_file()
        assert len(dm.datasets["train"]) + len(dm.datasets["val"]) + len(dm.datasets["test"]) == 20
        b = next(iter(dm.train_dataloader()))
        assert b["target"].shape == (2, 2, 32, 32)
