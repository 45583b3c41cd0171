"""Write predictions of a scientist's own maps on the inputs' own grids: FITS and HDF5.

Each input map gives one FITS file per target domain, ``{stem}[.{row}].{domain}.fits``
(with several samples per map: their mean, and their standard deviation in extension ``STD``),
with the prediction resampled back onto the input grid (mass kept), ``BUNIT`` in the
target's unit, the input's WCS cards, and the provenance (checkpoint, family, sampler,
steps, seed, input file). One HDF5 file per target domain holds every map as
``/{domain}/maps/{i:04d}`` with the same provenance as attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from astropy.io import fits

from app.data.domains import get_domain
from app.data.own_maps import OwnMap
from app.data.resize import area_resample

__all__ = ["provenance", "write_own_predictions"]


def provenance(model: Any, ckpt_path: str | None) -> dict[str, str | int]:
    """What made a prediction: checkpoint, family, sampler, steps and sampling seed."""
    h = model.hparams
    return {"checkpoint": str(ckpt_path or "none (weights in memory)"), "family": type(model).__name__,
            "sampler": str(h.get("sampler", h.get("parameterization", "one forward pass"))),
            "steps": int(h.get("steps", 1)), "seed": int(h.get("sample_seed", 0))}  # fmt: skip


def _fits(prediction: np.ndarray, m: OwnMap, domain: str, source: str, prov: dict[str, Any]) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU(prediction.astype(np.float64))
    h = hdu.header
    for key, value in m.header.items():
        if key not in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BUNIT"):
            h[key] = value
    h["BUNIT"] = get_domain(domain).unit
    if "CDELT1" not in h or "CUNIT1" not in h:
        for axis in (1, 2):
            h[f"CDELT{axis}"], h[f"CUNIT{axis}"] = m.pixel_kpc, "kpc"
    h["GALDOM"] = (domain, "predicted domain")
    h["GALSRCD"] = (source, "source domain of the input")
    h["GALSRC"] = (m.label, "input map")
    h["GALFAM"] = (prov["family"], "galchemy family")
    h["GALSAMP"] = (prov["sampler"], "sampler")
    h["GALSTEP"] = (prov["steps"], "sampling steps")
    h["GALSEED"] = (prov["seed"], "sampling seed")
    h["GALNSAMP"] = (prov.get("samples", 1), "samples per map (mean here; spread in STD)")
    h["GALCKPT"] = prov["checkpoint"]  # long paths continue over several cards
    return hdu


def _per_map(index: list[int], predictions: torch.Tensor, samples: int) -> dict[int, tuple[torch.Tensor, torch.Tensor | None]]:
    """``{map: (mean, std or None)}`` over its ``samples`` predictions ``(C, S, S)``."""
    by_map: dict[int, list[torch.Tensor]] = {}
    for j, p in zip(index, predictions, strict=True):
        by_map.setdefault(j // samples, []).append(p.double())
    return {i: (torch.stack(ps).mean(0), torch.stack(ps).std(0) if len(ps) > 1 else None) for i, ps in by_map.items()}


def write_own_predictions(
    out: Path, maps: list[OwnMap], index: list[int], predictions: torch.Tensor, targets: list[str],
    source: str, prov: dict[str, Any], samples: int = 1,
) -> list[Path]:  # fmt: skip
    """Write ``predictions`` ``(N, C, S, S)`` [target units] of dataset items ``index`` (item ``j``
    is a sample of ``maps[j // samples]``) on the inputs' grids: the mean over samples, and with
    several samples their standard deviation (FITS extension ``STD``, HDF5 ``maps_std``).
    Returns the files written."""
    written: list[Path] = []
    stats = _per_map(index, predictions, samples)
    on_grid = {i: tuple(None if t is None else area_resample(t, maps[i].data.shape).numpy() for t in pair)
               for i, pair in stats.items()}  # fmt: skip
    stems: dict[Path, int] = {}
    for i in stats:
        stems[maps[i].path] = stems.get(maps[i].path, 0) + 1
    (out / "fits").mkdir(parents=True, exist_ok=True)
    prov = {**prov, "samples": samples}
    for c, domain in enumerate(targets):
        tag = domain.replace("/", ".")
        for i, (mean, std) in on_grid.items():
            m = maps[i]
            stem = m.path.name.split(".")[0] + (f".{m.label.rsplit('[', 1)[-1].rstrip(']')}" if stems[m.path] > 1 else "")
            path = out / "fits" / f"{stem}.{tag}.fits"
            hdus = [_fits(mean[c], m, domain, source, prov)]
            if std is not None:
                hdus.append(fits.ImageHDU(std[c], header=hdus[0].header.copy(), name="STD"))
            fits.HDUList(hdus).writeto(path)
            written.append(path)
        h5 = out / f"prediction.{tag}.hdf5"
        with h5py.File(h5, "w", libver="latest") as f:
            for k, (i, (mean, std)) in enumerate(on_grid.items()):
                m = maps[i]
                half = m.fov_kpc / 2
                attrs = {"units": get_domain(domain).unit, "extent": np.array([-half, half, -half, half]),
                         "units_extent": "kpc", "input": m.label, "predicted_from": source, **prov}  # fmt: skip
                f.create_dataset(f"{domain}/maps/{k:04d}", data=mean[c], compression="gzip").attrs.update(attrs)
                if std is not None:
                    f.create_dataset(f"{domain}/maps_std/{k:04d}", data=std[c], compression="gzip").attrs.update(attrs)
        written.append(h5)
    return written
