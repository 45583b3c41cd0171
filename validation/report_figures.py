"""Report figures (PNG): maps, spectra with the baselines and the floor, profiles, distributions, totals.

Each function draws one figure from arrays in physical units and saves it at ``DPI``.
Maps are shown with axis 0 as x (``images[i][ix, iy]``, the data's convention), so
they are transposed for ``imshow`` and drawn with ``origin="lower"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

import physics
from validation.domains import SURFACE_DENSITY
from validation.report_scores import ReportData

__all__ = [
    "DPI", "fig_distributions", "fig_examples", "fig_mass", "fig_profiles", "fig_spectra", "fig_spectra_physical",
    "fig_training", "new_figure",
]

DPI = 150


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **options):
    """A figure and its axes (as ``plt.subplots``), drawn off-screen: matplotlib's object API
    needs no backend and leaves pyplot's state (and the caller's backend) untouched."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **options)
#: line styles of the predictors in spectral plots
STYLES = {"model": ("C3", "-", 2.0), "floor (twin)": ("k", ":", 1.5), "oracle": ("0.4", "--", 1.5)}


def _style(name: str, i: int) -> tuple[str, str, float]:
    return STYLES.get(name, (f"C{i % 10}", "-.", 1.0))


def _log_image(ax, fig, img: np.ndarray, extent: float, title: str, unit: str, norm) -> None:
    box = [-extent, extent, -extent, extent]
    if norm is None:
        ax.imshow(np.zeros_like(img).T, origin="lower", cmap="gray", extent=box)
        ax.text(0, 0, "all zero", ha="center", va="center", color="w")
    else:
        im = ax.imshow(np.where(img > 0, img, np.nan).T, origin="lower", norm=norm, cmap="magma", extent=box)
        fig.colorbar(im, ax=ax, fraction=0.046, label=unit)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x [kpc]", fontsize=8)
    ax.set_ylabel("y [kpc]", fontsize=8)


def _norm(*maps: np.ndarray) -> LogNorm | None:
    pos = np.concatenate([m[m > 0] for m in maps])
    if not pos.size:
        return None
    return LogNorm(vmin=max(pos.min(), pos.max() * 1e-6), vmax=pos.max())


def fig_examples(data: ReportData, c: int, path: Path, n: int = 3) -> Figure:
    """Source, truth and prediction (one colour scale for truth and prediction) and log10 ratio;
    saves and returns the figure. Maps are ``[ix, iy]`` (array axis 0 is x): x runs to the
    right and y up (``img.T`` with ``origin="lower"``)."""
    n = min(n, len(data.source))
    fig, axes = new_figure(n, 4, figsize=(17, 3.8 * n), squeeze=False)
    for row in range(n):
        ext = data.pixel_size[row] * data.source.shape[-1] / 2
        label = f"galaxy {data.galaxy[row]}, view {data.rotation[row]}"
        true, pred = data.target[row, c], data.prediction[row, c]
        _log_image(axes[row, 0], fig, data.source[row], ext, f"source {data.source_domain}\n{label}",
                   data.source_unit, _norm(data.source[row]))  # fmt: skip
        shared = _norm(true, pred)
        _log_image(axes[row, 1], fig, true, ext, f"truth {data.domains[c]}", data.units[c], shared)
        _log_image(axes[row, 2], fig, pred, ext, f"prediction {data.domains[c]}", data.units[c], shared)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((true > 0) & (pred > 0), np.log10(pred / true), np.nan)
        im = axes[row, 3].imshow(
            ratio.T, origin="lower", cmap="RdBu_r", vmin=-1, vmax=1, extent=[-ext, ext] * 2
        )
        fig.colorbar(im, ax=axes[row, 3], fraction=0.046, label="log10(prediction / truth) [dex]")
        axes[row, 3].set_title("residual", fontsize=9)
        axes[row, 3].set_xlabel("x [kpc]", fontsize=8)
        axes[row, 3].set_ylabel("y [kpc]", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return fig


def fig_spectra(
    curves: dict[str, dict[str, np.ndarray]], unit: str, path_pk: Path, path_r: Path
) -> tuple[Figure, Figure]:
    """Summed P(k) and P_pred/P_true, and r(k), of every predictor (``{name: spectral_curves}``);
    saves and returns both figures (line ``i`` of each panel is predictor ``i``)."""
    first = next(iter(curves.values()))
    k = first["k_over_kf"]
    band = (3, k.max() / 2**0.5 / 2)
    fig, (ax, axr) = new_figure(
        2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.6]}
    )
    ax.loglog(k, first["p_true"], "k-", lw=2.5, alpha=0.4, label="truth")
    for i, (name, cv) in enumerate(curves.items()):
        color, ls, lw = _style(name, i)
        ax.loglog(k, np.maximum(cv["p_pred"], 1e-300), color=color, ls=ls, lw=lw, label=name)
        axr.loglog(k, cv["transfer"] ** 2, color=color, ls=ls, lw=lw)
    ax.set_ylabel(f"Σ P(k) over maps [({unit})² px²]")
    ax.legend(fontsize=7, ncol=2)
    axr.axhline(1, color="k", lw=0.8)
    axr.axvspan(*band, color="0.92", zorder=-1)
    axr.set_ylabel("P_pred / P_true")
    axr.set_xlabel("k / k_F")
    axr.xaxis.set_minor_formatter(NullFormatter())  # no overlapping minor labels
    fig.tight_layout()
    fig.savefig(path_pk, dpi=DPI)
    fig_pk = fig
    fig, ax = new_figure(figsize=(7, 4))
    for i, (name, cv) in enumerate(curves.items()):
        color, ls, lw = _style(name, i)
        ax.semilogx(k, cv["r"], color=color, ls=ls, lw=lw, label=name)
    ax.axhline(1, color="k", lw=0.8)
    ax.axvspan(*band, color="0.92", zorder=-1)
    ax.set_ylim(-0.2, 1.05)
    ax.set_xlabel("k / k_F")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("r(k) with the truth")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path_r, dpi=DPI)
    return fig_pk, fig


def fig_spectra_physical(data: ReportData, c: int, path: Path, n: int = 3) -> Figure:
    """P(k) of one view of each of the first ``n`` galaxies in physical units (k [1/kpc],
    P [unit² kpc²]): truth (solid), model (dashed) and, when present, the twin floor
    (dotted), one colour per galaxy; saves
    and returns the figure. The summed P(k) of the scores stays in k/k_F, since the views
    have different pixel scales."""
    fig, ax = new_figure(figsize=(7, 4.6))
    floor = data.references.get("floor (twin)")
    first_views = list(dict.fromkeys(data.galaxy))[:n]  # one view of each of the first n galaxies
    for colour, i in enumerate(data.galaxy.index(g) for g in first_views):
        label = f"galaxy {data.galaxy[i]}, view {data.rotation[i]}"
        curves = [("truth", data.target[i, c], "-"), ("model", np.clip(data.prediction[i, c], 0, None), "--")]
        if floor is not None:
            curves.append(("floor (twin)", floor[i, c], ":"))
        for name, m, ls in curves:
            ps = physics.power_spectrum(m, data.pixel_size[i])
            ax.loglog(ps.k, np.where(ps.power > 0, ps.power, np.nan), color=f"C{colour}", ls=ls,
                      label=f"{name}, {label}" if name == "truth" else name)  # fmt: skip
    ax.set_xlabel("k [1/kpc]")
    ax.set_ylabel(f"P(k) [({data.units[c]})² kpc²]")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # labelled 0.1, 0.2, 0.5, 1, …
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return fig


def fig_profiles(data: ReportData, c: int, path: Path, n: int = 3) -> None:
    """Azimuthal mean profiles of truth (solid) and prediction (dashed) for ``n`` views."""
    fig, ax = new_figure(figsize=(6.5, 4.2))
    for i in range(min(n, len(data.source))):
        t = physics.radial_profile(data.target[i, c], data.pixel_size[i])
        p = physics.radial_profile(np.clip(data.prediction[i, c], 0, None), data.pixel_size[i])
        label = f"galaxy {data.galaxy[i]} view {data.rotation[i]}"
        ax.semilogy(t.radius, np.where(t.value > 0, t.value, np.nan), f"C{i}-", label=f"truth, {label}")
        ax.semilogy(p.radius, np.where(p.value > 0, p.value, np.nan), f"C{i}--", label="prediction")
    ax.set_xlabel("R [kpc]")
    ax.set_ylabel(f"azimuthal mean [{data.units[c]}]")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def fig_distributions(data: ReportData, c: int, path: Path) -> None:
    """Pooled log10 pixel distributions of truth and prediction (zero fractions in the legend)."""
    t, p = data.target[:, c], np.clip(data.prediction[:, c], 0, None)
    pos = t[t > 0]
    lo, hi = (np.log10(pos.min()), np.log10(pos.max())) if pos.size else (-1.0, 1.0)
    edges = np.linspace(lo - 0.5, hi + 0.5, 60)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = new_figure(figsize=(6.5, 4.0))
    for x, style, name in ((t, "k-", "truth"), (p, "C3--", "prediction")):
        d = physics.pixel_distribution(x.reshape(1, -1, x.shape[-1]), edges=edges)
        ax.step(
            centres, d.density[0], style, where="mid", label=f"{name} (zeros {float(np.mean(x == 0)):.1%})"
        )
    ax.set_xlabel(f"log10 pixel value [{data.units[c]}]")
    ax.set_ylabel("density per dex (positive pixels)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def fig_mass(data: ReportData, c: int, path: Path) -> None:
    """Predicted against true totals, one point per view, with the 1:1 line."""
    mt = physics.total_mass(data.target[:, c], data.pixel_size)
    mp = physics.total_mass(data.prediction[:, c], data.pixel_size, allow_negative=True)  # a prediction may dip below 0
    fig, ax = new_figure(figsize=(5, 5))
    good = (mt > 0) & (mp > 0)
    ax.loglog(mt[good], mp[good], "o", ms=4, alpha=0.7)
    if good.any():
        lo, hi = min(mt[good].min(), mp[good].min()), max(mt[good].max(), mp[good].max())
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    label = (
        "total mass [Msun]"
        if data.kinds[c] == SURFACE_DENSITY
        else f"Σ value·pixel area [{data.units[c]} kpc²]"
    )
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    if (~good).any():
        ax.set_title(f"{int((~good).sum())} map(s) with non-positive totals not shown", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def fig_training(history: dict[str, tuple[np.ndarray, np.ndarray]], references: dict[str, float], path: Path) -> Figure:
    """Losses (left) and ``val/physics_score`` (right) against the training step, with the
    references' physics scores (``{name: score}``, e.g. the best baseline and the floor) as
    horizontal lines; saves and returns the figure."""
    fig, (a1, a2) = new_figure(1, 2, figsize=(12, 4.2))
    for name in ("train/loss", "val/loss"):
        if name in history:
            steps, values = history[name]
            a1.plot(steps, values, "-" if name.startswith("train") else "o-", ms=3, label=name)
    a1.set_yscale("log")
    a1.set_xlabel("training step")
    a1.set_ylabel("loss [normalised units]")
    a1.legend(fontsize=8)
    if "val/physics_score" in history:
        steps, values = history["val/physics_score"]
        a2.plot(steps, values, "o-", color="C3", ms=3, label="model (validation split)")
    for i, (name, score) in enumerate(references.items()):
        color, ls, _ = _style(name, i + 1)
        a2.axhline(score, color=color, ls=ls, lw=1.2, label=f"{name} (test split)")
    a2.set_xlabel("training step")
    a2.set_ylabel("physics score (lower is better)")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return fig
