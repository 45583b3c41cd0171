"""``python -m physics`` on HDF5, NPY and FITS files: units in the table, clear errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import h5py
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from conftest import disk_map

import physics as ph
from physics.__main__ import main
from physics.io import read_map


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _table(out: str) -> dict[str, tuple[str, str]]:
    """``{statistic: (value, unit)}`` from the rich table printed by the CLI."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 3 and cells[0] and cells[0] != "statistic":
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _close(cell: tuple[str, str], expected: float, unit: str, rel: float = 1e-5) -> None:
    """The printed value (``%.6g``) equals ``expected`` to its printed precision, in ``unit``."""
    value, printed_unit = cell
    assert printed_unit == unit
    assert float(value) == pytest.approx(expected, rel=rel)


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
    # the printed values are the library's, on the same map and pixel scale
    rows = _table(out)
    data, pixel = disk_map(64, 50.0, 3.0), 50.0 / 64
    sigma = data * u.Msun / u.kpc**2
    _close(rows["pixel size"], pixel, "kpc")
    _close(rows["total"], ph.total_mass(sigma, pixel * u.kpc).to_value(u.Msun), "solMass")
    _close(rows["R50 (map centre)"], float(ph.half_mass_radius(data, pixel)), "kpc")
    _close(rows["R90 (map centre)"], float(ph.radius_enclosing(data, 0.9, pixel)), "kpc")
    _close(rows["concentration 5 log10(R80/R20)"], float(ph.concentration(data, pixel)), "")
    _close(rows["clumpiness S (0.2-1.5 R50)"], float(ph.clumpiness(data)), "")
    _close(rows["k_F = 2pi/L"], 2 * np.pi / 50.0, "1 / kpc")
    _close(rows["k_Nyquist = pi/dx"], np.pi / pixel, "1 / kpc")
    _close(rows["mean"], data.mean(), "solMass / kpc2")
    # closed forms of the exponential disk (Σ0 = 1e9, R_d = 3 kpc): M(<25 kpc) to 2e-3, R50 to 1e-2
    r, r_d = 25.0, 3.0
    m_in = 2 * np.pi * 1e9 * r_d**2 * (1 - (1 + r / r_d) * np.exp(-r / r_d))
    assert float(rows["R50 (map centre)"][0]) == pytest.approx(5.0243, rel=1e-2)
    assert float(rows["total"][0]) == pytest.approx(m_in, rel=2e-3)  # the square adds its corners
    assert float(rows["asymmetry A (1.5 R50)"][0]) == pytest.approx(0.0, abs=1e-12)  # centred disk


def test_npy_needs_pixel_size(tmp_path, capsys):
    path = tmp_path / "map.npy"
    np.save(path, disk_map(32, 50.0, 3.0))
    assert main([str(path)]) == 2
    assert "pass --pixel-size" in capsys.readouterr().err
    assert main([str(path), "--pixel-size", "1.5625"]) == 0
    rows = _table(capsys.readouterr().out)
    data = disk_map(32, 50.0, 3.0)
    _close(rows["pixel size"], 1.5625, "kpc")
    _close(rows["total"], data.sum() * 1.5625**2, "kpc2")  # no map unit: [map]·kpc²
    _close(rows["R50 (map centre)"], float(ph.half_mass_radius(data, 1.5625)), "kpc")
    slope = ph.power_law_slope(ph.power_spectrum(data, 1.5625), 2 * 2 * np.pi / 50.0, np.pi / 1.5625).slope
    assert float(rows["P(k) slope over [2 k_F, k_Nyq]"][0]) == pytest.approx(float(slope), abs=1e-4)


def test_constant_map_values(tmp_path, capsys):
    """A known-answer map: constant Σ = 2 on 16² pixels of 0.5 kpc → M = 2·64 kpc², no spectrum."""
    path = tmp_path / "flat.npy"
    np.save(path, np.full((16, 16), 2.0))
    assert main([str(path), "--pixel-size", "0.5", "--unit", "solMass / kpc2"]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["shape"] == ("16 x 16", "pixel")
    _close(rows["field of view"], 8.0, "kpc")
    _close(rows["minimum"], 2.0, "solMass / kpc2")
    _close(rows["maximum"], 2.0, "solMass / kpc2")
    _close(rows["total"], 128.0, "solMass")
    _close(rows["zero-pixel fraction"], 0.0, "")
    _close(rows["median of positive pixels (log10)"], np.log10(2.0), "dex(solMass / kpc2)", rel=1e-4)
    _close(rows["asymmetry A (1.5 R50)"], 0.0, "")
    assert "k_F = 2pi/L" not in rows  # a constant map has no fluctuation power


def test_fits_header_units(tmp_path, capsys):
    path = tmp_path / "map.fits"
    hdu = fits.PrimaryHDU(disk_map(32, 50.0, 3.0))
    hdu.header["BUNIT"] = "solMass / kpc2"
    hdu.header["CDELT1"] = 1.5625
    hdu.header["CUNIT1"] = "kpc"
    hdu.writeto(path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "solMass" in out
    rows = _table(out)
    _close(rows["pixel size"], 1.5625, "kpc")
    sigma = disk_map(32, 50.0, 3.0) * u.Msun / u.kpc**2
    _close(rows["total"], ph.total_mass(sigma, 1.5625 * u.kpc).to_value(u.Msun), "solMass")


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.hdf5"
    path.write_bytes(b"\x89HDF\r\n\x1a\nthis is not really hdf5")
    proc = subprocess.run([sys.executable, "-m", "physics", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "corrupt or unreadable HDF5" in proc.stderr and "broken.hdf5" in proc.stderr


def test_fits_without_a_length_unit_is_an_error_with_the_fix(tmp_path, capsys):
    hdu = fits.PrimaryHDU(np.ones((8, 8)))
    hdu.header["BUNIT"] = "solMass / kpc2"
    hdu.header["CDELT1"] = 0.5  # no CUNIT1: never read as degrees
    path = tmp_path / "nocunit.fits"
    hdu.writeto(path)
    assert main([str(path)]) == 2
    assert "CDELT1 = 0.5 has no CUNIT1" in capsys.readouterr().err and "--pixel-unit" in read_map(path).note
    assert main([str(path), "--pixel-unit", "kpc"]) == 0
    rows = _table(capsys.readouterr().out)
    _close(rows["total"], 64 * 0.25, "solMass")  # 64 pixels of 1 Msun/kpc² × (0.5 kpc)²
    hdu.header["CUNIT1"] = "deg"
    hdu.writeto(path, overwrite=True)
    assert main([str(path)]) == 2 and "is not a length" in capsys.readouterr().err
