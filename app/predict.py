"""Write predicted maps in physical units to HDF5 files in the TNG map layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from app.data.domains import get_domain

__all__ = ["MapWriter"]


def _predicted_rows(trainer: L.Trainer) -> list[Any]:
    """The paired rows of the dataset that was predicted (its batches' ``index`` refers to them)."""
    loaders = trainer.predict_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    rows = getattr(getattr(loader, "dataset", None), "rows", None)
    if rows is None:
        raise TypeError("MapWriter writes predictions of a galchemy dataset (app.data.PairedMapDataset)")
    return rows


class MapWriter(BasePredictionWriter):
    """At the end of ``predict``, write ``{output_dir}/{domain}/hdf5/prediction.{domain}.hdf5``.

    Each file has ``/{domain}/images`` ``(N, S, S)`` float64 in the domain's physical unit
    and ``/{domain}/metadata/{i:04d}`` copied from the predicted view (gid, snapshot,
    rotxy, extent, …) plus ``predicted_from`` (the source domain) and ``model``. The
    input files are only read. Existing prediction files are replaced.
    """

    def __init__(self, output_dir: str = "predictions") -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir)

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        """Write the epoch's predictions (physical units, float64) to one HDF5 file per target domain,
        with the predicted views' metadata."""
        data = pl_module.data
        outputs = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if not outputs:
            return
        index = torch.cat([o["index"] for o in outputs]).tolist()
        maps = torch.cat([o["prediction"] for o in outputs]).numpy()
        rows = _predicted_rows(trainer)
        for c, domain in enumerate(data.targets):
            folder = self.output_dir / domain / "hdf5"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"prediction.{domain.replace('/', '.')}.hdf5"
            with h5py.File(path, "w", libver="latest") as f:
                f.create_dataset(
                    f"{domain}/images",
                    data=maps[:, c].astype(np.float64),
                    chunks=(1, *maps.shape[-2:]),
                    compression="gzip",
                )
                for i, row_index in enumerate(index):
                    ref = rows[row_index].refs[domain]
                    g = f.create_group(f"{domain}/metadata/{i:04d}")
                    g.attrs.update({
                        "class": domain, "gid": ref.gid, "snapshot": ref.snapshot, "units": get_domain(domain).unit,
                        "extent": np.asarray(ref.extent), "units_extent": "kpc", "rotxy": np.asarray(ref.rotxy),
                        "name": f"prediction_{ref.name}", "predicted_from": data.source,
                        "model": type(pl_module).__name__,
                    })  # fmt: skip
