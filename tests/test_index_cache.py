"""The index cache: start-up reads a file's attributes only when the file is new or changed."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest
from tng_files import write_domain_file

from app.data.catalog import find_files, index_domains
from app.data.index_cache import CACHE_NAME, IndexCache, cache_path

VIEWS = [(99, gid, (0, rot)) for gid in (1, 2) for rot in (0, 90)]


def _set(folder: Path, views=VIEWS) -> Path:
    imgs = np.ones((len(views), 8, 8))
    for d in ("dm", "gas"):
        write_domain_file(folder / f"{d}.hdf5", d, views, imgs)
    return folder


def _index(folder: Path):
    cache = IndexCache.for_data(folder)
    index = index_domains(find_files(folder), ["dm", "gas"], cache)
    cache.keep_only(find_files(folder))
    cache.save()
    return index, cache


def _no_file_opened(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a file was opened although the cache holds it")

    monkeypatch.setattr(h5py, "File", refuse)


def test_a_second_start_reads_no_file_and_finds_the_same_rows(tmp_path, monkeypatch):
    folder = _set(tmp_path / "data")
    first, cache = _index(folder)
    assert (cache.hits, cache.misses) == (0, 2) and (folder / CACHE_NAME).is_file()
    _no_file_opened(monkeypatch)
    second, cache = _index(folder)
    assert (cache.hits, cache.misses) == (2, 0)
    assert second == first  # every MapRef field survives the JSON round trip (extents exactly)


def test_a_changed_added_or_removed_file_is_read_again(tmp_path):
    folder = _set(tmp_path / "data")
    _index(folder)
    # rewrite gas with another view, keeping its modification time far from the cached one
    write_domain_file(folder / "gas.hdf5", "gas", [*VIEWS, (99, 3, (0, 0))], np.ones((5, 8, 8)))
    st = (folder / "gas.hdf5").stat()
    os.utime(folder / "gas.hdf5", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    index, cache = _index(folder)
    assert (cache.hits, cache.misses) == (1, 1) and (99, 3, (0, 0)) in index["gas"]
    write_domain_file(folder / "more" / "dm2.hdf5", "dm", [(99, 7, (0, 0))], np.ones((1, 8, 8)))
    index, cache = _index(folder)
    assert (cache.hits, cache.misses) == (2, 1) and (99, 7, (0, 0)) in index["dm"]
    (folder / "more" / "dm2.hdf5").unlink()
    index, cache = _index(folder)
    keys = json.loads((folder / CACHE_NAME).read_text())["files"]
    assert (99, 7, (0, 0)) not in index["dm"] and sorted(keys) == ["dm.hdf5", "gas.hdf5"]  # relative to the folder


def test_a_read_only_folder_caches_in_the_user_cache(tmp_path, monkeypatch):
    folder = _set(tmp_path / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(os, "access", lambda path, mode: not (Path(path) == folder and mode == os.W_OK))
    path = cache_path(folder)
    assert path.parent == tmp_path / "xdg" / "galchemy" and path.name.startswith("index-")
    _index(folder)
    assert path.is_file() and not (folder / CACHE_NAME).exists()
    _no_file_opened(monkeypatch)
    assert _index(folder)[1].hits == 2


def test_an_unreadable_cache_is_rebuilt_and_an_unwritable_one_only_warns(tmp_path, caplog):
    folder = _set(tmp_path / "data")
    (folder / CACHE_NAME).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="app.data.index_cache"):
        index, cache = _index(folder)
    assert "unreadable" in caplog.text and cache.misses == 2 and len(index["dm"]) == 4
    assert json.loads((folder / CACHE_NAME).read_text())["version"] == 2
    cache = IndexCache(tmp_path / "missing" / "deeper" / "index.json")
    cache.files["x"] = {}
    cache.changed()
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        cache.save()  # as root the write may succeed; otherwise a warning, never an exception
    finally:
        (tmp_path / "missing").chmod(stat.S_IRWXU)
    assert not list((tmp_path / "missing").glob("**/*.tmp"))


def test_a_malformed_file_still_fails_with_its_name(tmp_path):
    folder = _set(tmp_path / "data")
    (folder / "bad.hdf5").write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match=r"bad.hdf5: corrupt or truncated HDF5 file"):
        _index(folder)


def test_a_moved_data_folder_keeps_its_cache(tmp_path, monkeypatch):
    """Files are keyed relative to the folder, so another mount point (or a move) still hits."""
    folder = _set(tmp_path / "data")
    first, _ = _index(folder)
    moved = folder.rename(tmp_path / "elsewhere")
    _no_file_opened(monkeypatch)
    index, cache = _index(moved)
    assert cache.hits == 2 and {k: v.key for k, v in index["dm"].items()} == {k: v.key for k, v in first["dm"].items()}
