"""``python -m app.data figure --out docs/mock_galaxy.png``: one mock galaxy in six domains.

Rows: face-on, at (θ, φ) = (40°, 30°), and a twin of the inclined view for the mapping
dm → * (the dark matter's random parts kept, the gas turbulence and the stellar clumps
redrawn). Each domain has one colour scale across rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.data.domains import get_domain
from app.data.mock import MOCK_DOMAINS, render, sample_params, twin

__all__ = ["mock_figure"]


def mock_figure(out: str | Path, gid: int = 3, size: int = 128, seed: int = 0) -> Path:
    """Draw galaxy ``gid`` of the mock with ``seed`` and save a PNG at ``out``."""
    from matplotlib.colors import LogNorm

    from validation.report_figures import new_figure

    p = sample_params(gid, seed=seed)
    rows = {"face-on": render(p, (0, 0), size), "(θ, φ) = (40°, 30°)": render(p, (40, 30), size),
            "twin for dm → *": twin(p, (40, 30), size, "dm")}  # fmt: skip
    ext = p.half_extent
    fig, axes = new_figure(3, 6, figsize=(19, 9.5))
    for j, d in enumerate(MOCK_DOMAINS):
        pos = np.concatenate([m[d][m[d] > 0] for m in rows.values()])
        norm = LogNorm(vmin=max(pos.min(), pos.max() * 1e-5), vmax=pos.max())
        for i, (label, maps) in enumerate(rows.items()):
            ax = axes[i, j]
            im = ax.imshow(np.where(maps[d] > 0, maps[d], np.nan).T, origin="lower", norm=norm, cmap="magma",
                           extent=[-ext, ext, -ext, ext])  # fmt: skip
            ax.set_title(f"{d}, {label}", fontsize=9)
            ax.set_xlabel("x [kpc]", fontsize=8)
            ax.set_ylabel("y [kpc]", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046, label=get_domain(d).unit)
    fig.suptitle(f"mock galaxy {gid} (seed {seed}): log10 M200 = {np.log10(p.m200):.2f}", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    return out
