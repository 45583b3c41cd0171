"""Write small HDF5 files in the real TNG map layout (for tests)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_domain_file(
    path: Path,
    domain: str,
    views: list[tuple[int, int, tuple[int, int]]],
    images: np.ndarray,
    extent_of=lambda snap, gid: 10.0 + gid,
    index_width: int = 4,
    units: str = "solMass / kpc2",
) -> Path:
    """One file for ``domain`` with rows ``views`` = [(snapshot, gid, rotxy)] and ``images`` (N, H, W)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset(f"{domain}/images", data=images, chunks=(1, *images.shape[1:]), compression="gzip")
        for i, (snap, gid, rot) in enumerate(views):
            g = f.create_group(f"{domain}/metadata/{i:0{index_width}d}")
            r = extent_of(snap, gid)
            g.attrs.update(
                {
                    "class": domain, "gid": gid, "snapshot": snap, "units": units,
                    "extent": np.array([-r, r, -r, r]), "units_extent": "kpc",
                    "name": f"{domain.split('/')[-1]}_tng50-1.{snap:02d}.gid.{gid:07d}",
                    "num_particles": 10000, "rotxy": np.array(rot), "N_particle_flag": 0,
                    "has_bh": 1, "rng_seed": 42,
                }
            )  # fmt: skip
    return path


def galaxy_images(views, size: int, seed: int, scale: float = 1e7) -> np.ndarray:
    """Positive smooth maps, one per view, distinct per (snapshot, gid, rotxy)."""
    out = []
    for snap, gid, rot in views:
        rng = np.random.default_rng([snap, gid, rot[0], rot[1], seed])
        x = (np.arange(size) + 0.5) - size / 2
        r = np.hypot(*np.meshgrid(x, x, indexing="ij"))
        out.append(
            scale * (1 + gid) * np.exp(-r / (4 + rng.random())) + scale * 1e-3 * rng.random((size, size))
        )
    return np.stack(out)
