"""Floor and oracle references for views of the built-in mock, at the size the loader serves.

For a mapping ``source → targets`` the floor is a *twin* of each view (the random parts
that the source shows kept, the others redrawn; ``app.data.mock.twin``) and the oracle is
the mean of ``n_twins`` twins (``app.data.mock.oracle``). They are rendered at the stored
size and pooled to the served size exactly as the loader pools the data (surface densities
averaged, T and |B| weighted by the same realisation's gas), so they sit on the truth's grid.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from app.data.catalog import PairedRow
from app.data.domains import get_domain
from app.data.mock import MOCK_VERSION, sample_params, twin
from app.data.mock_set import MARKER, MARKER_PREFIX
from app.data.resize import pool_to

__all__ = ["mock_seed", "mock_twins", "render_twins"]

log = logging.getLogger(__name__)


def mock_seed(folder: str | Path) -> int | None:
    """The seed of the galchemy mock set in ``folder``, or None if it is not one."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    text = marker.read_text()
    match = re.search(r"\bseed=(-?\d+)", text)
    return int(match.group(1)) if text.startswith(MARKER_PREFIX) and match else None


def _pooled(maps: dict[str, np.ndarray], targets: list[str], size: int, weighted: bool = True) -> np.ndarray:
    gas = torch.from_numpy(maps["gas"])
    return np.stack([
        pool_to(torch.from_numpy(maps[d]), size, weighted and get_domain(d).mass_weighted, gas,
                f"mock reference {d}").numpy()
        for d in targets
    ])  # fmt: skip


def _row_twins(row: PairedRow, source: str, targets: list[str], seed: int, size: int, ks: list[int],
               weighted_pooling: bool) -> np.ndarray:  # fmt: skip
    """Twins ``ks`` of one row, pooled as the loader pools: ``(K, C, size, size)``."""
    snapshot, gid, rotxy = row.key
    p = sample_params(gid, snapshot, seed)
    stored = next(iter(row.refs.values())).shape[0]
    if not np.isclose(row.extent[1], p.half_extent, rtol=1e-9):
        raise ValueError(
            f"{next(iter(row.refs.values())).where}: not a view of the mock set with seed {seed} "
            f"(extent {row.extent[1]:.6g} kpc, the mock galaxy's {p.half_extent:.6g} kpc)"
        )
    return np.stack([_pooled(twin(p, rotxy, stored, source, k), targets, size, weighted_pooling) for k in ks])


def render_twins(
    rows: list[PairedRow],
    source: str,
    targets: list[str],
    seed: int,
    size: int,
    ks: Iterable[int],
    weighted_pooling: bool = True,
) -> np.ndarray:
    """Twins ``k ∈ ks`` (k ≥ 1) of every row in physical units: ``(K, N, C, size, size)``.

    Raises:
        ValueError: a row that is not a view of the mock set made with ``seed``.
    """
    ks = list(ks)
    return np.stack([_row_twins(r, source, targets, seed, size, ks, weighted_pooling) for r in rows], axis=1)


def mock_twins(
    rows: list[PairedRow],
    source: str,
    targets: list[str],
    seed: int,
    size: int,
    n_twins: int = 16,
    cache: str | Path | None = None,
    weighted_pooling: bool = True,
) -> dict[str, np.ndarray]:
    """``{"floor (twin)": (N, C, size, size), "oracle": (N, C, size, size)}`` in physical units.

    ``weighted_pooling``: as the data module's (T and |B| pooled with the gas as weight).
    ``cache``: a folder (the mock set's own ``references/``) where the result is kept, keyed
    by the mock version and every argument, so reports of one split render their twins once.

    Raises:
        ValueError: a row that is not a view of the mock set made with ``seed`` (its extent
            disagrees with the regenerated galaxy's).
    """
    path = None
    if cache is not None:
        key = repr(
            (MOCK_VERSION, [r.key for r in rows], source, targets, seed, size, n_twins, weighted_pooling)
        )
        path = Path(cache) / f"twins-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if path.is_file():
            with np.load(path) as saved:
                return {"floor (twin)": saved["floor"], "oracle": saved["oracle"]}
    floor, oracle = [], []
    for row in rows:  # row by row: all twins of all rows at once can be large
        twins = _row_twins(row, source, targets, seed, size, list(range(1, n_twins + 1)), weighted_pooling)
        floor.append(twins[0])
        oracle.append(twins.mean(0))
    out = {"floor (twin)": np.stack(floor), "oracle": np.stack(oracle)}
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, floor=out["floor (twin)"], oracle=out["oracle"])
            tmp.replace(path)  # atomic: a reader never sees half a file
        except OSError as err:  # a read-only data folder: work without the cache
            log.warning(
                "could not cache the twins in %s (%s); they will be rendered again next time", cache, err
            )
    return out
