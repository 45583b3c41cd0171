"""Validation layer: metrics against physics, analytic values, DDP, early stopping, reports."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
from conftest import gaussian_random_field

import physics
from app.data import GalaxyDataModule
from app.families import InDI
from validation import (
    CrossCorrelationError,
    HalfMassRadiusError,
    HalfMassRadiusErrorDex,
    HalfMassRadiusErrors,
    MassBiasDex,
    MassErrorDex,
    PhysicsCheckpoint,
    PhysicsEarlyStopping,
    PhysicsMetrics,
    PixelW1Dex,
    PowerSpectrumError,
    ProfileErrorDex,
    RelativeMassError,
    TransferFunctionError,
)
from validation.callbacks import CHECKED_WITH_LIGHTNING, LIGHTNING_PRIVATES
from validation.report import ReportData, compare_reports, write_report
from validation.report_figures import fig_spectra, fig_spectra_physical
from validation.report_scores import spectral_curves

SHAPE = (32, 32)


def _maps(seed: int, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.arange(32) + 0.5 - 16).double()
    r = torch.sqrt(x[:, None] ** 2 + x[None, :] ** 2)
    true = 1e7 * torch.exp(-r / 5)[None] * (1 + 0.3 * torch.rand(n, 32, 32, generator=g, dtype=torch.float64))
    pred = true * (1 + 0.5 * torch.rand(n, 32, 32, generator=g, dtype=torch.float64)) + 1e5
    return pred, true


def _two_batches(metric, pred, true):
    metric.update(pred[:2], true[:2])
    metric.update(pred[2:], true[2:])
    return float(metric.compute())


def _spectral_sums(pred, true):
    cs = physics.cross_power(pred, true, 1.0)
    k, _ = physics.mode_bins(SHAPE)
    use = (k >= 3) & (k <= 8)
    return cs.power_a.sum(0)[use], cs.power_b.sum(0)[use], cs.cross.sum(0)[use]


def test_both_r50_columns_from_one_r50_pair_per_map(monkeypatch):
    """``HalfMassRadiusErrors`` gives exactly the two single metrics' values, a known answer
    for a blob widened ×2 (R50 ×2: 0.301 dex, relative 1), and the collection bisects once
    per update for both columns."""
    pred, true = _maps(1)
    both = HalfMassRadiusErrors()
    both.update(pred[:2], true[:2])
    both.update(pred[2:], true[2:])
    out = both.compute()
    assert float(out["r50_dex"]) == _two_batches(HalfMassRadiusErrorDex(), pred, true)
    assert float(out["r50_rel"]) == _two_batches(HalfMassRadiusError(), pred, true)
    x = (torch.arange(128) + 0.5 - 64).double()  # σ = 8 and 16 px: pixelisation and the aperture cost < 1e-3 dex
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    narrow, wide = torch.exp(-r2 / (2 * 8.0**2))[None], torch.exp(-r2 / (2 * 16.0**2))[None]
    known = HalfMassRadiusErrors()
    known.update(wide, narrow)
    assert float(known.compute()["r50_dex"]) == pytest.approx(math.log10(2), abs=1e-3)
    assert float(known.compute()["r50_rel"]) == pytest.approx(1.0, abs=5e-3)
    calls = []
    real = physics.r50_errors
    monkeypatch.setattr(physics, "r50_errors", lambda p, t: calls.append(1) or real(p, t))
    m = PhysicsMetrics(SHAPE, {"gas": ("surface_density", "solMass / kpc2")})
    m.update(pred[:, None], true[:, None])
    scores = m.compute()
    assert len(calls) == 1
    assert float(scores["gas/r50_dex"]) == pytest.approx(float(out["r50_dex"]), rel=1e-12)
    assert float(scores["gas/r50_rel"]) == pytest.approx(float(out["r50_rel"]), rel=1e-12)


def test_metrics_equal_physics_averaged_over_batches():
    pred, true = _maps(0)
    sp, st, sc = _spectral_sums(pred.numpy(), true.numpy())
    assert _two_batches(PowerSpectrumError(SHAPE), pred, true) == pytest.approx(
        np.abs(np.log10(sp / st)).mean(), rel=1e-12
    )
    assert _two_batches(CrossCorrelationError(SHAPE), pred, true) == pytest.approx(
        (1 - sc / np.sqrt(sp * st)).mean(), rel=1e-12
    )
    assert _two_batches(TransferFunctionError(SHAPE), pred, true) == pytest.approx(
        np.abs(np.log10(np.sqrt(sp / st))).mean(), rel=1e-12
    )
    assert _two_batches(RelativeMassError(), pred, true) == pytest.approx(
        float(physics.relative_mass_error(pred, true).abs().mean()), rel=1e-12
    )
    assert _two_batches(ProfileErrorDex(), pred, true) == pytest.approx(
        float(physics.profile_error_dex(pred, true).mean()), rel=1e-12
    )
    assert _two_batches(HalfMassRadiusError(), pred, true) == pytest.approx(
        float(physics.r50_error(pred, true).abs().mean()), rel=1e-12
    )
    assert _two_batches(HalfMassRadiusErrorDex(), pred, true) == pytest.approx(
        float(np.abs(np.log10(1 + physics.r50_error(pred, true))).mean()), rel=1e-12
    )
    assert _two_batches(MassErrorDex(), pred, true) == pytest.approx(
        float(torch.log10(pred.sum((-2, -1)) / true.sum((-2, -1))).abs().mean()), rel=1e-12
    )
    assert _two_batches(MassBiasDex(), pred, true) == pytest.approx(
        float(torch.log10(pred.sum((-2, -1)) / true.sum((-2, -1))).mean()), rel=1e-12
    )
    w1 = _two_batches(PixelW1Dex((3.0, 9.0), bins=600), pred, true)
    assert w1 == pytest.approx(float(physics.wasserstein_1(pred, true)), abs=0.01)  # bin width 0.01 dex
    # one shot equals two batches
    for cls in (PowerSpectrumError, CrossCorrelationError):
        one = cls(SHAPE)
        one.update(pred, true)
        assert float(one.compute()) == pytest.approx(_two_batches(cls(SHAPE), pred, true), rel=1e-12)


def test_perfect_and_scaled_predictions_score_analytic_values():
    _, true = _maps(1)
    for cls, perfect in [(PowerSpectrumError, 0), (CrossCorrelationError, 0), (TransferFunctionError, 0)]:
        assert _two_batches(cls(SHAPE), true, true) == pytest.approx(perfect, abs=1e-12)
    c = 3.0
    assert _two_batches(PowerSpectrumError(SHAPE), c * true, true) == pytest.approx(
        2 * math.log10(c), rel=1e-12
    )
    assert _two_batches(TransferFunctionError(SHAPE), c * true, true) == pytest.approx(math.log10(c), rel=1e-12)
    assert _two_batches(TransferFunctionError(SHAPE), true / c, true) == pytest.approx(math.log10(c), rel=1e-12)
    assert _two_batches(MassErrorDex(), true / c, true) == pytest.approx(math.log10(c), rel=1e-12)
    assert _two_batches(CrossCorrelationError(SHAPE), c * true, true) == pytest.approx(0, abs=1e-12)
    assert _two_batches(RelativeMassError(), c * true, true) == pytest.approx(c - 1, rel=1e-12)
    assert _two_batches(ProfileErrorDex(), c * true, true) == pytest.approx(math.log10(c), rel=1e-12)
    assert _two_batches(PixelW1Dex((3.0, 9.0), 600), c * true, true) == pytest.approx(math.log10(c), abs=0.01)
    zero = torch.zeros_like(true)
    assert _two_batches(CrossCorrelationError(SHAPE), zero, true) == pytest.approx(1.0)
    assert _two_batches(PowerSpectrumError(SHAPE), zero, true) == pytest.approx(10.0)


def test_added_noise_gives_analytic_correlation(rng):
    alpha = 1.0
    x = torch.from_numpy(np.stack([gaussian_random_field(64, 25.0, -2.0, rng) for _ in range(12)]))
    noise = torch.from_numpy(np.stack([gaussian_random_field(64, 25.0, -2.0, rng) for _ in range(12)]))
    m = CrossCorrelationError((64, 64))
    m.update(x + math.sqrt(alpha) * noise, x)
    assert float(m.compute()) == pytest.approx(1 - 1 / math.sqrt(1 + alpha), abs=0.02)


def test_physics_metrics_collection_and_score():
    _, true = _maps(2)
    m = PhysicsMetrics(SHAPE, {"gas": ("surface_density", "solMass / kpc2")})
    m.update(true[:, None], true[:, None], torch.zeros(6, 1, 32, 32), torch.zeros(6, 1, 32, 32))
    out = m.compute()
    assert float(out["physics_score"]) == pytest.approx(0.0, abs=1e-12) and float(
        out["gas/ssim"]
    ) == pytest.approx(1.0)
    m.reset()
    assert not m.updated
    m.update(2 * true[:, None], true[:, None])
    out = m.compute()
    expected = (
        1.0 * 2 * math.log10(2)  # P(k)
        + 1.0 * 0  # 1 - r
        + 1.0 * math.log10(2)  # mass
        + 1.0 * math.log10(2)  # profile
        + 0.5 * 0  # R50
        + float(out["gas/w1_dex"])
    )
    assert float(out["physics_score"]) == pytest.approx(expected, rel=1e-9)


def _dm(mock_dir, **kw):
    opts = {"source": "dm", "targets": ["gas"], "size": 16, "batch_size": 4, "split": (0.5, 0.25, 0.25)} | kw
    return GalaxyDataModule(data=str(mock_dir), **opts)


def _trainer(tmp_path, **kw):
    opts = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": tmp_path,
            "accelerator": "cpu", "num_sanity_val_steps": 0, "enable_checkpointing": False} | kw  # fmt: skip
    return L.Trainer(**opts)


def test_validation_on_two_ddp_processes_matches_one(mock_dir, tmp_path):
    torch.manual_seed(0)
    model = InDI(net={"base_channels": 8, "channel_mults": [1, 2]}, steps=2, val_maps=100)
    one = _trainer(tmp_path, devices=1).validate(model, datamodule=_dm(mock_dir))[0]
    two = _trainer(tmp_path, devices=2, strategy="ddp_spawn").validate(model, datamodule=_dm(mock_dir))[0]
    assert one["val/physics_score"] == pytest.approx(two["val/physics_score"], rel=1e-5)
    assert one["val/gas/pk_dex"] == pytest.approx(two["val/gas/pk_dex"], rel=1e-5)
    for key in ("val/gas/one_minus_r", "val/gas/mass_dex", "val/gas/w1_dex", "val/gas/r50_dex", "val/gas/ssim"):
        assert one[key] == pytest.approx(two[key], rel=1e-5)
    # (val/loss is a stochastic estimate seeded per batch, and DDP changes the batches)


def test_early_stopping_on_physics_score(mock_dir, tmp_path):
    model = InDI(
        net={"base_channels": 8, "channel_mults": [1, 2]}, steps=1, lr=0.0, ema_decay=0.0
    )  # never improves
    stopper = PhysicsEarlyStopping(patience=2)
    trainer = _trainer(tmp_path, max_epochs=20, limit_train_batches=1, callbacks=[stopper])
    trainer.fit(model, datamodule=_dm(mock_dir))
    assert stopper.stopped_epoch > 0 and trainer.current_epoch <= 4
    assert "val/physics_score" in trainer.callback_metrics


def test_last_checkpoint_follows_training_not_the_best_score(mock_dir, tmp_path):
    model = InDI(
        net={"base_channels": 8, "channel_mults": [1, 2]}, steps=1, lr=0.0, ema_decay=0.0
    )  # best at epoch 0
    cb = PhysicsCheckpoint(dirpath=tmp_path, save_top_k=1)
    trainer = _trainer(
        tmp_path, max_epochs=4, limit_train_batches=1, callbacks=[cb], enable_checkpointing=True
    )
    trainer.fit(model, datamodule=_dm(mock_dir))
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["epoch"] == 3
    best = torch.load(cb.best_model_path, weights_only=False)
    assert best["epoch"] == 0


def test_lightning_still_has_the_private_members_physics_checkpoint_uses():
    """Fails loudly (naming the member and the version it was checked with) when Lightning changes."""
    cb = PhysicsCheckpoint()
    missing = [name for name in LIGHTNING_PRIVATES if not hasattr(cb, name)]
    assert not missing, f"lightning {L.__version__} lacks {missing} (checked with {CHECKED_WITH_LIGHTNING})"

    class Bare(PhysicsCheckpoint):
        def __getattribute__(self, name):
            if name == "_should_skip_saving_checkpoint":
                raise AttributeError(name)
            return super().__getattribute__(name)

    with pytest.raises(RuntimeError, match=r"ModelCheckpoint._should_skip_saving_checkpoint.*checked with lightning"):
        Bare(dirpath="unused")._refresh_last(trainer=None)


def _report_data(pred_scale: float = 1.0, zero: bool = False) -> ReportData:
    _, true = _maps(3, n=4)
    pred = torch.zeros_like(true) if zero else true * pred_scale
    return ReportData(
        source=true.numpy() * 3, target=true.numpy()[:, None], prediction=pred.numpy()[:, None],
        pixel_size=np.full(4, 0.5), domains=["gas"], units=["solMass / kpc2"], kinds=["surface_density"],
        source_domain="dm", source_unit="solMass / kpc2", galaxy=["a", "a", "b", "b"], rotation=["0", "1", "0", "1"],
        meta={"family": "test"},
    )  # fmt: skip


def test_report_renders_every_figure_and_the_table(tmp_path):
    data = _report_data(1.5)
    data.references = {"mean_map": data.target * 0.5}
    index = write_report(data, tmp_path / "run", "Test run", n_boot=20)
    text = index.read_text()
    for fig in ("examples", "power_spectrum", "cross_correlation", "profiles", "distributions", "mass"):
        assert (tmp_path / "run" / f"gas_{fig}.png").stat().st_size > 1000
        assert f"gas_{fig}.png" in text
    assert "| gas | physics score" in text and "| model | mean_map |" in text
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert scores["scores"]["gas/mass_rel"] == pytest.approx(0.5, rel=1e-9)
    assert scores["scores"]["gas/mass_dex"] == pytest.approx(math.log10(1.5), rel=1e-9)
    assert scores["references"]["mean_map"]["gas/mass_dex"] == pytest.approx(math.log10(2), rel=1e-9)
    assert "does not** beat the best baseline, mean_map" not in text and "beats the best baseline, mean_map" in text
    # the plotted curves are the scores' curves: P_pred/P_true = 1.5² at every k
    curves = np.load(tmp_path / "run" / "curves.npz")
    ok = np.isfinite(curves["gas/transfer"])
    np.testing.assert_allclose(curves["gas/transfer"][ok] ** 2, 1.5**2, rtol=1e-9)
    np.testing.assert_allclose(curves["gas/mean_map/transfer"][ok] ** 2, 0.25, rtol=1e-9)
    write_report(_report_data(1.0), tmp_path / "perfect", "Perfect", n_boot=5)
    comp = compare_reports([tmp_path / "run", tmp_path / "perfect"], tmp_path / "cmp")
    assert "| gas/mass_rel | 0.5 | 0 | 1 |" not in comp.read_text()  # mean_map's |ΔM/M| is 0.5 too
    assert "| gas/mass_rel | 0.5 | 0 | 0.5 |" in comp.read_text()
    assert (tmp_path / "cmp" / "gas_comparison.png").is_file()


def test_report_figures_plot_the_scored_curves(tmp_path):
    """The P(k) figure's ratio panel and the r(k) figure draw the curves the scores come from."""
    data = _report_data(1.5)
    curves = {"model": spectral_curves(data.prediction[:, 0], data.target[:, 0]), "mean_map": spectral_curves(
        data.target[:, 0] * 0.5, data.target[:, 0])}  # fmt: skip
    fig_pk, fig_r = fig_spectra(curves, "solMass / kpc2", tmp_path / "pk.png", tmp_path / "r.png")
    k = curves["model"]["k_over_kf"]
    ratio = fig_pk.axes[1].lines[0].get_ydata()
    np.testing.assert_array_equal(fig_pk.axes[1].lines[0].get_xdata(), k)
    np.testing.assert_allclose(ratio[np.isfinite(ratio)], 1.5**2, rtol=1e-9)
    np.testing.assert_allclose(fig_pk.axes[1].lines[1].get_ydata()[np.isfinite(ratio)], 0.25, rtol=1e-9)
    np.testing.assert_allclose(fig_pk.axes[0].lines[1].get_ydata(), np.maximum(curves["model"]["p_pred"], 1e-300))
    r = fig_r.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(r[np.isfinite(r)], 1.0, rtol=1e-9)
    # the scored P(k) error is the mean |log10 ratio| of the plotted panel over [3 k_F, k_Nyq/2]
    band = (k >= 3) & (k <= data.target.shape[-1] / 4) & np.isfinite(ratio)
    index = write_report(data, tmp_path / "run", "Test run", n_boot=5)
    scores = json.loads((index.parent / "scores.json").read_text())
    assert scores["scores"]["gas/pk_dex"] == pytest.approx(np.abs(np.log10(ratio[band])).mean(), rel=1e-9)


def test_physical_spectra_figure_plots_each_view_in_kpc(tmp_path):
    """Single-view P(k) in physical units: x is k [1/kpc] of the view's own pixel size, and a
    prediction 1.5 × the truth draws 2.25 × its power."""
    data = _report_data(1.5)
    views = [data.galaxy.index(g) for g in dict.fromkeys(data.galaxy)][:2]  # one view per galaxy
    data.pixel_size[views[1]] = 1.25  # views of different pixel scales keep their own k
    fig = fig_spectra_physical(data, 0, tmp_path / "pk_kpc.png", n=2)
    lines = fig.axes[0].lines
    per = 3 if "floor (twin)" in data.references else 2
    assert len(lines) == 2 * per
    for j, view in enumerate(views):
        truth, model = lines[per * j], lines[per * j + 1]
        ps = physics.power_spectrum(data.target[view, 0], data.pixel_size[view])
        np.testing.assert_allclose(truth.get_xdata(), ps.k, rtol=1e-12)
        np.testing.assert_allclose(model.get_ydata() / truth.get_ydata(), 2.25, rtol=1e-9)
    assert fig.axes[0].get_xlabel() == "k [1/kpc]" and "kpc²" in fig.axes[0].get_ylabel()
    assert (tmp_path / "pk_kpc.png").is_file()


def test_report_survives_all_zero_predictions(tmp_path):
    index = write_report(_report_data(zero=True), tmp_path / "zero", "Degenerate", n_boot=5)
    text = index.read_text()
    assert "all zero (degenerate)" in text
    assert (tmp_path / "zero" / "gas_examples.png").is_file()
    with pytest.raises(ValueError, match="not a report folder"):
        compare_reports([tmp_path], tmp_path / "cmp")


def test_early_stopping_does_not_crash_a_run_that_ends_before_validation(mock_dir, tmp_path):
    model = InDI(net={"base_channels": 8, "channel_mults": [1, 2]}, steps=1)
    trainer = _trainer(tmp_path, max_steps=2, callbacks=[PhysicsEarlyStopping(patience=2)])
    trainer.fit(model, datamodule=_dm(mock_dir))  # --trainer.max_steps=2: no validation ran
    assert trainer.global_step == 2 and "val/physics_score" not in trainer.callback_metrics


def test_example_maps_are_drawn_with_x_to_the_right_and_y_up(tmp_path):
    """Maps are ``[ix, iy]``: a bright pixel at (x max, y min) lands in the bottom-right corner."""
    from validation.report_figures import fig_examples

    data = _report_data(1.0)
    data.target[0, 0] = data.prediction[0, 0] = 1.0
    data.target[0, 0, -1, 0] = data.prediction[0, 0, -1, 0] = 1e6  # ix = last (x max), iy = 0 (y min)
    fig = fig_examples(data, 0, tmp_path / "ex.png", n=1)
    truth_ax = fig.axes[1]
    image = truth_ax.images[0]
    shown = np.asarray(image.get_array())
    assert image.origin == "lower" and np.unravel_index(np.nanargmax(shown), shown.shape) == (0, shown.shape[1] - 1)
    left, right, bottom, top = image.get_extent()
    assert left < right and bottom < top  # row 0 at the bottom (y min), last column at the right (x max)


def test_training_curves_are_read_from_metrics_csv_and_drawn_with_the_references(tmp_path):
    from app.report import read_history
    from validation.report_figures import fig_training

    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train/loss,val/loss,val/physics_score\n0,9,0.5,,\n0,11,,0.4,2.5\n1,19,0.3,,\n1,23,,0.2,1.5\n"
    )
    history = read_history(tmp_path / "metrics.csv")
    np.testing.assert_array_equal(history["val/physics_score"][0], [11, 23])
    np.testing.assert_array_equal(history["val/physics_score"][1], [2.5, 1.5])
    np.testing.assert_array_equal(history["train/loss"][1], [0.5, 0.3])
    assert read_history(tmp_path / "missing.csv") == {}
    fig = fig_training(history, {"lookup": 1.25, "floor (twin)": 0.5}, tmp_path / "t.png")
    score_ax = fig.axes[1]
    np.testing.assert_array_equal(score_ax.lines[0].get_ydata(), [2.5, 1.5])
    assert [float(line.get_ydata()[0]) for line in score_ax.lines[1:]] == [1.25, 0.5]
    assert [t.get_text() for t in score_ax.get_legend().get_texts()][1:] == ["lookup (test split)", "floor (twin) (test split)"]
