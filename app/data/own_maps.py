"""A scientist's own maps, for ``predict``: FITS, NPY or source-only TNG-layout HDF5.

Files, folders and globs are read (read-only) into ``OwnMap`` records in the source
domain's unit with their pixel side in kpc. ``OwnMapsDataset`` brings each map to the
model's ``S × S`` grid by its field of view (``area_resample``: the mass is kept) and
normalises it with the checkpoint's fitted source transform; the writer resamples the
prediction back onto the input's own grid.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from astropy import units as u
from torch.utils.data import Dataset

from app.data.domains import get_domain
from app.data.resize import area_resample
from app.data.transforms import MapTransform
from physics.io import read_map

__all__ = ["MAP_SUFFIXES", "OwnMap", "OwnMapsDataset", "distribution_warnings", "find_map_files", "read_own_maps"]

log = logging.getLogger(__name__)

MAP_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".npy", ".h5", ".hdf5", ".he5")


@dataclass(frozen=True)
class OwnMap:
    """One input map: ``data`` ``(H, H)`` float64 in the source domain's unit, its pixel side
    [kpc], a ``label`` (file, dataset, row), the file ``path`` and, for FITS, the header
    cards to carry over (WCS and friends)."""

    data: np.ndarray
    pixel_kpc: float
    label: str
    path: Path
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def fov_kpc(self) -> float:
        """Field of view (side) [kpc]."""
        return self.pixel_kpc * self.data.shape[-1]


def _is_map(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(MAP_SUFFIXES)


def find_map_files(patterns: list[str] | tuple[str, ...] | str) -> list[Path]:
    """The map files named by ``patterns``: files, folders (their map files, sorted) and globs.

    Raises:
        ValueError: a pattern that names no map file.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    if not patterns:
        raise ValueError("data.predict_maps: give at least one file, folder or glob")
    out: list[Path] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _is_map(p))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(p for p in map(Path, glob.glob(str(path))) if _is_map(p))
        if not found:
            raise ValueError(f"data.predict_maps: {pattern!r} names no map file ({', '.join(MAP_SUFFIXES)})")
        out += [p for p in found if p not in out]
    return out


def _hdf5_rows(path: Path, source: str) -> int:
    try:
        with h5py.File(path, "r") as f:
            if f"{source}/images" not in f:
                found = []
                f.visititems(lambda name, obj: found.append(name) if name.endswith("images") else None)
                raise ValueError(f"{path}: no '/{source}/images' dataset for the source domain {source!r} "
                                 f"(found {found or 'none'})")  # fmt: skip
            images = f[f"{source}/images"]
            return 1 if images.ndim == 2 else int(images.shape[0])
    except OSError as err:
        raise ValueError(f"{path}: corrupt or unreadable HDF5 file ({err})") from err


def _fits_cards(header: Any) -> dict[str, Any]:
    """WCS and descriptive cards of an input's FITS header, to copy into the prediction's header."""
    from astropy.wcs import WCS

    if header is None:
        return {}
    cards = dict(WCS(header).to_header())
    cards.update({key: header[key] for key in ("CUNIT1", "CUNIT2", "CDELT1", "CDELT2", "OBJECT") if key in header})
    return cards


def _one(path: Path, source: str, unit: str | None, pixel_kpc: float | None, pixel_unit: str | None,
         index: int = 0) -> OwnMap:  # fmt: skip
    domain = get_domain(source)
    hdf5 = path.name.lower().endswith((".h5", ".hdf5", ".he5"))
    m = read_map(path, dataset=f"{source}/images" if hdf5 else None, index=index, pixel_unit=pixel_unit)
    given = u.Unit(unit) if unit else m.unit
    if given is None:
        raise ValueError(f"{m.label}: the file gives no unit for the {source} map; pass data.predict_unit "
                         f"(the model's is '{domain.unit}')")  # fmt: skip
    try:
        data = (m.data * given).to_value(u.Unit(domain.unit))
    except u.UnitConversionError:
        raise ValueError(f"{m.label}: unit '{given}' cannot be converted to the {source} unit "
                         f"'{domain.unit}'") from None  # fmt: skip
    if pixel_kpc is None:
        if m.pixel_size is None:
            raise ValueError(m.note or f"{m.label}: the file gives no pixel scale; pass data.predict_pixel_size [kpc]")
        pixel_kpc = float(m.pixel_size.to_value(u.kpc))
    h, w = data.shape
    if h != w:
        raise ValueError(f"{m.label}: maps must be square, got {h}x{w}")
    if not np.isfinite(data).all():
        raise ValueError(f"{m.label}: {int((~np.isfinite(data)).sum())} NaN/Inf pixel(s)")
    if (data < 0).any():
        raise ValueError(f"{m.label}: {int((data < 0).sum())} negative pixel(s) in a {source} map")
    return OwnMap(data=data, pixel_kpc=pixel_kpc, label=m.label, path=path, header=_fits_cards(m.header))


def read_own_maps(
    patterns: list[str] | str, source: str, *, unit: str | None = None, pixel_size: float | None = None,
    pixel_unit: str | None = None,
) -> list[OwnMap]:  # fmt: skip
    """Every map named by ``patterns`` (every row of a TNG-layout HDF5 file's ``/{source}/images``),
    in the source domain's unit. ``unit`` and ``pixel_size`` [kpc] override the files';
    ``pixel_unit`` is the length unit of a FITS CDELT1 without CUNIT1.

    Raises:
        ValueError: naming the file, for a missing dataset, unit or pixel scale, a unit that
            does not convert, a non-square map, NaN/Inf or negative pixels.
    """
    maps: list[OwnMap] = []
    for path in find_map_files(patterns):
        hdf5 = path.name.lower().endswith((".h5", ".hdf5", ".he5"))
        rows = _hdf5_rows(path, source) if hdf5 else 1
        maps += [_one(path, source, unit, pixel_size, pixel_unit, i) for i in range(rows)]
    log.info("own maps: %d map(s) from %d file(s)", len(maps), len({m.path for m in maps}))
    return maps


class OwnMapsDataset(Dataset):
    """Own maps on the model's grid, each ``samples`` times: item ``j`` is map ``j // samples``
    with ``source`` ``(1, S, S)`` float32 normalised, ``index`` ``j`` (which seeds the sampler's
    noise, so the repeats are independent samples) and ``pixel_size`` [kpc] on that grid."""

    def __init__(self, maps: list[OwnMap], size: int, transform: MapTransform, samples: int = 1) -> None:
        if samples < 1:
            raise ValueError(f"data.predict_samples must be >= 1, got {samples}")
        self.maps, self.size, self.transform, self.samples = maps, size, transform, samples
        # each map on the model's grid, normalised, once (not per sample, not again for the warnings)
        self.normalised = [transform.forward(area_resample(torch.from_numpy(m.data), (size, size))) for m in maps]

    def __len__(self) -> int:
        return len(self.maps) * self.samples

    def __getitem__(self, j: int) -> dict[str, Any]:
        i = j // self.samples
        m = self.maps[i]
        return {"source": self.normalised[i][None].float(), "index": j,
                "pixel_size": torch.tensor(m.fov_kpc / self.size, dtype=torch.float64)}  # fmt: skip


def distribution_warnings(
    dataset: OwnMapsDataset, train_fov: tuple[float, float] | None, z_max: float = 5.0
) -> list[str]:
    """What in ``dataset``'s maps is unlike the training data, and by how much: fields of view
    outside the training range ``train_fov`` [kpc], and pixels beyond ``z_max`` training
    standard deviations of the source transform (its normalised maps)."""
    out: list[str] = []
    for m, z in zip(dataset.maps, dataset.normalised, strict=True):
        if train_fov is not None and not train_fov[0] / 1.5 <= m.fov_kpc <= train_fov[1] * 1.5:
            out.append(f"{m.label}: field of view {m.fov_kpc:.3g} kpc is outside the training range "
                       f"{train_fov[0]:.3g}–{train_fov[1]:.3g} kpc (by a factor "
                       f"{max(train_fov[0] / m.fov_kpc, m.fov_kpc / train_fov[1]):.2g})")  # fmt: skip
        beyond = float((z.abs() > z_max).double().mean())
        if beyond > 0:
            out.append(f"{m.label}: {beyond:.1%} of pixels lie beyond {z_max:g} training standard deviations "
                       f"(up to {float(z.abs().max()):.3g}); the values are unlike the training maps")  # fmt: skip
    return out
