"""Everything a model is compared with, for one split of a data module: baselines, floor, oracle.

``report_data`` gathers the maps of a split in physical units, the model's predictions
(through the one generate → physical path) and the references; ``python -m app.report``
and ``benchmarks/bench_fidelity.py`` both use it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import track

from app.data.contract import DataContract
from app.data.domains import get_domain
from app.data.references import mock_seed, mock_twins
from app.families.baseline import FittedBaseline, log_transforms
from app.families.inference import Generated, generate_physical
from validation.baselines import BASELINE_ORDER
from validation.report_scores import ReportData

__all__ = ["BASELINE_ORDER", "predict_maps", "reference_predictions", "report_data"]

log = logging.getLogger(__name__)


def _mock_of(data: DataContract) -> tuple[int, Path] | None:
    """(seed, folder) of the galchemy mock set ``data`` is read from, or None for other data."""
    folder = Path(data.data_path)
    seed = mock_seed(folder) if folder.is_dir() else None
    return None if seed is None else (seed, folder)


def reference_predictions(data: DataContract, maps: dict[str, Any], n_twins: int = 16) -> dict[str, np.ndarray]:
    """Physical ``(N, C, S, S)`` predictions of ``maps`` (``data.maps(split)``) by every baseline
    (fitted on the training split) and, on the built-in mock, the floor and the oracle."""
    out: dict[str, np.ndarray] = {}
    mock = _mock_of(data)
    if mock is not None:
        log.info("twins for the floor and the oracle (%d per view)", n_twins)
        seed, folder = mock
        out.update(mock_twins(maps["rows"], data.source, list(data.targets), seed, data.size, n_twins,
                              cache=folder / "references", weighted_pooling=data.weighted_pooling))  # fmt: skip
    else:
        log.info("not the built-in mock: no twin floor or oracle")
    train = data.maps("train")
    batch = {"source": maps["source"], "index": maps["index"]}
    own = log_transforms(data, train)  # the baselines' own log10 space, fitted once for all of them
    for name in BASELINE_ORDER:  # through the same clamp and inverse transforms as a model
        fitted = FittedBaseline(name, data, train=train, own=own)
        out[name] = generate_physical(fitted, batch, data.to_physical, 0, len(data.targets)).physical.numpy()
    return out


def predict_maps(
    model: Any, data: DataContract, maps: dict[str, Any], progress: bool = False, **overrides: Any
) -> Generated:
    """``model``'s predictions of ``maps`` (``data.maps(split)``), batch by batch through
    ``generate_physical``; ``clamped_fraction`` is the largest of the batches'."""
    model.eval()
    n, bs = len(maps["index"]), data.batch_size
    starts = range(0, n, bs)
    if progress:
        starts = track(starts, description=f"generating {n} maps", transient=True)
    parts = [generate_physical(model, {k: maps[k][i : i + bs] for k in ("source", "index")}, data.to_physical,
                               model.hparams.sample_seed, len(data.targets), **overrides) for i in starts]  # fmt: skip
    return Generated(torch.cat([g.normalised for g in parts]), torch.cat([g.physical for g in parts]),
                     max(g.clamped_fraction for g in parts))  # fmt: skip


def report_data(data: DataContract, split: str, max_maps: int | None = None, model: Any = None,
                n_twins: int = 16, **overrides: Any) -> ReportData:  # fmt: skip
    """Maps of ``split``, the ``model``'s predictions (or the truth when None) and the references."""
    maps = data.maps(split, max_maps)
    target = maps["physical_target"].numpy()
    pred, pred_n = target, None
    if model is not None:
        out = predict_maps(model, data, maps, progress=True, **overrides)
        pred, pred_n = out.physical.numpy(), out.normalised.numpy()
    rows = maps["rows"]
    return ReportData(
        source=maps["physical_source"].numpy(), target=target,
        prediction=pred, pixel_size=maps["pixel_size"].numpy(), domains=list(data.targets),
        units=[get_domain(d).unit for d in data.targets], kinds=[get_domain(d).kind for d in data.targets],
        source_domain=data.source, source_unit=get_domain(data.source).unit,
        galaxy=[f"{r.key[0]}-{r.key[1]}" for r in rows], rotation=[f"{r.key[2][0]},{r.key[2][1]}" for r in rows],
        references=reference_predictions(data, maps, n_twins),
        normalised_prediction=pred_n, normalised_target=None if pred_n is None else maps["target"].numpy(),
    )  # fmt: skip
