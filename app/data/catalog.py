"""Find map files, index their rows by attributes, pair domains and split by galaxy.

Files are found by glob and trusted by their contents, never their names: a file holds a
domain ``D`` when it has a dataset ``/{D}/images`` ``(N, H, W)`` and one attribute group
``/{D}/metadata/{i}`` per row (``i`` zero-padded to 4 or more digits). Rows of different
domains are paired by ``(snapshot, gid, rotxy)``; their ``extent`` must agree.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from app.data.index_cache import IndexCache

__all__ = [
    "MapRef",
    "PairedRow",
    "PairingReport",
    "find_files",
    "index_domains",
    "pair_rows",
    "split_by_galaxy",
]

log = logging.getLogger(__name__)

Key = tuple[int, int, tuple[int, int]]  # (snapshot, gid, rotxy)
REQUIRED_ATTRS = ("gid", "snapshot", "rotxy", "extent")


@dataclass(frozen=True)
class MapRef:
    """Where one map lives and what its metadata says (extent in ``units_extent``, kpc)."""

    path: str
    domain: str
    row: int
    snapshot: int
    gid: int
    rotxy: tuple[int, int]
    extent: tuple[float, float, float, float]
    units: str
    name: str
    shape: tuple[int, int]
    num_particles: int = 0

    @property
    def key(self) -> Key:
        """The pairing key ``(snapshot, gid, rotxy)``."""
        return (self.snapshot, self.gid, self.rotxy)

    @property
    def where(self) -> str:
        """``'{path} /{domain} row {row}'``, for messages."""
        return f"{self.path} /{self.domain} row {self.row}"


@dataclass(frozen=True)
class PairedRow:
    """One galaxy view with a map in each requested domain."""

    key: Key
    refs: dict[str, MapRef]

    @property
    def galaxy(self) -> tuple[int, int]:
        """The galaxy ``(snapshot, gid)``; all its views land in one split."""
        return self.key[0], self.key[1]

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """The map extent (4 values, kpc), shared by every domain of the view."""
        return next(iter(self.refs.values())).extent


@dataclass
class PairingReport:
    """What pairing kept and dropped."""

    n_paired: int = 0
    unpaired: dict[str, int] = field(default_factory=dict)
    extent_mismatch: int = 0

    def summary(self) -> str:
        """One line: views paired, rows dropped without a partner (per domain) or for disagreeing extents."""
        dropped = ", ".join(f"{d}: {n}" for d, n in self.unpaired.items() if n) or "none"
        return (
            f"{self.n_paired} paired views; rows without a partner dropped ({dropped}); "
            f"{self.extent_mismatch} dropped for disagreeing extents"
        )


def find_files(data: str | Path) -> list[Path]:
    """HDF5 files under a folder (recursively) or matching a glob pattern.

    Raises:
        ValueError: nothing matches.
    """
    data = str(data)
    if Path(data).is_dir():
        patterns = [str(Path(data) / "**" / ext) for ext in ("*.hdf5", "*.h5")]
    else:
        patterns = [data]
    files = sorted({Path(p) for pat in patterns for p in glob.glob(pat, recursive=True) if Path(p).is_file()})
    if not files:
        raise ValueError(f"no HDF5 files found: {' or '.join(patterns)} matched nothing")
    return files


def _attr(attrs: h5py.AttributeManager, name: str, where: str):
    if name not in attrs:
        raise ValueError(f"{where}: metadata attribute {name!r} is missing")
    value = attrs[name]
    return value.decode() if isinstance(value, bytes) else value


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _index_group(path: Path, f: h5py.File, domain: str) -> list[MapRef]:
    group = f[domain]
    where = f"{path} /{domain}"
    images = group.get("images")
    if not isinstance(images, h5py.Dataset) or images.ndim != 3:
        raise ValueError(f"{where}: expected a dataset 'images' of shape (N, H, W)")
    meta = group.get("metadata")
    if not isinstance(meta, h5py.Group):
        raise ValueError(f"{where}: the 'metadata' group is missing")
    rows: dict[int, str] = {}
    for name in meta:
        if not isinstance(meta[name], h5py.Group):
            continue
        try:
            rows[int(name)] = name
        except ValueError:
            raise ValueError(f"{where}/metadata: group {name!r} is not a row number") from None
    n = images.shape[0]
    if sorted(rows) != list(range(n)):
        raise ValueError(
            f"{where}: {n} images but {len(rows)} metadata groups (rows must be numbered 0..N-1)"
        )
    refs = []
    for i in range(n):
        attrs = meta[rows[i]].attrs
        w = f"{where} row {i}"
        extent = tuple(float(v) for v in np.asarray(_attr(attrs, "extent", w), dtype=np.float64).ravel())
        if len(extent) != 4:
            raise ValueError(f"{w}: extent must have 4 values, got {extent}")
        rot = tuple(int(v) for v in np.asarray(_attr(attrs, "rotxy", w)).ravel())
        refs.append(
            MapRef(
                path=str(path),
                domain=domain,
                row=i,
                snapshot=int(_attr(attrs, "snapshot", w)),
                gid=int(_attr(attrs, "gid", w)),
                rotxy=(rot[0], rot[1]) if len(rot) >= 2 else (0, 0),
                extent=extent,  # type: ignore[arg-type]
                units=_text(attrs.get("units", "")),
                name=_text(attrs.get("name", "")),
                shape=(int(images.shape[1]), int(images.shape[2])),
                num_particles=int(np.asarray(attrs.get("num_particles", 0)).ravel()[0]),
            )
        )
    return refs


def _ref_row(ref: MapRef) -> list:
    return [ref.row, ref.snapshot, ref.gid, *ref.rotxy, *ref.extent, ref.units, ref.name, *ref.shape,
            ref.num_particles]  # fmt: skip


def _row_ref(path: Path, domain: str, v: list) -> MapRef:
    return MapRef(path=str(path), domain=domain, row=v[0], snapshot=v[1], gid=v[2], rotxy=(v[3], v[4]),
                  extent=tuple(v[5:9]), units=v[9], name=v[10], shape=(v[11], v[12]),  # type: ignore[arg-type]
                  num_particles=v[13])  # fmt: skip


def _file_entry(path: Path, domains: list[str], cache: IndexCache | None) -> dict:
    """``{"seen": domains with images, "domains": {d: rows | "no_images" | "absent"}}`` of one
    file for the requested ``domains``, from the cache where the file is unchanged."""
    entry = cache.entry(path) if cache is not None else {"domains": {}}
    todo = [d for d in domains if d not in entry["domains"]]
    if "seen" in entry and not todo:
        return entry
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: corrupt or truncated HDF5 file ({err})") from err
    with f:
        seen: set[str] = set()

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Group) and isinstance(obj.get("images"), h5py.Dataset):
                seen.add(name)

        f.visititems(visit)
        entry["seen"] = sorted(seen)
        for d in todo:
            if d not in f or not isinstance(f[d], h5py.Group):
                entry["domains"][d] = "absent"
            elif "images" not in f[d]:
                entry["domains"][d] = "no_images"
            else:
                entry["domains"][d] = [_ref_row(r) for r in _index_group(path, f, d)]
    if cache is not None:
        cache.changed()
    return entry


def index_domains(
    files: list[Path], domains: list[str], cache: IndexCache | None = None
) -> dict[str, dict[Key, MapRef]]:
    """Index every row of every requested domain in ``files`` by ``(snapshot, gid, rotxy)``.

    ``cache``: per-file entries of earlier runs (``app.data.index_cache``), used for files
    whose size and modification time are unchanged and filled in for the others (the
    caller saves it).

    Raises:
        ValueError: a corrupt or truncated file, a malformed group, a duplicate view, or a
            requested domain found in no file.
    """
    index: dict[str, dict[Key, MapRef]] = {d: {} for d in domains}
    seen_domains: set[str] = set()
    no_images: dict[str, list[str]] = {d: [] for d in domains}  # files with a /d group but no images
    for path in files:
        entry = _file_entry(path, domains, cache)
        seen_domains.update(entry["seen"])
        for d in domains:
            rows = entry["domains"][d]
            if rows == "no_images":
                no_images[d].append(path.name)
            elif rows != "absent":
                for v in rows:
                    ref = _row_ref(path, d, v)
                    other = index[d].get(ref.key)
                    if other is not None:
                        raise ValueError(f"{ref.where}: duplicate view {ref.key} (also {other.where})")
                    index[d][ref.key] = ref
    for d in domains:
        if not index[d]:
            where = (f"{', '.join(no_images[d][:3])} {'has' if len(no_images[d]) == 1 else 'have'} a '/{d}' group "
                     "without an 'images' dataset" if no_images[d]
                     else f"no '/{d}' group in any of {len(files)} file(s)")  # fmt: skip
            raise ValueError(f"no '/{d}/images' dataset: {where}; domains found: {sorted(seen_domains) or 'none'}")
    return index


def pair_rows(
    index: dict[str, dict[Key, MapRef]], rtol: float = 1e-6
) -> tuple[list[PairedRow], PairingReport]:
    """Views present in every domain with agreeing extents, sorted by key, and a report."""
    domains = list(index)
    common = set.intersection(*(set(index[d]) for d in domains))
    report = PairingReport(unpaired={d: len(index[d]) - len(common) for d in domains})
    rows = []
    for key in sorted(common):
        refs = {d: index[d][key] for d in domains}
        extents = np.array([r.extent for r in refs.values()])
        if not np.allclose(extents, extents[0], rtol=rtol, atol=0):
            report.extent_mismatch += 1
            log.warning("dropping %s: extents disagree across domains %s", key, extents.tolist())
            continue
        rows.append(PairedRow(key=key, refs=refs))
    report.n_paired = len(rows)
    if any(report.unpaired.values()) or report.extent_mismatch:
        log.warning("pairing: %s", report.summary())
    if not rows:
        raise ValueError(f"no view is present in all of the domains {domains}: {report.summary()}")
    return rows, report


def split_by_galaxy(
    rows: list[PairedRow], fractions: tuple[float, float, float], seed: int, stratify: bool = True
) -> dict[str, list[PairedRow]]:
    """Deterministic train/val/test split in which all views of a galaxy share one split.

    A galaxy is ``(snapshot, gid)``. Split sizes come from ``fractions`` (normalised) by
    largest-remainder rounding; every split with a positive fraction gets at least one
    galaxy when there are three or more. With ``stratify`` the galaxies are ordered by
    their particle count (``num_particles``, a mass proxy present in every TNG and mock
    file; ties broken by ``seed``), labels are dealt in that order so that each split
    samples the whole mass range, and labels are shuffled by ``seed`` within blocks of
    ``ceil(1 / smallest fraction)`` neighbours. Without it galaxies are shuffled by ``seed``.
    """
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise ValueError(f"split must be three non-negative fractions (train, val, test), got {fractions}")
    f = f / f.sum()
    mass: dict[tuple[int, int], int] = {}
    for r in rows:
        mass[r.galaxy] = max(mass.get(r.galaxy, 0), max(ref.num_particles for ref in r.refs.values()))
    galaxies = sorted(mass)
    n = len(galaxies)
    if stratify and n > 1 and not any(mass.values()):
        log.warning("split: no num_particles attribute in the metadata; galaxies are split at random, not by mass")
    rng = np.random.default_rng(seed)
    counts = _split_counts(f, n)
    if stratify:
        order = np.lexsort((rng.random(n), [mass[g] for g in galaxies]))  # by mass, random ties
        labels = _dealt_labels(counts)
        block = int(np.ceil(1 / f[f > 0].min()))
        for start in range(0, n, block):
            labels[start : start + block] = rng.permutation(labels[start : start + block])
    else:
        order = rng.permutation(n)
        labels = np.repeat(np.arange(3), counts)
    names = ("train", "val", "test")
    assign = {galaxies[gi]: names[labels[rank]] for rank, gi in enumerate(order)}
    out: dict[str, list[PairedRow]] = {"train": [], "val": [], "test": []}
    for r in rows:
        out[assign[r.galaxy]].append(r)
    return out


def _split_counts(f: np.ndarray, n: int) -> np.ndarray:
    """Galaxies per split: largest remainders, and one for each positive fraction when ``n >= 3``."""
    counts = np.floor(f * n).astype(int)
    for i in np.argsort(-(f * n - counts), kind="stable"):
        if counts.sum() < n:
            counts[i] += 1
    for i in range(3):
        if f[i] > 0 and counts[i] == 0 and n >= 3:
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def _dealt_labels(counts: np.ndarray) -> np.ndarray:
    """Labels 0/1/2 in an order where every prefix holds each split in proportion (``counts``)."""
    n = int(counts.sum())
    labels = np.empty(n, dtype=int)
    dealt = np.zeros(3)
    for i in range(n):
        deficit = counts * (i + 1) / n - dealt
        deficit[dealt >= counts] = -np.inf
        k = int(np.argmax(deficit))
        labels[i] = k
        dealt[k] += 1
    return labels
