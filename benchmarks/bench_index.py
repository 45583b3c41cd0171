"""Start-up cost of indexing many map files, without and with the index cache.

Usage: ``python benchmarks/bench_index.py [--files 10000] [--out DIR]``

Writes ``--files`` small HDF5 files in the TNG layout (one domain per file, 4 views of one
galaxy each, 8² images: the attribute reads, not the pixels, are what start-up costs),
then times ``find_files`` + ``index_domains`` three ways: no cache, a first run that
builds the cache, and a second run that reads it. Then it touches one file and times the
run that re-reads only that file.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tng_files import write_domain_file

from app.data.catalog import find_files, index_domains
from app.data.index_cache import IndexCache


def _write(folder: Path, n_files: int) -> None:
    imgs = np.ones((4, 8, 8), dtype=np.float32)
    for i in range(n_files):
        domain, gid = ("dm", "gas")[i % 2], i // 2
        views = [(99, gid, (0, rot)) for rot in (0, 90, 180, 270)]
        write_domain_file(folder / f"{domain}" / f"{domain}_{gid:06d}.hdf5", domain, views, imgs)


def _timed(folder: Path, cached: bool) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    files = find_files(folder)
    cache = IndexCache.for_data(folder) if cached else None
    index_domains(files, ["dm", "gas"], cache)
    if cache is not None:
        cache.keep_only(files)
        cache.save()
    return time.perf_counter() - t0, (cache.hits if cache else 0), (cache.misses if cache else len(files))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--out", help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp) / f"index-bench-{args.files}"
        t0 = time.perf_counter()
        if not folder.exists():
            _write(folder, args.files)
        print(f"# {args.files} files ({args.files * 4} maps) written in {time.perf_counter() - t0:.0f} s; "
              f"{platform.machine()}, Python {platform.python_version()}")  # fmt: skip
        (folder / ".galchemy-index.json").unlink(missing_ok=True)
        rows = [("no cache", *_timed(folder, False)), ("first run (builds the cache)", *_timed(folder, True)),
                ("second run (cache)", *_timed(folder, True))]  # fmt: skip
        one = next(iter(sorted(folder.rglob("*.hdf5"))))
        st = one.stat()
        os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        rows.append(("one file changed", *_timed(folder, True)))
        print(f"{'start-up':32s} {'seconds':>8s} {'files from cache':>17s} {'files read':>11s}")
        for name, s, hits, misses in rows:
            print(f"{name:32s} {s:8.2f} {hits:17d} {misses:11d}")


if __name__ == "__main__":
    main()
