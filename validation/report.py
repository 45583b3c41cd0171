"""Validation reports: Markdown tables and figures of a model next to its baselines and floor.

``write_report`` writes ``index.md``, the figures (``validation.report_figures``),
``scores.json`` and ``curves.npz``; ``compare_reports`` puts several such runs in one
table with overlaid curves. Scores and intervals come from ``validation.report_scores``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from validation.baselines import BASELINE_ORDER
from validation.collection import UNITS
from validation.report_figures import (
    DPI,
    fig_distributions,
    fig_examples,
    fig_mass,
    fig_profiles,
    fig_spectra,
    fig_spectra_physical,
    fig_training,
    new_figure,
)
from validation.report_scores import ReportData, Scored, score_all, spectral_curves

__all__ = ["SCORE_NAMES", "ReportData", "compare_reports", "write_report"]

SCORE_NAMES = {
    "physics_score": "physics score (weighted sum)",
    "pk_dex": "P(k) error \\|log10 P_pred/P_true\\|",
    "one_minus_r": "1 − r(k)",
    "mass_dex": "mass error \\|log10 M_pred/M_true\\|",
    "mass_bias_dex": "mass bias log10 M_pred/M_true",
    "profile_dex": "radial-profile error",
    "r50_dex": "R50 error \\|log10 R50_pred/R50_true\\|",
    "w1_dex": "pixel-distribution W1",
    "transfer_dex": "\\|log10 T(k)\\| (= ½ P(k) error)",
    "mass_rel": "\\|ΔM/M\\|",
    "r50_rel": "\\|ΔR50/R50\\|",
    "mse": "MSE (normalised)",
    "psnr": "PSNR (normalised)",
    "ssim": "SSIM (normalised)",
}
#: reference columns in the order a reader compares them
ORDER = ("floor (twin)", "oracle", *BASELINE_ORDER)


def _cell(iv) -> str:
    if iv is None:
        return "—"
    if math.isnan(iv.lo):
        return f"{iv.value:.3g}"
    return str(iv)


def _table(data: ReportData, scored: dict[str, Scored]) -> list[str]:
    cols = ["model", *sorted((n for n in scored if n != "model"), key=lambda n: (*ORDER, n).index(n))]
    lines = ["| domain | score | unit | " + " | ".join(cols) + " |", "|---" * (len(cols) + 3) + "|"]
    for domain in [*data.domains, "all"]:
        for name in SCORE_NAMES:
            key = name if domain == "all" else f"{domain}/{name}"
            if domain == "all" and name != "physics_score":
                continue
            if key not in scored["model"].scores and not any(key in s.scores for s in scored.values()):
                continue
            cells = [_cell(scored[c].scores.get(key)) for c in cols]
            lines.append(
                f"| {domain} | {SCORE_NAMES[name]} | {UNITS.get(name, '')} | " + " | ".join(cells) + " |"
            )
    return lines


def _verdict(scored: dict[str, Scored]) -> str:
    model = scored["model"].scores.get("physics_score")
    baselines = {n: s.scores["physics_score"].value for n, s in scored.items()
                 if n in BASELINE_ORDER and "physics_score" in s.scores}  # fmt: skip
    if model is None or not baselines:
        return ""
    best = min(baselines, key=baselines.get)
    ref = scored[best].scores["physics_score"]
    if model.value >= ref.value:
        return f"The model's physics score {model.value:.3g} does **not** beat the best baseline, {best} ({ref.value:.3g})."
    clear = not math.isnan(model.hi) and not math.isnan(ref.lo) and model.hi < ref.lo
    how = "and the 68 % intervals do not overlap" if clear else "but the 68 % intervals overlap"
    return f"The model's physics score {model.value:.3g} beats the best baseline, {best} ({ref.value:.3g}), {how}."


def write_report(data: ReportData, out_dir: str | Path, title: str, n_boot: int = 200) -> Path:
    """Write ``index.md``, figures, ``scores.json`` and ``curves.npz`` to ``out_dir``; return the index path."""
    out = Path(out_dir)
    scored = score_all(data, n_boot)
    out.mkdir(parents=True, exist_ok=True)
    notes = [f"{name}: {s.note}" for name, s in scored.items() if s.note]
    if np.all(data.prediction == 0):
        notes.insert(0, "**The predictions are all zero (degenerate).** Scores that need power or mass in "
                        "the prediction take their worst values; some scores are undefined.")  # fmt: skip
    all_curves: dict[str, np.ndarray] = {}
    for c, d in enumerate(data.domains):
        tag = d.replace("/", "_")
        curves = {name: spectral_curves(p[:, c], data.target[:, c]) for name, p in data.predictions().items()}
        fig_examples(data, c, out / f"{tag}_examples.png")
        fig_spectra(
            curves, data.units[c], out / f"{tag}_power_spectrum.png", out / f"{tag}_cross_correlation.png"
        )
        fig_spectra_physical(data, c, out / f"{tag}_power_spectrum_kpc.png")
        fig_profiles(data, c, out / f"{tag}_profiles.png")
        fig_distributions(data, c, out / f"{tag}_distributions.png")
        fig_mass(data, c, out / f"{tag}_mass.png")
        for name, cv in curves.items():
            prefix = tag if name == "model" else f"{tag}/{name}"
            all_curves.update({f"{prefix}/{k}": np.asarray(v) for k, v in cv.items()})
    np.savez(out / "curves.npz", **all_curves)
    if data.history:
        best = min((n for n in scored if n not in ("model", "oracle", "floor (twin)")),
                   key=lambda n: scored[n].scores["physics_score"].value, default=None)  # fmt: skip
        refs = {n: scored[n].scores["physics_score"].value for n in (best, "floor (twin)") if n in scored}
        fig_training(data.history, refs, out / "training.png")
    plain = {n: {k: iv.value for k, iv in s.scores.items()} for n, s in scored.items()}
    intervals = {n: {k: [iv.lo, iv.hi] for k, iv in s.scores.items()} for n, s in scored.items()}
    summary = {"title": title, "scores": plain["model"], "intervals": intervals["model"],
               "references": {n: v for n, v in plain.items() if n != "model"},
               "reference_intervals": {n: v for n, v in intervals.items() if n != "model"},
               "meta": data.meta, "n_maps": len(data.source), "n_galaxies": len(set(data.galaxy))}  # fmt: skip
    (out / "scores.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "index.md").write_text("\n".join(_markdown(data, scored, title, notes, n_boot)) + "\n")
    return out / "index.md"


def _markdown(
    data: ReportData, scored: dict[str, Scored], title: str, notes: list[str], n_boot: int
) -> list[str]:
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in data.meta.items()]
    lines += [f"- **maps**: {len(data.source)} views of {len(set(data.galaxy))} galaxies, "
              f"{data.source.shape[-2]}×{data.source.shape[-1]} pixels; source `{data.source_domain}` "
              f"[{data.source_unit}] → targets " + ", ".join(f"`{d}` [{u}]" for d, u in zip(data.domains, data.units, strict=True)),
              "- **references**: " + (", ".join(f"`{n}`" for n in data.references) or "none"), ""]  # fmt: skip
    lines += [f"> {note}" for note in notes] + ([""] if notes else [])
    verdict = _verdict(scored)
    lines += ["## Scores", "", *([verdict, ""] if verdict else []),
              f"Value on all maps and, in brackets, the 68 % bootstrap interval over galaxies ({n_boot} resamples). "
              "Lower is better for every score but PSNR and SSIM; spectral scores use k ∈ [3 k_F, k_Nyq/2]. "
              "`floor (twin)`: the same galaxy and view with the random parts the source does not show "
              "redrawn (what a perfect generative model would score); `oracle`: the mean of 16 twins (what a "
              "perfect deterministic predictor would score); the other columns are baselines fitted on the "
              "training split. Definitions: docs/validation.md and docs/fidelity.md of galchemy.", "",
              *_table(data, scored)]  # fmt: skip
    if data.history:
        lines += ["", "## Training curves", "", "Losses and the validation physics score against the training "
                  "step, with the best baseline's and the floor's test-split scores for comparison.", "",
                  "![training curves](training.png)"]  # fmt: skip
    for d in data.domains:
        tag = d.replace("/", "_")
        lines += ["", f"## {d}", "", f"### Example maps ({d}, physical units)", "", f"![examples]({tag}_examples.png)", "",
                  "### Power spectrum and ratio, with baselines and floor", "", f"![P(k)]({tag}_power_spectrum.png)", "",
                  "### Power spectra of single views in physical units", "", f"![P(k) in kpc]({tag}_power_spectrum_kpc.png)", "",
                  "### Cross-correlation coefficient with the truth", "", f"![r(k)]({tag}_cross_correlation.png)", "",
                  "### Radial profiles", "", f"![profiles]({tag}_profiles.png)", "",
                  "### Pixel distributions", "", f"![distributions]({tag}_distributions.png)", "",
                  "### Totals, predicted vs true", "", f"![mass]({tag}_mass.png)"]  # fmt: skip
    return lines


def compare_reports(run_dirs: Sequence[str | Path], out_dir: str | Path, title: str = "Comparison") -> Path:
    """One table of every run's model scores (with the first run's references) and overlaid
    P_pred/P_true and r(k) curves; returns the index path."""
    out = Path(out_dir)
    runs = []
    for d in map(Path, run_dirs):
        if not (d / "scores.json").is_file():
            raise ValueError(f"{d}: no scores.json (not a report folder)")
        runs.append((d, json.loads((d / "scores.json").read_text()), dict(np.load(d / "curves.npz"))))
    out.mkdir(parents=True, exist_ok=True)
    refs = runs[0][1].get("references", {})
    cols = [s["title"] for _, s, _ in runs] + [f"{n} *" for n in refs]
    order = list(SCORE_NAMES)
    keys = sorted({k for _, s, _ in runs for k in s["scores"] if k.split("/")[-1] in SCORE_NAMES},
                  key=lambda k: ("/" not in k, k.split("/")[0], order.index(k.split("/")[-1])))  # fmt: skip
    lines = [f"# {title}", ""]
    if refs:
        lines += [f"\\* references of the first run ({runs[0][1]['title']}), on the same test maps.", ""]
    lines += ["| score | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for k in keys:
        vals = [s["scores"].get(k) for _, s, _ in runs] + [r.get(k) for r in refs.values()]
        lines.append(f"| {k} | " + " | ".join("—" if v is None else f"{v:.4g}" for v in vals) + " |")
    tags = sorted({k.split("/")[0] for _, _, c in runs for k in c})
    for tag in tags:
        fig, (a1, a2) = new_figure(1, 2, figsize=(12, 4.2))
        for i, (_, s, c) in enumerate(runs):
            if f"{tag}/k_over_kf" in c:
                a1.loglog(c[f"{tag}/k_over_kf"], c[f"{tag}/transfer"] ** 2, f"C{i}-", label=s["title"])
                a2.semilogx(c[f"{tag}/k_over_kf"], c[f"{tag}/r"], f"C{i}-", label=s["title"])
        c0 = runs[0][2]
        for name in ("floor (twin)", "lookup"):
            if f"{tag}/{name}/k_over_kf" in c0:
                k = c0[f"{tag}/{name}/k_over_kf"]
                a1.loglog(
                    k, c0[f"{tag}/{name}/transfer"] ** 2, "k:" if "floor" in name else "0.5", lw=1, label=name
                )
                a2.semilogx(k, c0[f"{tag}/{name}/r"], "k:" if "floor" in name else "0.5", lw=1, label=name)
        for ax in (a1, a2):
            ax.axhline(1, color="k", lw=0.8)
            ax.set_xlabel("k / k_F")
        a1.set_ylabel("P_pred / P_true")
        a2.set_ylabel("r(k) with the truth")
        a2.set_ylim(-0.2, 1.05)
        a1.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{tag}_comparison.png", dpi=DPI)
        lines += ["", f"## {tag}", "", f"![comparison]({tag}_comparison.png)"]
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return index
