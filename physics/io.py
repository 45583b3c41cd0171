"""Read a single map with its units and pixel scale from FITS, NPY or HDF5 files.

HDF5 files in the IllustrisTNG map layout (``/{domain}/images`` with per-row attribute
groups ``/{domain}/metadata/{i:04d}`` holding ``units`` and ``extent``) are understood;
files are only ever opened read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u

__all__ = ["MapFile", "read_map"]


@dataclass(frozen=True)
class MapFile:
    """A map ``(H, W)`` float64 with its unit (None if unknown) and pixel side Quantity (or None)."""

    data: np.ndarray
    unit: u.UnitBase | None
    pixel_size: u.Quantity | None
    label: str
    note: str = ""  # why ``pixel_size`` is None when the file has a scale that cannot be used
    header: Any = None  # the FITS header of the HDU read (``astropy.io.fits.Header``); None otherwise


def _read_npy(path: Path):
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    return data, None, None, path.name, "", None


def _fits_pixel(header, path: Path, pixel_unit: str | None) -> tuple[u.Quantity | None, str]:
    """Pixel side from CDELT1 (or CD1_1) and CUNIT1; ``(None, why)`` when it is not a length."""
    step = header.get("CDELT1", header.get("CD1_1"))
    if step is None:
        return None, f"{path.name}: no CDELT1/CD1_1 in the header"
    name = header.get("CUNIT1", pixel_unit)
    if name is None:
        return None, (f"{path.name}: CDELT1 = {step} has no CUNIT1, so its unit is unknown; give it with "
                      "--pixel-unit (e.g. kpc), or the pixel side with --pixel-size")  # fmt: skip
    unit = u.Unit(name, parse_strict="warn")
    if unit.physical_type != "length":
        return None, (f"{path.name}: CDELT1 = {step} {unit} is not a length (an angle needs the distance); "
                      "give the pixel side with --pixel-size")  # fmt: skip
    return abs(float(step)) * unit, ""


def _read_fits(path: Path, hdu: int | None, pixel_unit: str | None = None):
    from astropy.io import fits

    try:
        with fits.open(path, mode="readonly", memmap=False) as hdus:
            candidates = [hdus[hdu]] if hdu is not None else [h for h in hdus if h.data is not None]
            if not candidates or candidates[0].data is None:
                raise ValueError(f"{path}: no image data in the FITS file")
            h = candidates[0]
            data = np.asarray(h.data, dtype=np.float64)
            header = h.header
    except OSError as err:
        raise ValueError(f"{path}: corrupt or unreadable FITS file ({err})") from err
    unit = u.Unit(header["BUNIT"], parse_strict="warn") if "BUNIT" in header else None
    pixel, note = _fits_pixel(header, path, pixel_unit)
    return data, unit, pixel, f"{path.name}[{h.name or 0}]", note, header


def _read_hdf5(path: Path, dataset: str | None, index: int):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: corrupt or unreadable HDF5 file ({err})") from err
    with f:
        if dataset is None:
            found: list[str] = []
            f.visititems(
                lambda name, obj: (
                    found.append(name) if name.endswith("images") and isinstance(obj, h5py.Dataset) else None
                )
            )
            if not found:
                raise ValueError(f"{path}: no '<domain>/images' dataset; pass --dataset")
            dataset = found[0]
        if dataset not in f:
            raise ValueError(f"{path}: no dataset {dataset!r}")
        images = f[dataset]
        if images.ndim == 2:
            data = images[()]
        else:
            if not 0 <= index < images.shape[0]:
                raise ValueError(f"{path}:{dataset}: row {index} out of range [0, {images.shape[0]})")
            data = images[index]
        unit, pixel = None, None
        group = dataset.rsplit("/", 1)[0] if "/" in dataset else ""
        meta_key = f"{group}/metadata/{index:04d}" if group else f"metadata/{index:04d}"
        if meta_key in f:
            attrs = f[meta_key].attrs
            if "units" in attrs:
                unit = u.Unit(str(attrs["units"]), parse_strict="warn")
            if "extent" in attrs:
                ext = np.asarray(attrs["extent"], dtype=np.float64)
                ext_unit = u.Unit(str(attrs.get("units_extent", "kpc")))
                pixel = (ext[1] - ext[0]) / data.shape[-1] * ext_unit
    return np.asarray(data, dtype=np.float64), unit, pixel, f"{path.name}:{dataset}[{index}]", "", None


def read_map(
    path: str | Path, *, dataset: str | None = None, index: int = 0, hdu: int | None = None,
    pixel_unit: str | None = None,
) -> MapFile:
    """Read one 2-D map from ``.npy``, ``.fits``/``.fit``/``.fits.gz`` or ``.h5``/``.hdf5``.

    A FITS pixel scale needs CDELT1 (or CD1_1) in a length unit: CUNIT1, or ``pixel_unit``
    when the header has none. Otherwise ``pixel_size`` is None and ``note`` says why (never a
    silent default such as degrees).

    Raises:
        ValueError: missing file, unknown suffix, corrupt file, missing dataset, or a
            map that is not 2-D.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(".npy"):
        data, unit, pixel, label, note, header = _read_npy(path)
    elif name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
        data, unit, pixel, label, note, header = _read_fits(path, hdu, pixel_unit)
    elif name.endswith((".h5", ".hdf5", ".he5")):
        data, unit, pixel, label, note, header = _read_hdf5(path, dataset, index)
    else:
        raise ValueError(f"{path}: unknown map format (expected .npy, .fits or .hdf5)")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"{label}: expected a 2-D map, got shape {data.shape}")
    return MapFile(data=data, unit=unit, pixel_size=pixel, label=label, note=note, header=header)

