"""Your own maps for ``predict``: reading FITS / NPY / source-only HDF5, units, grids and errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from astropy.io import fits

from app.data.own_maps import OwnMapsDataset, distribution_warnings, find_map_files, read_own_maps
from app.data.transforms import make_transform


def _fits(path, data, bunit="solMass / kpc2", cdelt=0.5, cunit="kpc"):
    hdu = fits.PrimaryHDU(data)
    if bunit:
        hdu.header["BUNIT"] = bunit
    hdu.header["CDELT1"] = cdelt
    if cunit:
        hdu.header["CUNIT1"] = cunit
    hdu.writeto(path)
    return path


def test_fits_units_are_converted_and_the_wcs_kept(tmp_path):
    data = np.full((10, 10), 2.0)
    _fits(tmp_path / "a.fits", data, bunit="solMass / pc2", cdelt=500.0, cunit="pc")
    (m,) = read_own_maps(str(tmp_path / "a.fits"), "gas")
    np.testing.assert_allclose(m.data, 2.0e6)  # Msun/pc² → Msun/kpc²
    assert m.pixel_kpc == pytest.approx(0.5) and m.fov_kpc == pytest.approx(5.0)
    assert m.header["CDELT1"] == pytest.approx(500.0) and m.header["CUNIT1"] == "pc"


def test_npy_needs_a_unit_and_a_pixel_size(tmp_path):
    np.save(tmp_path / "b.npy", np.ones((6, 6)))
    with pytest.raises(ValueError, match=r"gives no unit .* data\.predict_unit"):
        read_own_maps(str(tmp_path / "b.npy"), "dm")
    with pytest.raises(ValueError, match=r"no pixel scale; pass data\.predict_pixel_size"):
        read_own_maps(str(tmp_path / "b.npy"), "dm", unit="solMass / kpc2")
    (m,) = read_own_maps(str(tmp_path / "b.npy"), "dm", unit="solMass / kpc2", pixel_size=0.25)
    assert m.fov_kpc == pytest.approx(1.5)


def test_source_only_hdf5_gives_every_row_and_names_a_missing_domain(tmp_path):
    path = tmp_path / "dm_only.hdf5"
    with h5py.File(path, "w") as f:
        f["dm/images"] = np.ones((3, 8, 8))
        for i in range(3):
            f.create_group(f"dm/metadata/{i:04d}").attrs.update({"units": "solMass / kpc2", "extent": [-2, 2, -2, 2]})
    maps = read_own_maps(str(path), "dm")
    assert len(maps) == 3 and {m.label for m in maps} == {f"dm_only.hdf5:dm/images[{i}]" for i in range(3)}
    assert maps[0].pixel_kpc == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"no '/gas/images' dataset for the source domain 'gas' \(found \['dm/images'\]\)"):
        read_own_maps(str(path), "gas")


def test_folders_and_globs_and_clear_errors(tmp_path):
    for name in ("x.fits", "y.fits"):
        _fits(tmp_path / name, np.ones((4, 4)))
    (tmp_path / "notes.txt").write_text("not a map")
    assert [p.name for p in find_map_files([str(tmp_path)])] == ["x.fits", "y.fits"]
    assert [p.name for p in find_map_files(str(tmp_path / "y*"))] == ["y.fits"]
    with pytest.raises(ValueError, match="names no map file"):
        find_map_files(str(tmp_path / "nothing*"))
    _fits(tmp_path / "nocunit.fits", np.ones((4, 4)), cunit=None)
    with pytest.raises(ValueError, match=r"has no CUNIT1.*--pixel-unit"):
        read_own_maps(str(tmp_path / "nocunit.fits"), "gas")
    assert read_own_maps(str(tmp_path / "nocunit.fits"), "gas", pixel_unit="kpc")[0].pixel_kpc == 0.5
    _fits(tmp_path / "rect.fits", np.ones((4, 6)))
    with pytest.raises(ValueError, match="must be square, got 4x6"):
        read_own_maps(str(tmp_path / "rect.fits"), "gas")
    _fits(tmp_path / "neg.fits", -np.ones((4, 4)))
    with pytest.raises(ValueError, match="16 negative pixel"):
        read_own_maps(str(tmp_path / "neg.fits"), "gas")
    _fits(tmp_path / "deg.fits", np.ones((4, 4)), cunit="deg")
    with pytest.raises(ValueError, match="not a length"):
        read_own_maps(str(tmp_path / "deg.fits"), "gas")
    with pytest.raises(ValueError, match="cannot be converted"):
        read_own_maps(str(tmp_path / "x.fits"), "temp")


def test_dataset_brings_maps_to_the_model_grid_and_warnings_say_by_how_much(tmp_path):
    rng = np.random.default_rng(0)
    _fits(tmp_path / "g.fits", 10 ** rng.uniform(5, 7, (30, 30)), cdelt=0.2)
    maps = read_own_maps(str(tmp_path / "g.fits"), "gas")
    transform = make_transform("gas", "log10", "log10").fit(lambda: iter([torch.from_numpy(10 ** rng.uniform(5, 7, (16, 16)))]))
    item = OwnMapsDataset(maps, 16, transform)[0]
    assert item["source"].shape == (1, 16, 16) and item["pixel_size"] == pytest.approx(6.0 / 16)
    twice = OwnMapsDataset(maps, 16, transform, samples=2)
    assert len(twice) == 2 and twice[1]["index"] == 1 and torch.equal(twice[1]["source"], item["source"])
    assert distribution_warnings(OwnMapsDataset(maps, 16, transform), (5.0, 7.0)) == []
    far = distribution_warnings(OwnMapsDataset(maps, 16, transform), (40.0, 60.0))
    assert len(far) == 1 and "field of view 6 kpc is outside the training range 40–60 kpc (by a factor 6.7)" in far[0]
    bright = read_own_maps(str(_fits(tmp_path / "bright.fits", np.full((30, 30), 1e12), cdelt=0.2)), "gas")
    (line,) = distribution_warnings(OwnMapsDataset(bright, 16, transform), None)
    assert "100.0% of pixels lie beyond 5 training standard deviations" in line


def test_writer_gives_each_maps_mean_and_spread_on_its_own_grid(tmp_path):
    from app.predict_own import write_own_predictions

    _fits(tmp_path / "a.fits", np.ones((12, 12)), cdelt=0.5)
    _fits(tmp_path / "b.fits", np.ones((20, 20)), cdelt=0.25)
    maps = read_own_maps([str(tmp_path / "a.fits"), str(tmp_path / "b.fits")], "dm")
    samples = 3
    preds = torch.stack([torch.full((1, 4, 4), 10.0 * (j // samples + 1) + j % samples) for j in range(6)])
    prov = {"checkpoint": "x.ckpt", "family": "Diffusion", "sampler": "dpmpp_2m", "steps": 10, "seed": 7}
    files = write_own_predictions(tmp_path / "out", maps, list(range(6)), preds, ["gas"], "dm", prov, samples)
    assert {f.name for f in files} == {"a.gas.fits", "b.gas.fits", "prediction.gas.hdf5"}
    with fits.open(tmp_path / "out" / "fits" / "b.gas.fits") as f:
        assert f[0].data.shape == (20, 20) and f[0].header["GALNSAMP"] == 3 and f[0].header["GALSAMP"] == "dpmpp_2m"
        np.testing.assert_allclose(f[0].data, 21.0)  # mean of 20, 21, 22
        np.testing.assert_allclose(f["STD"].data, 1.0)  # their sample standard deviation
    with h5py.File(tmp_path / "out" / "prediction.gas.hdf5") as f:
        np.testing.assert_allclose(f["gas/maps/0000"][()], 11.0)
        assert f["gas/maps/0000"].shape == (12, 12) and f["gas/maps_std/0001"].attrs["samples"] == 3
