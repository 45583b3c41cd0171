"""``python -m physics`` on HDF5, NPY and FITS files: units in the table, clear errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import h5py
import numpy as np
from astropy.io import fits
from conftest import disk_map

from physics.__main__ import main


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hdf5_summary_has_units_and_leaves_file_untouched(tmp_path, capsys):
    path = tmp_path / "20250101-tng50-1.99.2D.gas.0000.0001.hdf5"
    with h5py.File(path, "w") as f:
        f["gas/images"] = disk_map(64, 50.0, 3.0)[None]
        g = f.create_group("gas/metadata/0000")
        g.attrs["units"] = "solMass / kpc2"
        g.attrs["extent"] = [-25.0, 25.0, -25.0, 25.0]
        g.attrs["units_extent"] = "kpc"
    before = _sha(path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "solMass" in out and "kpc" in out and "R50" in out
    assert _sha(path) == before


def test_npy_needs_pixel_size(tmp_path, capsys):
    path = tmp_path / "map.npy"
    np.save(path, disk_map(32, 50.0, 3.0))
    assert main([str(path)]) == 2
    assert "pass --pixel-size" in capsys.readouterr().err
    assert main([str(path), "--pixel-size", "1.5625"]) == 0


def test_fits_header_units(tmp_path, capsys):
    path = tmp_path / "map.fits"
    hdu = fits.PrimaryHDU(disk_map(32, 50.0, 3.0))
    hdu.header["BUNIT"] = "solMass / kpc2"
    hdu.header["CDELT1"] = 1.5625
    hdu.header["CUNIT1"] = "kpc"
    hdu.writeto(path)
    assert main([str(path)]) == 0
    assert "solMass" in capsys.readouterr().out


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.hdf5"
    path.write_bytes(b"\x89HDF\r\n\x1a\nthis is not really hdf5")
    proc = subprocess.run([sys.executable, "-m", "physics", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "corrupt or unreadable HDF5" in proc.stderr and "broken.hdf5" in proc.stderr
