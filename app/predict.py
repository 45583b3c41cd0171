"""Write predicted maps in physical units: the test split in the TNG map layout (HDF5), or
your own maps on their own grids (FITS and HDF5, ``app.predict_own``). Nothing is
overwritten unless asked: an output folder that already holds files gives way to a new one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from app.data.domains import get_domain
from app.data.own_maps import OwnMapsDataset
from app.predict_own import provenance, write_own_predictions

__all__ = ["MapWriter", "free_folder"]

log = logging.getLogger(__name__)


def _predicted_dataset(trainer: L.Trainer) -> Any:
    """The dataset that was predicted (its batches' ``index`` refers to its items)."""
    loaders = trainer.predict_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    return getattr(loader, "dataset", None)


def free_folder(folder: Path, overwrite: bool) -> Path:
    """``folder`` if it is empty, missing or ``overwrite``; else the first free ``{folder}-{n}``."""
    if overwrite or not folder.exists() or not any(folder.iterdir()):
        return folder
    n = 1
    while (candidate := folder.with_name(f"{folder.name}-{n}")).exists() and any(candidate.iterdir()):
        n += 1
    log.info("%s already holds files: writing to %s (overwrite=true replaces instead)", folder, candidate)
    return candidate


class MapWriter(BasePredictionWriter):
    """At the end of ``predict``, write ``{output_dir}/{domain}/hdf5/prediction.{domain}.hdf5``.

    Each file has ``/{domain}/images`` ``(N, S, S)`` float64 in the domain's physical unit
    and ``/{domain}/metadata/{i:04d}`` copied from the predicted view (gid, snapshot,
    rotxy, extent, …) plus ``predicted_from`` (the source domain) and ``model``. Own maps
    (``data.predict_maps``) are written on their own grids as FITS and HDF5
    (``app.predict_own``). The input files are only read; a folder that already holds files
    is left alone and the next free ``{output_dir}-{n}`` is used, unless ``overwrite``.
    """

    def __init__(self, output_dir: str = "predictions", overwrite: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite
        self.target_dir = self.output_dir

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Choose the folder: ``output_dir``, or when it already holds files and ``overwrite`` is
        off, the first free ``{output_dir}-{n}``."""
        self.target_dir = free_folder(self.output_dir, self.overwrite)

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
        dataset = _predicted_dataset(trainer)
        if isinstance(dataset, OwnMapsDataset):
            prediction = torch.cat([o["prediction"] for o in outputs])
            files = write_own_predictions(self.target_dir, dataset.maps, index, prediction, list(data.targets),
                                          data.source, provenance(pl_module, trainer.ckpt_path), dataset.samples)  # fmt: skip
            print(f"wrote {len(files)} file(s) to {self.target_dir}")
            return
        maps = torch.cat([o["prediction"] for o in outputs]).numpy()
        rows = getattr(dataset, "rows", None)
        if rows is None:
            raise TypeError("MapWriter writes predictions of a galchemy dataset (app.data.PairedMapDataset)")
        for c, domain in enumerate(data.targets):
            folder = self.target_dir / domain / "hdf5"
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
        print(f"wrote predictions of {len(index)} map(s) to {self.target_dir}")
