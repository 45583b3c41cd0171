"""Validation reports (Markdown + PNG figures) from maps in physical units.

``write_report`` takes arrays, not models, so it serves any generator: source, target
and predicted maps ``(N, C, H, W)`` in physical units, pixel sizes [kpc], domain names and
units, and each view's galaxy id and rotation. It writes ``index.md``, the figures,
``scores.json`` and ``curves.npz``; ``compare_reports`` overlays several such runs.
The yardstick row of the score table compares the truth with the truth of another
rotation of the same galaxy: the disagreement a perfect model of the *galaxy* would still
show between two views.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm, SymLogNorm

import physics
from validation.collection import UNITS, PhysicsMetrics

__all__ = ["ReportData", "compare_reports", "write_report"]

SCORE_NAMES = {
    "physics_score": "physics score (weighted sum)",
    "pk_dex": "power-spectrum error \\|log10 P_pred/P_true\\|",
    "one_minus_r": "1 − r(k)",
    "transfer": "\\|T(k) − 1\\|",
    "mass": "\\|ΔM/M\\|",
    "profile_dex": "radial-profile error",
    "r50": "\\|ΔR50/R50\\|",
    "w1_dex": "pixel-distribution W1",
    "mse": "MSE (normalised)",
    "psnr": "PSNR (normalised)",
    "ssim": "SSIM (normalised)",
}


@dataclass
class ReportData:
    """Everything a report shows. Maps are float64 arrays in physical units.

    Attributes:
        source: ``(N, H, W)`` source maps; ``target``, ``prediction``: ``(N, C, H, W)``.
        pixel_size: ``(N,)`` pixel side [kpc]. ``domains``/``units``: per target channel.
        kinds: per target channel, ``surface_density``, ``mass_weighted`` or ``brightness``.
        galaxy: ``(N,)`` galaxy identifiers (views of one galaxy share one); ``rotation``:
            ``(N,)`` labels of the views.
        normalised_*: optional network-unit maps for MSE/PSNR/SSIM.
        meta: free-form run description (family, sampler, steps, checkpoint, …).
    """

    source: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    pixel_size: np.ndarray
    domains: list[str]
    units: list[str]
    kinds: list[str]
    source_domain: str
    source_unit: str
    galaxy: list[str]
    rotation: list[str]
    normalised_prediction: np.ndarray | None = None
    normalised_target: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)


def _scores(data: ReportData, pred: np.ndarray, true: np.ndarray, pn=None, tn=None) -> dict[str, float]:
    metrics = PhysicsMetrics(
        tuple(true.shape[-2:]), dict(zip(data.domains, zip(data.kinds, data.units, strict=True), strict=True))
    )
    t = lambda a: None if a is None else torch.as_tensor(a)  # noqa: E731
    metrics.update(t(pred), t(true), t(pn), t(tn))
    return {k: float(v) for k, v in metrics.compute().items()}


def _safe_scores(data, pred, true, pn=None, tn=None) -> tuple[dict[str, float], str | None]:
    try:
        return _scores(data, pred, true, pn, tn), None
    except ValueError as err:
        return {}, str(err)


def _yardstick_pairs(data: ReportData) -> tuple[list[int], list[int]]:
    """Index pairs (view a, view b) of different rotations of the same galaxy."""
    first: dict[str, int] = {}
    a, b = [], []
    for i, g in enumerate(data.galaxy):
        if g in first and data.rotation[first[g]] != data.rotation[i]:
            a.append(i)
            b.append(first[g])
        else:
            first.setdefault(g, i)
    return a, b


def _log_image(ax, img: np.ndarray, extent: float, title: str, unit: str, fig) -> None:
    pos = img[img > 0]
    if pos.size:
        norm = LogNorm(vmin=max(pos.min(), pos.max() * 1e-6), vmax=pos.max())
        im = ax.imshow(
            np.where(img > 0, img, np.nan).T,
            origin="lower",
            norm=norm,
            cmap="magma",
            extent=[-extent, extent] * 2,
        )
        fig.colorbar(im, ax=ax, fraction=0.046, label=unit)
    else:
        ax.imshow(np.zeros_like(img).T, origin="lower", cmap="gray", extent=[-extent, extent] * 2)
        ax.text(0, 0, "all zero", ha="center", va="center", color="w")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x [kpc]", fontsize=8)


def _fig_examples(data: ReportData, c: int, path: Path, n: int = 3) -> None:
    n = min(n, len(data.source))
    fig, axes = plt.subplots(n, 4, figsize=(17, 3.8 * n), squeeze=False)
    for row in range(n):
        ext = data.pixel_size[row] * data.source.shape[-1] / 2
        _log_image(
            axes[row, 0], data.source[row], ext, f"source: {data.source_domain}", data.source_unit, fig
        )
        _log_image(axes[row, 1], data.target[row, c], ext, f"truth: {data.domains[c]}", data.units[c], fig)
        _log_image(
            axes[row, 2], data.prediction[row, c], ext, f"prediction: {data.domains[c]}", data.units[c], fig
        )
        res = data.prediction[row, c] - data.target[row, c]
        lim = max(np.abs(res).max(), 1e-300)
        im = axes[row, 3].imshow(res.T, origin="lower", cmap="RdBu_r", extent=[-ext, ext] * 2,
                                 norm=SymLogNorm(linthresh=lim * 1e-3, vmin=-lim, vmax=lim))  # fmt: skip
        fig.colorbar(im, ax=axes[row, 3], fraction=0.046, label=data.units[c])
        axes[row, 3].set_title("residual (prediction − truth)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _fig_spectra(curves: dict[str, np.ndarray], unit: str, path_pk: Path, path_r: Path) -> None:
    k = curves["k_over_kf"]
    fig, (ax, axr) = plt.subplots(
        2, 1, figsize=(6.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    ax.loglog(k, curves["p_true"], "k-", label="truth")
    ax.loglog(k, np.maximum(curves["p_pred"], 1e-300), "C3--", label="prediction")
    if "p_yard" in curves:
        ax.loglog(k, curves["p_yard"], "C0:", label="other rotation (yardstick)")
    ax.set_ylabel(f"Σ P(k) over maps [({unit})² pixel²]")
    ax.legend()
    axr.semilogx(k, curves["transfer"] ** 2, "C3-")
    axr.axhline(1, color="k", lw=0.8)
    axr.axvspan(3, k.max() / 2**0.5 / 2, color="0.9", zorder=-1)
    axr.set_ylabel("P_pred / P_true")
    axr.set_xlabel("k / k_F")
    axr.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path_pk, dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.semilogx(k, curves["r"], "C3-", label="prediction vs truth")
    if "r_yard" in curves:
        ax.semilogx(k, curves["r_yard"], "C0:", label="truth vs other rotation")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_ylim(-0.2, 1.05)
    ax.set_xlabel("k / k_F")
    ax.set_ylabel("r(k)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_r, dpi=80)
    plt.close(fig)


def _fig_profiles(data: ReportData, c: int, path: Path, n: int = 3) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i in range(min(n, len(data.source))):
        t = physics.radial_profile(data.target[i, c], data.pixel_size[i])
        p = physics.radial_profile(np.clip(data.prediction[i, c], 0, None), data.pixel_size[i])
        ax.semilogy(t.radius, np.where(t.value > 0, t.value, np.nan), f"C{i}-", label=f"truth {i}")
        ax.semilogy(p.radius, np.where(p.value > 0, p.value, np.nan), f"C{i}--", label=f"prediction {i}")
    ax.set_xlabel("R [kpc]")
    ax.set_ylabel(f"azimuthal mean [{data.units[c]}]")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _fig_distributions(data: ReportData, c: int, path: Path) -> tuple[float, float]:
    t, p = data.target[:, c], np.clip(data.prediction[:, c], 0, None)
    pos = t[t > 0]
    lo, hi = (np.log10(pos.min()), np.log10(pos.max())) if pos.size else (-1.0, 1.0)
    edges = np.linspace(lo - 0.5, hi + 0.5, 60)
    dt = physics.pixel_distribution(t[None] if t.ndim == 2 else t.reshape(1, -1, t.shape[-1]), edges=edges)
    dp = physics.pixel_distribution(p.reshape(1, -1, p.shape[-1]), edges=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    ax.step(
        centres,
        dt.density[0] if dt.density.ndim > 1 else dt.density,
        "k-",
        where="mid",
        label=f"truth (zeros {float(np.mean(t == 0)):.1%})",
    )
    ax.step(
        centres, dp.density[0], "C3--", where="mid", label=f"prediction (zeros {float(np.mean(p == 0)):.1%})"
    )
    ax.set_xlabel(f"log10 pixel value [{data.units[c]}]")
    ax.set_ylabel("density per dex (positive pixels)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return float(np.mean(t == 0)), float(np.mean(p == 0))


def _fig_mass(data: ReportData, c: int, path: Path) -> None:
    mt = physics.total_mass(data.target[:, c], data.pixel_size)
    mp = physics.total_mass(data.prediction[:, c], data.pixel_size)
    fig, ax = plt.subplots(figsize=(5, 5))
    good = (mt > 0) & (mp > 0)
    ax.loglog(mt[good], mp[good], "o", ms=4, alpha=0.7)
    if good.any():
        lo, hi = min(mt[good].min(), mp[good].min()), max(mt[good].max(), mp[good].max())
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    label = (
        "total mass [Msun]"
        if data.kinds[c] == "surface_density"
        else f"Σ value·pixel area [{data.units[c]} kpc²]"
    )
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    if (~good).any():
        ax.set_title(f"{int((~good).sum())} map(s) with non-positive totals not shown", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _curves(data: ReportData, c: int, pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    cs = physics.cross_power(pred, true, 1.0)
    sp, st, sc = cs.power_a.sum(0), cs.power_b.sum(0), cs.cross.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"k_over_kf": physics.mode_bins(true.shape)[0], "p_pred": sp, "p_true": st,
                "transfer": np.sqrt(sp / st), "r": sc / np.sqrt(sp * st)}  # fmt: skip


def write_report(data: ReportData, out_dir: str | Path, title: str) -> Path:
    """Write ``index.md``, figures, ``scores.json`` and ``curves.npz`` to ``out_dir``; return the index path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(data.source)
    if n == 0:
        raise ValueError("write_report: no maps to report on")
    notes: list[str] = []
    if not np.isfinite(data.prediction).all():
        raise ValueError("write_report: predictions contain NaN/Inf")
    if np.all(data.prediction == 0):
        notes.append("**The predictions are all zero (degenerate).** Scores that need power or mass in the "
                     "prediction take their worst values; profile and distribution scores may be undefined.")  # fmt: skip
    scores, err = _safe_scores(
        data, data.prediction, data.target, data.normalised_prediction, data.normalised_target
    )
    if err:
        notes.append(f"Some scores are undefined: {err}")
        scores = {}
        for c, d in enumerate(data.domains):  # fall back to what can be computed per score
            try:
                scores[f"{d}/pk_dex"] = float(
                    physics.spectrum_log_error(data.prediction[:, c], data.target[:, c]).mean()
                )
                scores[f"{d}/one_minus_r"] = float(
                    physics.correlation_error(data.prediction[:, c], data.target[:, c]).mean()
                )
                scores[f"{d}/mass"] = float(
                    np.abs(physics.relative_mass_error(data.prediction[:, c], data.target[:, c])).mean()
                )
            except ValueError as e2:
                notes.append(f"{d}: {e2}")
    ia, ib = _yardstick_pairs(data)
    yard: dict[str, float] = {}
    if ia:
        yard, yerr = _safe_scores(data, data.target[ia], data.target[ib])
        if yerr:
            notes.append(f"Yardstick scores undefined: {yerr}")
    else:
        notes.append("No galaxy has two rotations in this set, so there is no true-vs-true yardstick.")
    figures: list[str] = []
    all_curves: dict[str, np.ndarray] = {}
    for c, d in enumerate(data.domains):
        tag = d.replace("/", "_")
        _fig_examples(data, c, out / f"{tag}_examples.png")
        curves = _curves(data, c, data.prediction[:, c], data.target[:, c])
        if ia:
            yc = _curves(data, c, data.target[ia, c], data.target[ib, c])
            curves["p_yard"], curves["r_yard"] = yc["p_pred"], yc["r"]
        _fig_spectra(
            curves, data.units[c], out / f"{tag}_power_spectrum.png", out / f"{tag}_cross_correlation.png"
        )
        _fig_profiles(data, c, out / f"{tag}_profiles.png")
        _fig_distributions(data, c, out / f"{tag}_distributions.png")
        _fig_mass(data, c, out / f"{tag}_mass.png")
        all_curves.update({f"{tag}/{k}": np.asarray(v) for k, v in curves.items()})
        figures.append(d)
    np.savez(out / "curves.npz", **all_curves)
    (out / "scores.json").write_text(
        json.dumps(
            {"title": title, "scores": scores, "yardstick": yard, "meta": data.meta, "n_maps": n},
            indent=1,
            default=str,
        )
    )
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in data.meta.items()]
    lines += [f"- **maps**: {n} views of {len(set(data.galaxy))} galaxies, {data.source.shape[-2]}×{data.source.shape[-1]} pixels; "
              f"source `{data.source_domain}` [{data.source_unit}] → targets " + ", ".join(f"`{d}` [{u}]" for d, u in zip(data.domains, data.units, strict=True)),
              f"- **yardstick**: {len(ia)} pairs of two rotations of the same galaxy (truth vs truth)", ""]  # fmt: skip
    lines += [f"> {note}" for note in notes] + ([""] if notes else [])
    lines += ["## Scores", "", "Lower is better for every score but PSNR and SSIM; k ranges are [3 k_F, k_Nyq/2]. "
              "Definitions: [docs/validation.md](../../validation.md).", "",
              "| domain | score | value | true-vs-true yardstick | unit |", "|---|---|---|---|---|"]  # fmt: skip
    keys = sorted(
        scores,
        key=lambda k: (
            k.split("/")[0] if "/" in k else "~",
            list(SCORE_NAMES).index(k.split("/")[-1]) if k.split("/")[-1] in SCORE_NAMES else 99,
        ),
    )
    for key in keys:
        domain, name = key.split("/") if "/" in key else ("all", key)
        if domain == "all" and name != "physics_score":
            continue
        y = yard.get(key)
        ys = "—" if y is None or (isinstance(y, float) and math.isnan(y)) else f"{y:.4g}"
        lines.append(
            f"| {domain} | {SCORE_NAMES.get(name, name)} | {scores[key]:.4g} | {ys} | {UNITS.get(name, '')} |"
        )
    for d in figures:
        tag = d.replace("/", "_")
        lines += ["", f"## {d}", "", f"### Example maps ({d}, physical units)", "", f"![examples]({tag}_examples.png)", "",
                  "### Power spectrum and ratio", "", f"![P(k)]({tag}_power_spectrum.png)", "",
                  "### Cross-correlation coefficient", "", f"![r(k)]({tag}_cross_correlation.png)", "",
                  "### Radial profiles", "", f"![profiles]({tag}_profiles.png)", "",
                  "### Pixel distributions", "", f"![distributions]({tag}_distributions.png)", "",
                  "### Totals, predicted vs true", "", f"![mass]({tag}_mass.png)"]  # fmt: skip
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return index


def compare_reports(run_dirs: Sequence[str | Path], out_dir: str | Path, title: str = "Comparison") -> Path:
    """One table of every run's scores and overlaid T(k)² and r(k) curves; returns the index path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for d in map(Path, run_dirs):
        if not (d / "scores.json").is_file():
            raise ValueError(f"{d}: no scores.json (not a report folder)")
        runs.append((d, json.loads((d / "scores.json").read_text()), dict(np.load(d / "curves.npz"))))
    keys = sorted({k for _, s, _ in runs for k in s["scores"] if k.split("/")[-1] in SCORE_NAMES})
    lines = [
        f"# {title}",
        "",
        "| score | " + " | ".join(s["title"] for _, s, _ in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    for k in keys:
        vals = [s["scores"].get(k) for _, s, _ in runs]
        lines.append(f"| {k} | " + " | ".join("—" if v is None else f"{v:.4g}" for v in vals) + " |")
    tags = sorted({k.split("/")[0] for _, _, c in runs for k in c})
    for tag in tags:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
        for i, (_, s, c) in enumerate(runs):
            if f"{tag}/k_over_kf" not in c:
                continue
            k = c[f"{tag}/k_over_kf"]
            a1.loglog(k, c[f"{tag}/transfer"] ** 2, f"C{i}-", label=s["title"])
            a2.semilogx(k, c[f"{tag}/r"], f"C{i}-", label=s["title"])
        a1.axhline(1, color="k", lw=0.8)
        a2.axhline(1, color="k", lw=0.8)
        a1.set_xlabel("k / k_F")
        a2.set_xlabel("k / k_F")
        a1.set_ylabel("P_pred / P_true")
        a2.set_ylabel("r(k)")
        a2.set_ylim(-0.2, 1.05)
        a1.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{tag}_comparison.png", dpi=80)
        plt.close(fig)
        lines += ["", f"## {tag}", "", f"![comparison]({tag}_comparison.png)"]
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return index
