"""Write mock galaxy sets in the TNG map layout, safely: never into a folder the project did not write.

A set lives in a folder carrying a ``COMPLETE`` marker that records its settings. The
writer only writes into a missing or empty folder, or one with a galchemy marker; any
other folder is an error naming it, and nothing in it is touched. ``ensure_mock`` keys
sets by their settings (``{root}/v3-g64-n128-seed0-views4``), so configs with different
mock settings never overwrite each other's data.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np

from app.data.domains import get_domain
from app.data.mock import MOCK_DOMAINS, MOCK_VERSION, GalaxyParams, render, sample_params

__all__ = ["MARKER", "ensure_mock", "mock_folder", "mock_key", "mock_views", "write_mock_set"]

log = logging.getLogger(__name__)
MARKER = "COMPLETE"
MARKER_PREFIX = "galchemy mock set"


def mock_views(p: GalaxyParams, n_views: int) -> list[tuple[int, int]]:
    """Unrotated view plus ``n_views − 1`` random integer (θ, φ) with inclination ≤ 75°."""
    rng = np.random.default_rng([p.seed, 7])
    views = [(0, 0)]
    while len(views) < n_views:
        theta, phi = int(rng.integers(0, 360)), int(rng.integers(0, 360))
        if abs(math.cos(math.radians(theta)) * math.cos(math.radians(phi))) >= math.cos(math.radians(75)):
            views.append((theta, phi))
    return views


def mock_key(galaxies: int, size: int, seed: int, views: int = 4) -> str:
    """Folder name of a mock set with these settings (and the current model version)."""
    return f"v{MOCK_VERSION}-g{galaxies}-n{size}-seed{seed}-views{views}"


def _marker_text(galaxies: int, size: int, seed: int, views: int, snapshots: Iterable[int]) -> str:
    snaps = ",".join(str(s) for s in snapshots)
    return (
        f"{MARKER_PREFIX} version={MOCK_VERSION} galaxies={galaxies} size={size} seed={seed} "
        f"views={views} snapshots={snaps}\n"
    )


def _check_writable(out: Path) -> None:
    """Raise unless ``out`` is missing, empty, or a mock set this project wrote."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"mock folder {out} is a file, not a folder: choose another mock_dir")
    if not any(out.iterdir()):
        return
    marker = out / MARKER
    if marker.is_file() and marker.read_text().startswith(MARKER_PREFIX):
        return
    raise ValueError(
        f"mock folder {out} is not empty and holds no galchemy mock set (no {MARKER} marker of ours): "
        "refusing to write into it; choose an empty or new mock_dir"
    )


def _remove_dead_partials(out: Path) -> None:
    """Remove ``{out}.partial-{pid}`` folders (this writer's own) left by processes no longer alive."""
    for tmp in out.parent.glob(out.name + ".partial-*") if out.parent.is_dir() else []:
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            log.info("removing %s, left by an interrupted mock writer", tmp)
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, owned by someone else
            continue


def write_mock_set(
    out: str | Path,
    galaxies: int = 200,
    size: int = 128,
    seed: int = 0,
    snapshots: Iterable[int] = (99,),
    views: int = 4,
    per_file: int = 1000,
    extent_factor: float = 2.0,
    progress: bool = True,
) -> Path:
    """Write ``galaxies`` mock galaxies per snapshot in the TNG map layout under ``out``.

    Files: ``{out}/{domain}/hdf5/20260101-mock.{snap}.2D.{domain}.{start:04d}.{end:04d}.hdf5``.
    The set is written to a temporary sibling folder and moved into place when complete,
    with a ``COMPLETE`` marker, so an interrupted run never leaves a half-written set.

    Raises:
        ValueError: bad settings, or ``out`` holds anything but an earlier galchemy mock set.
    """
    out = Path(out)
    snapshots = tuple(snapshots)
    if galaxies < 1 or size < 8 or views < 1 or not snapshots:
        raise ValueError(
            f"need galaxies >= 1, size >= 8, views >= 1 and a snapshot; got {galaxies}, {size}, {views}, {snapshots}"
        )
    _check_writable(out)
    _remove_dead_partials(out)
    tmp = out.with_name(out.name + f".partial-{os.getpid()}")
    if tmp.exists():  # our own leftover from an interrupted write of this process id
        shutil.rmtree(tmp)
    log.info("writing %d mock galaxies x %d views (%d², seed %d) to %s", galaxies, views, size, seed, out)
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("writing mock galaxies", total=len(snapshots) * galaxies)
        for snap in snapshots:
            for start in range(0, galaxies, per_file):
                _write_files(tmp, snap, range(start, min(start + per_file, galaxies)), size, seed, views,
                             extent_factor, lambda: bar.advance(task))  # fmt: skip
    (tmp / MARKER).write_text(_marker_text(galaxies, size, seed, views, snapshots))
    if out.exists():
        shutil.rmtree(out)  # empty, or our own earlier set (checked above)
    tmp.rename(out)
    return out


def _write_files(tmp: Path, snap: int, gids: range, size: int, seed: int, views: int,
                 extent_factor: float, advance) -> None:  # fmt: skip
    files = {}
    for d in MOCK_DOMAINS:
        folder = tmp / d / "hdf5"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"20260101-mock.{snap}.2D.{d}.{gids.start:04d}.{gids.stop:04d}.hdf5"
        f = h5py.File(folder / name, "w", libver="latest")
        f.create_dataset(
            f"{d}/images", shape=(0, size, size), maxshape=(None, size, size), dtype="<f8",
            chunks=(1, size, size), compression="gzip", shuffle=True,
        )  # fmt: skip
        files[d] = f
    try:
        row = 0
        for gid in gids:
            p = sample_params(gid, snap, seed, extent_factor)
            for rotxy in mock_views(p, views):
                maps = render(p, rotxy, size)
                for d, f in files.items():
                    ds = f[f"{d}/images"]
                    ds.resize(row + 1, axis=0)
                    ds[row] = maps[d]
                    _write_attrs(f.create_group(f"{d}/metadata/{row:04d}"), d, p, rotxy, seed)
                row += 1
            advance()
    finally:
        for f in files.values():
            f.close()


def _write_attrs(meta: h5py.Group, domain: str, p: GalaxyParams, rotxy: tuple[int, int], seed: int) -> None:
    name = f"{domain}_mock.{p.snapshot:02d}.gid.{p.gid:07d}"
    if rotxy != (0, 0):
        name += f"_rotxy.{rotxy[0]}.{rotxy[1]}"
    meta.attrs["class"] = domain
    meta.attrs["gid"] = p.gid
    meta.attrs["snapshot"] = p.snapshot
    meta.attrs["units"] = get_domain(domain).unit
    meta.attrs["extent"] = np.array([-p.half_extent, p.half_extent, -p.half_extent, p.half_extent])
    meta.attrs["units_extent"] = "kpc"
    meta.attrs["name"] = name
    meta.attrs["num_particles"] = int((p.m_gas_disk + p.m_hot) / 8.5e4)
    meta.attrs["rotxy"] = np.array(rotxy, dtype=np.int64)
    meta.attrs["N_particle_flag"] = 0
    meta.attrs["has_bh"] = int(p.m200 > 3e11)
    meta.attrs["rng_seed"] = seed


def mock_folder(root: str | Path, galaxies: int, size: int, seed: int, views: int = 4) -> Path:
    """Where the mock set with these settings lives: ``root/mock_key(...)`` (nothing is written)."""
    return Path(root) / mock_key(galaxies, size, seed, views)


def ensure_mock(root: str | Path, galaxies: int, size: int, seed: int, views: int = 4) -> Path:
    """The mock set with these settings under ``root`` (``mock_folder``), written if missing."""
    folder = mock_folder(root, galaxies, size, seed, views)
    marker = folder / MARKER
    if marker.is_file() and marker.read_text() == _marker_text(galaxies, size, seed, views, (99,)):
        log.info("mock set: %s", folder)
        return folder
    return write_mock_set(folder, galaxies=galaxies, size=size, seed=seed, views=views)
