"""A cache of the catalog's per-file index, so start-up does not read every file's attributes
on every run.

One JSON file per data set: ``.galchemy-index.json`` beside the data when the data is a
folder you can write to, else ``$XDG_CACHE_HOME/galchemy/index-<hash>.json`` (default
``~/.cache``), keyed by the folder or glob. An entry is trusted only while its file has the
same size, modification and change times (ns) and inode; a changed, added or removed file
is re-read (or dropped) on the next run. Beside the data, files are keyed by their path
relative to the data folder, so nodes that mount the data at different paths share it.
The cache is written atomically (a temporary file, then ``os.replace``), so a crash or two
DDP ranks writing at once leave a whole file; an unreadable cache is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CACHE_NAME", "IndexCache", "cache_path", "write_probe"]

log = logging.getLogger(__name__)

CACHE_NAME = ".galchemy-index.json"
VERSION = 2  # bump when the entry layout or the catalog's parsing of a file changes


def cache_path(data: str | Path) -> Path:
    """Where the index of ``data`` (a folder or a glob) is cached: beside the data if the folder
    is writable, else in the user's cache folder."""
    folder = Path(data)
    if folder.is_dir() and os.access(folder, os.W_OK) and write_probe(folder) is None:
        return folder / CACHE_NAME
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "galchemy"
    key = hashlib.sha1(str(Path(data).absolute()).encode()).hexdigest()[:16]
    return root / f"index-{key}.json"


def write_probe(folder: Path) -> OSError | None:
    """None when a file can be created in the existing ``folder``, else the error it raised."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as err:
        return err


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class IndexCache:
    """Per-file index entries of one data set, read from and written back to ``path``.

    An entry is a JSON-able dict the catalog fills (``seen`` domains, and per domain its rows
    or a marker); :meth:`entry` hands back the stored one while the file is unchanged.
    """

    @classmethod
    def for_data(cls, data: str | Path) -> IndexCache:
        """The cache of ``data`` (a folder or glob), at ``cache_path(data)``; keyed relative to the
        folder when it sits beside the data."""
        path = cache_path(data)
        return cls(path, root=path.parent if path.name == CACHE_NAME else None)

    def __init__(self, path: Path, root: Path | None = None) -> None:
        """``path``: the cache file; ``root``: the data folder file keys are relative to (None:
        absolute keys)."""
        self.path = Path(path)
        self.root = None if root is None else Path(root).absolute()
        self.files: dict[str, dict[str, Any]] = {}
        self.hits = self.misses = 0
        self._counted: set[str] = set()
        self._dirty = False
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("version") == VERSION:
                self.files = dict(doc["files"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("index cache %s unreadable (%s): rebuilding it", self.path, err)

    def entry(self, path: Path) -> dict[str, Any]:
        """The cached entry of ``path`` if the file is unchanged, else a fresh one (to be filled)."""
        key = self._key(path)
        stamp = _stamp(Path(path))
        old = self.files.get(key)
        first = key not in self._counted  # count each file once, however many passes ask
        self._counted.add(key)
        if old is not None and old.get("stamp") == stamp:
            self.hits += first
            return old
        self.misses += first
        self._dirty = True
        self.files[key] = fresh = {"stamp": stamp, "domains": {}}
        return fresh

    def _key(self, path: Path) -> str:
        absolute = Path(path).absolute()
        if self.root is not None and absolute.is_relative_to(self.root):
            return str(absolute.relative_to(self.root))
        return str(absolute)

    def changed(self) -> None:
        """Mark the cache as needing a write (an entry was filled in)."""
        self._dirty = True

    def keep_only(self, paths: list[Path]) -> None:
        """Drop the entries of files no longer in the data set."""
        keep = {self._key(p) for p in paths}
        gone = set(self.files) - keep
        for key in gone:
            del self.files[key]
        self._dirty = self._dirty or bool(gone)

    def save(self) -> None:
        """Write the cache atomically if anything changed; a failed write only logs a warning."""
        if not self._dirty:
            return
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".index-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump({"version": VERSION, "files": self.files}, f)
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            log.warning("could not write the index cache %s (%s); the next run reads the files again",
                        self.path, err)  # fmt: skip
