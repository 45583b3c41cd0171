"""Bad inputs to the application (data module, families, networks, checkpoints, own maps),
in the table format of ``tests/test_bad_inputs.py``: each case raises a clear error naming
the input (checked with a regex), or returns the right value."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits
from test_bad_inputs import Case, _check, bad, value

from app.cli import read_checkpoint_header
from app.data import GalaxyDataModule, make_transform
from app.data.own_maps import read_own_maps
from app.data.resize import area_resample, overlap_matrix
from app.families import Diffusion, InDI, Pix2Pix, build_unet
from app.report import ReportWriter

NET = {"base_channels": 8, "channel_mults": [1, 2]}
TMP = Path(tempfile.mkdtemp(prefix="galchemy-bad-"))
APP: list[Case] = []


def add(case_id, call, expect) -> None:
    APP.append(Case(case_id, call, expect))


def _file(name: str, write) -> str:
    path = TMP / name
    if not path.exists():
        write(path)
    return str(path)


def _fits(name: str, data, **cards) -> str:
    def write(path):
        hdu = fits.PrimaryHDU(np.asarray(data, dtype=float))
        hdu.header.update(cards)
        hdu.writeto(path)

    return _file(name, write)


UNIT = {"BUNIT": "solMass / kpc2", "CDELT1": 0.5, "CUNIT1": "kpc"}

# ---------------------------------------------------------------- checkpoints
add("ckpt-missing", lambda: read_checkpoint_header(TMP / "nothing.ckpt"), bad(r"ckpt_path: no checkpoint at .*nothing.ckpt"))
add("ckpt-random-bytes", lambda: read_checkpoint_header(_file("rand.ckpt", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)))),
    bad(r"rand.ckpt is not a readable checkpoint \(corrupt or truncated\?\)"))  # fmt: skip


def _truncated(path: Path) -> None:
    torch.save({"state_dict": {"w": torch.ones(1000)}}, TMP / "whole.ckpt")
    path.write_bytes((TMP / "whole.ckpt").read_bytes()[:1500])


add("ckpt-truncated", lambda: read_checkpoint_header(_file("cut.ckpt", _truncated)), bad(r"cut.ckpt is not a readable checkpoint"))
add("ckpt-no-state-dict", lambda: read_checkpoint_header(_file("plain.ckpt", lambda p: torch.save({"a": 1}, p))),
    bad(r"plain.ckpt is not a Lightning checkpoint \(no state_dict\)"))  # fmt: skip
add("ckpt-empty-file", lambda: read_checkpoint_header(_file("empty.ckpt", lambda p: p.write_bytes(b""))), bad(r"empty.ckpt is not a readable"))
add("ckpt-good", lambda: len(read_checkpoint_header(_file("good.ckpt", lambda p: torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1.0}}, p)))), value(1))

# ---------------------------------------------------------------- data module options
for case_id, kw, match in [
    ("unknown-source", {"source": "dust"}, r"data.source: unknown domain 'dust'"),
    ("unknown-target", {"targets": ["gas", "dust"]}, r"data.targets\[1\]: unknown domain 'dust'"),
    ("source-is-target", {"source": "gas", "targets": ["gas"]}, r"source domain 'gas' cannot also be a target"),
    ("repeated-target", {"targets": ["gas", "gas"]}, r"data.targets: repeated domain"),
    ("no-target", {"targets": []}, r"data.targets: give at least one target"),
    ("size-0", {"size": 0}, r"data.size must be a positive integer, got 0"),
    ("batch-0", {"batch_size": 0}, r"data.batch_size must be a positive integer"),
    ("fit-maps-0", {"fit_maps": 0}, r"data.fit_maps must be a positive integer"),
    ("workers-negative", {"num_workers": -1}, r"data.num_workers must be >= 0"),
    ("transform-of-other-domain", {"transforms": {"star": "log10"}}, r"data.transforms: \['star'\] are not among"),
]:
    add(f"datamodule-{case_id}", lambda kw=kw: GalaxyDataModule(**{"source": "dm", "targets": ["gas"], **kw}), bad(match))
add("transform-unknown-name", lambda: make_transform("gas", "log2", "log10"), bad(r"log2"))

# ---------------------------------------------------------------- families and networks
for fam in (InDI, Diffusion, Pix2Pix):
    for case_id, kw, match in [
        ("val-maps-0", {"val_maps": 0}, r"model.val_maps must be >= 1"),
        ("lr-negative", {"lr": -1e-3}, r"model.lr must be >= 0"),
        ("ema-1", {"ema_decay": 1.0}, r"model.ema_decay must be in \[0, 1\)"),
        ("ema-negative", {"ema_decay": -0.1}, r"model.ema_decay must be in \[0, 1\)"),
        ("channels-0", {"target_channels": 0}, r"model.target_channels must be >= 1"),
        ("unknown-block", {"net": {**NET, "block": "transformer"}}, r"model.net.block: unknown block type 'transformer'"),
        ("misspelt-net-key", {"net": {**NET, "blokc": "vit"}}, r"model.net: .*blokc"),
    ]:
        add(f"{fam.__name__}-{case_id}", lambda fam=fam, kw=kw: fam(**{"net": NET, **kw}), bad(match))
for case_id, kw, match in [
    ("steps-0", {"steps": 0}, r"model.steps must be >= 1"),
    ("sampler-unknown", {"sampler": "rk45"}, r"rk45"),
    ("sigma-data-negative", {"sigma_data": -1.0}, r"model.sigma_data must be 'auto' or positive"),
]:
    add(f"Diffusion-{case_id}", lambda kw=kw: Diffusion(net=NET, **kw), bad(match))
for case_id, kw, match in [
    ("steps-0", {"steps": 0}, r"model.steps must be >= 1"),
    ("schedule-unknown", {"noise_schedule": "cosine"}, r"model.noise_schedule: unknown 'cosine'"),
    ("loss-unknown", {"loss": "huber"}, r"model.loss: unknown 'huber'"),
    ("p-one-2", {"p_one": 2.0}, r"model.p_one must be in \[0, 1\]"),
    ("eps0-negative", {"eps0": -0.1}, r"model.eps0 >= 0"),
]:
    add(f"InDI-{case_id}", lambda kw=kw: InDI(net=NET, **kw), bad(match))
add("Pix2Pix-gan-loss", lambda: Pix2Pix(net=NET, gan_loss="wgan"), bad(r"model.gan_loss: unknown 'wgan'"))
add("Pix2Pix-time-embedding", lambda: Pix2Pix(net={**NET, "time_embedding": "fourier"}), bad(r"model.net.time_embedding: this family does not condition"))
add("unet-channels-mismatch", lambda: build_unet({**NET, "in_channels": 3}, 1, 1, None), bad(r"model.net.in_channels is 3 but this family and data need 1"))
add("unet-downsample", lambda: build_unet({**NET, "downsample": "maxpool"}, 1, 1, None), bad(r"model.net.downsample: unknown 'maxpool'"))
add("report-split", lambda: ReportWriter(split="train"), bad(r"ReportWriter.split must be val or test"))

# ---------------------------------------------------------------- own maps and resampling
for case_id, data, cards, match in [
    ("no-unit", np.ones((4, 4)), {"CDELT1": 0.5, "CUNIT1": "kpc"}, r"gives no unit for the gas map; pass data.predict_unit"),
    ("angle-pixels", np.ones((4, 4)), {**UNIT, "CUNIT1": "deg"}, r"CDELT1 = 0.5 deg is not a length"),
    ("no-cunit", np.ones((4, 4)), {"BUNIT": "solMass / kpc2", "CDELT1": 0.5}, r"has no CUNIT1.*--pixel-unit"),
    ("no-cdelt", np.ones((4, 4)), {"BUNIT": "solMass / kpc2"}, r"no CDELT1/CD1_1"),
    ("kelvin-for-gas", np.ones((4, 4)), {**UNIT, "BUNIT": "K"}, r"unit 'K' cannot be converted to the gas unit"),
    ("not-square", np.ones((4, 6)), UNIT, r"maps must be square, got 4x6"),
    ("nan-pixel", np.where(np.eye(4) > 0, np.nan, 1.0), UNIT, r"4 NaN/Inf pixel"),
    ("negative", -np.ones((4, 4)), UNIT, r"16 negative pixel"),
    ("cube", np.ones((2, 4, 4)), UNIT, r"expected a 2-D map, got shape \(2, 4, 4\)"),
]:
    add(f"own-{case_id}", lambda n=case_id, d=data, c=cards: read_own_maps(_fits(f"{n}.fits", d, **c), "gas"), bad(match))
add("own-not-a-map", lambda: read_own_maps(_file("notes.txt", lambda p: p.write_text("x")), "gas"), bad(r"notes.txt: unknown map format"))
add("own-corrupt-fits", lambda: read_own_maps(_file("bad.fits", lambda p: p.write_bytes(b"SIMPLE = nonsense" * 10)), "gas"), bad(r"bad.fits"))
add("own-msun-per-pc2", lambda: float(read_own_maps(_fits("pc2.fits", np.full((4, 4), 3.0), **{**UNIT, "BUNIT": "solMass / pc2"}), "gas")[0].data.mean()), value(3e6))
add("overlap-0", lambda: overlap_matrix(0, 3), bad(r"grid sizes must be >= 1, got 0 → 3"))
add("resample-mass", lambda: float(area_resample(torch.ones(7, 7, dtype=torch.float64), (3, 3)).sum() * (7 / 3) ** 2), value(49.0))


@pytest.mark.parametrize("case", APP, ids=[c.id for c in APP])
def test_app_case(case: Case) -> None:
    _check(case)


def test_the_app_table_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in APP]
    assert len(ids) == len(set(ids)) and len(APP) >= 50
