"""A torch Dataset of paired galaxy maps read lazily from HDF5.

Each item is a dict with ``source`` ``(C_s, S, S)`` and ``target`` ``(C_t, S, S)`` float32
in network units (normalised), ``pixel_size`` (float64, kpc, after resizing) and the row
``index``. Files are opened read-only, once per worker process, on first use.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import h5py
import torch
from torch.utils.data import Dataset

from app.data.catalog import MapRef, PairedRow
from app.data.domains import BRIGHTNESS, get_domain
from app.data.resize import pool_to
from app.data.transforms import MapTransform

__all__ = ["MapReader", "PairedMapDataset"]


class MapReader:
    """Reads single maps in physical units (float64), with one file handle per process and an LRU cache."""

    def __init__(self, size: int, cache_bytes: int = 0, weighted_pooling: bool = True) -> None:
        self.size = size
        self.cache_bytes = cache_bytes
        self.weighted_pooling = weighted_pooling
        self._pid: int | None = None
        self._files: dict[str, h5py.File] = {}
        self._cache: OrderedDict[tuple[str, str, int], torch.Tensor] = OrderedDict()
        self._cached = 0

    def __getstate__(self) -> dict[str, Any]:  # worker processes reopen their own handles
        state = self.__dict__.copy()
        state.update(_pid=None, _files={}, _cache=OrderedDict(), _cached=0)
        return state

    def _file(self, path: str) -> h5py.File:
        if self._pid != os.getpid():
            self._pid, self._files = os.getpid(), {}
        f = self._files.get(path)
        if f is None:
            try:
                f = h5py.File(path, "r")
            except OSError as err:
                raise ValueError(f"{path}: corrupt or truncated HDF5 file ({err})") from err
            self._files[path] = f
        return f

    def raw(self, ref: MapRef) -> torch.Tensor:
        """The stored map ``(H, W)`` float64, checked finite and (but for brightness maps) non-negative."""
        try:
            data = self._file(ref.path)[f"{ref.domain}/images"][ref.row]
        except (OSError, KeyError) as err:
            raise ValueError(f"{ref.where}: unreadable ({err})") from err
        t = torch.from_numpy(data).to(torch.float64)
        if not bool(torch.isfinite(t.sum())):
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise ValueError(f"{ref.where}: {bad} NaN/Inf pixel(s); fix or exclude this row")
        if get_domain(ref.domain).kind != BRIGHTNESS:  # densities, T and |B| are never negative
            n_neg = int((t < 0).sum())
            if n_neg:
                raise ValueError(f"{ref.where}: {n_neg} negative pixel(s) (min {float(t.min()):.3g}) in a "
                                 f"{ref.domain} map, checked before pooling; fix or exclude this row")  # fmt: skip
        return t

    def read(self, ref: MapRef, gas: MapRef | None = None) -> torch.Tensor:
        """The map resized to ``size`` (mass-conserving), physical units, float64."""
        key = (ref.path, ref.domain, ref.row)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        x = self.raw(ref)
        weighted = self.weighted_pooling and get_domain(ref.domain).mass_weighted
        gas_map = self.raw(gas) if weighted and gas is not None and tuple(x.shape) != (self.size, self.size) else None
        out = pool_to(x, self.size, weighted, gas_map, ref.where)
        if self.cache_bytes > 0:
            nbytes = out.numel() * out.element_size()
            self._cache[key] = out
            self._cached += nbytes
            while self._cached > self.cache_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cached -= old.numel() * old.element_size()
        return out


class PairedMapDataset(Dataset):
    """Paired views → normalised ``source``/``target`` tensors, with optional paired augmentation.

    An item (``dataset[i]`` or ``dataset[(i, epoch)]``, as ``EpochSampler`` yields) is a dict:
    ``source`` ``(1, S, S)`` and ``target`` ``(C, S, S)`` float32 normalised, ``pixel_size``
    [kpc] float64, ``index`` ``i`` and ``epoch``.
    """

    def __init__(
        self,
        rows: list[PairedRow],
        source: str,
        targets: list[str],
        transforms: dict[str, MapTransform],
        reader: MapReader,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.rows = rows
        self.source = source
        self.targets = list(targets)
        self.transforms = transforms
        self.reader = reader
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.rows)

    def physical(self, index: int, domain: str) -> torch.Tensor:
        """Map ``domain`` of row ``index`` in physical units ``(S, S)`` float64 (no transform)."""
        row = self.rows[index]
        return self.reader.read(row.refs[domain], row.refs.get("gas"))

    def _normalised(self, index: int, domain: str) -> torch.Tensor:
        row = self.rows[index]
        x = self.physical(index, domain)
        t = self.transforms[domain]
        t.check_input(x, row.refs[domain].where)
        return t.forward(x).to(torch.float32)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        row = self.rows[index]
        src = self._normalised(index, self.source)[None]
        tgt = torch.stack([self._normalised(index, d) for d in self.targets])
        if self.augment:  # seeded by (seed, epoch, index): identical after a resume, in any worker
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 1_000_033 + index)
            k = int(torch.randint(4, (), generator=g))
            flip = bool(torch.randint(2, (), generator=g))
            both = torch.cat([src, tgt])
            both = torch.rot90(both, k, dims=(-2, -1))
            if flip:
                both = torch.flip(both, dims=(-1,))
            src, tgt = both[:1], both[1:]
        ext = row.extent
        return {
            "source": src.contiguous(),
            "target": tgt.contiguous(),
            "pixel_size": torch.tensor((ext[1] - ext[0]) / self.reader.size, dtype=torch.float64),
            "index": index,
            "epoch": epoch,  # with the index, it seeds this map's training noise (app.noise)
        }
