"""Data layer: pairing, splitting and loading the real layout; transforms; errors; resampling
(the mock galaxies: test_data_mock.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import lightning as L
import numpy as np
import pytest
import torch
from tng_files import galaxy_images, write_domain_file

import physics as ph
from app.data import (
    GalaxyDataModule,
    MapTransform,
    find_files,
    index_domains,
    pair_rows,
    split_by_galaxy,
)
from app.data.resize import pool_map
from app.data.transforms import RunningMoments, make_transform

SIZE = 32


def _views(gids, snap=99, rots=((0, 0), (30, 40), (120, 10), (200, 300))):
    return [(snap, g, r) for g in gids for r in rots]


@pytest.fixture
def tng_set(tmp_path: Path) -> Path:
    """dm (two files, old + new name patterns), gas (5-digit indices, one row missing), hi with hi/21cm."""
    root = tmp_path / "tng"
    views = _views(range(10))
    write_domain_file(root / "dm/hdf5/240818_tng50-1_dm_99_gids.0000.1000.hdf5", "dm", views[:20],
                      galaxy_images(views[:20], SIZE, 1))  # fmt: skip
    write_domain_file(root / "dm/hdf5/20250709-tng50-1.99.2D.dm.0005.0010.hdf5", "dm", views[20:],
                      galaxy_images(views[20:], SIZE, 1))  # fmt: skip
    gas_views = [v for v in views if v != (99, 3, (120, 10))]  # one partner missing
    write_domain_file(
        root / "gas/hdf5/gas.hdf5", "gas", gas_views, galaxy_images(gas_views, SIZE, 2), index_width=5
    )
    path = write_domain_file(root / "hi/hdf5/hi.hdf5", "hi", views, galaxy_images(views, SIZE, 3, 1e5))
    with h5py.File(path, "a") as f:  # the 21-cm group nests inside /hi
        f.create_dataset("hi/21cm/images", data=galaxy_images(views, SIZE, 4, 1.0))
        for i, (snap, gid, rot) in enumerate(views):
            g = f.create_group(f"hi/21cm/metadata/{i:04d}")
            g.attrs.update(
                {
                    "gid": gid,
                    "snapshot": snap,
                    "rotxy": np.array(rot),
                    "extent": np.array([-10.0 - gid, 10.0 + gid] * 2),
                    "units": "mK",
                }
            )
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.hdf5"))}


def test_pairs_splits_and_loads_the_real_layout(tng_set):
    before = _hashes(tng_set)
    files = find_files(tng_set)
    assert len(files) == 4
    index = index_domains(files, ["dm", "gas", "hi/21cm"])
    assert len(index["dm"]) == 40 and len(index["gas"]) == 39 and len(index["hi/21cm"]) == 40
    rows, report = pair_rows(index)
    assert report.n_paired == 39 and report.unpaired == {"dm": 1, "gas": 0, "hi/21cm": 1}
    splits = split_by_galaxy(rows, (0.6, 0.2, 0.2), seed=3)
    galaxies = {name: {r.galaxy for r in split} for name, split in splits.items()}
    assert not (galaxies["train"] & galaxies["val"]) and not (galaxies["train"] & galaxies["test"])
    assert not (galaxies["val"] & galaxies["test"])
    assert sum(len(s) for s in splits.values()) == 39
    assert [len(galaxies[n]) for n in ("train", "val", "test")] == [6, 2, 2]
    again = split_by_galaxy(rows, (0.6, 0.2, 0.2), seed=3)
    assert [r.key for r in again["val"]] == [r.key for r in splits["val"]]
    assert [r.key for r in split_by_galaxy(rows, (0.6, 0.2, 0.2), seed=4)["val"]] != [
        r.key for r in splits["val"]
    ]

    dm = GalaxyDataModule(
        data=str(tng_set),
        source="dm",
        targets=["gas", "hi/21cm"],
        size=16,
        batch_size=4,
        seed=3,
        split=(0.6, 0.2, 0.2),
        augment=False,
    )
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["source"].shape == (4, 1, 16, 16) and batch["target"].shape == (4, 2, 16, 16)
    assert batch["source"].dtype == torch.float32
    ds = dm.datasets["val"]
    row = ds.rows[0]
    with h5py.File(row.refs["gas"].path, "r") as f:
        raw = f["gas/images"][row.refs["gas"].row]
    pooled = raw.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    phys = dm.to_physical(batch["target"][:1].double())[0, 0].numpy()
    np.testing.assert_allclose(phys, pooled, rtol=1e-6)
    ext = row.extent
    assert float(batch["pixel_size"][0]) == pytest.approx((ext[1] - ext[0]) / 16)
    assert _hashes(tng_set) == before  # source files never modified


@pytest.mark.parametrize("name", ["log10", "asinh", "power", "identity"])
def test_transforms_round_trip(name, rng):
    x64 = torch.from_numpy(10 ** rng.uniform(2, 9, size=(4, 32, 32)))
    x64[0, :4] = 0.0
    t = MapTransform(name=name, domain="gas")
    t.observe(x64)
    t.settle()
    m = RunningMoments()
    m.update(t.f(x64))
    t.fit_moments(m)
    assert float(t.forward(x64).mean()) == pytest.approx(0.0, abs=1e-9)
    back64 = t.inverse(t.forward(x64))
    back32 = t.inverse(t.forward(x64.float())).double()
    nonzero = x64 > 0
    if name in ("log10", "power"):  # precision relative to each pixel
        np.testing.assert_allclose(back64[nonzero].numpy(), x64[nonzero].numpy(), rtol=1e-12)
        assert float(back64[~nonzero].abs().max()) <= 1e-12 * float(x64.max())
        assert float(back64.min()) >= 0.0
        rel32 = ((back32 - x64).abs()[nonzero] / x64[nonzero]).max()
        assert rel32 < 1e-6
    else:  # linear near zero: round-off is relative to the map's scale
        assert float((back64 - x64).abs().max()) <= 1e-12 * float(x64.max())
        assert float((back32 - x64).abs().max()) <= 1e-6 * float(x64.max())
    assert t.forward(x64.float()).dtype == torch.float32 and t.inverse(t.forward(x64)).dtype == torch.float64


@pytest.mark.parametrize("name", ["log10", "power"])
def test_values_below_the_floor_come_back_empty(name):
    """The floor is the transforms' resolution: below it a value is an empty pixel (snap)."""
    x = torch.tensor([[0.0, 0.5, 0.99, 1.0, 1.01, 7.0, 1e6]], dtype=torch.float64)
    for snap, expect in ((True, torch.tensor([[0, 0, 0, 1.0, 1.01, 7.0, 1e6]], dtype=torch.float64)), (False, x)):
        t = MapTransform(name=name, domain="hi", floor=1.0, c=2e6, snap=snap)
        t.fit(lambda: iter([x]))
        torch.testing.assert_close(t.inverse(t.forward(x)), expect, rtol=1e-12, atol=1e-12)
    # the option travels with the checkpointed state and the config spec
    assert MapTransform.from_state(t.state()).snap is False
    old = {k: v for k, v in MapTransform(name=name, floor=1.0, c=2e6, snap=True).fit(lambda: iter([x])).state().items()
           if k != "snap"}  # a checkpoint from before snap existed keeps its exact inverse  # fmt: skip
    assert MapTransform.from_state(old).snap is False
    assert make_transform("hi", {"name": name, "snap": False}, "log10").snap is False


def test_running_moments_match_batch(rng):
    a, b = rng.normal(3, 2, 1000), rng.normal(-1, 0.5, 37)
    m = RunningMoments()
    m.update(torch.from_numpy(a))
    m.update(torch.from_numpy(b))
    both = np.concatenate([a, b])
    assert m.mean == pytest.approx(both.mean()) and m.std == pytest.approx(both.std())


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Conv2d(1, 1, 1)

    def training_step(self, batch, _):
        return ((self.net(batch["source"]) - batch["target"][:, :1]) ** 2).mean()

    def validation_step(self, batch, _):
        self.log("val", ((self.net(batch["source"]) - batch["target"][:, :1]) ** 2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_fitted_transforms_come_back_from_a_checkpoint(tng_set, tmp_path):
    dm = GalaxyDataModule(data=str(tng_set), source="dm", targets=["gas"], size=16, batch_size=4, seed=1)
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Tiny(), datamodule=dm)
    ckpt = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(ckpt)
    fitted = dm.state_dict()
    fresh = GalaxyDataModule(
        data=str(tng_set), source="dm", targets=["gas"], size=16, batch_size=4, seed=1, fit_maps=1
    )
    assert not fresh.transforms["gas"].fitted
    trainer2 = L.Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer2.validate(_Tiny(), datamodule=fresh, ckpt_path=ckpt)
    assert fresh.state_dict() == fitted  # restored, not refitted on 1 map


def test_augmentation_is_identical_for_source_and_target(tng_set):
    dm = GalaxyDataModule(data=str(tng_set), source="dm", targets=["gas"], size=16, augment=True, seed=0)
    dm.setup("fit")
    plain = dm.datasets["val"]
    aug = dm.datasets["train"]
    flips = set()
    for i in range(6):
        item = aug[(i, 3)]
        assert torch.equal(aug[(i, 3)]["source"], item["source"])  # seeded by (seed, epoch, index)
        aug.augment = False
        ref = aug[i]
        aug.augment = True
        matched = False
        for k in range(4):
            for flip in (False, True):
                s = torch.rot90(ref["source"], k, dims=(-2, -1))
                t = torch.rot90(ref["target"], k, dims=(-2, -1))
                if flip:
                    s, t = torch.flip(s, dims=(-1,)), torch.flip(t, dims=(-1,))
                if torch.equal(s, item["source"]):
                    assert torch.equal(t, item["target"])
                    matched = True
                    flips.add((k, flip))
        assert matched
    assert len(flips) > 1
    assert not plain.augment


def test_pooling_conserves_mass_and_weights_temperature(rng):
    sigma = torch.from_numpy(rng.lognormal(size=(64, 64)))
    pooled = pool_map(sigma, 4)
    assert float(pooled.sum() * 16) == pytest.approx(float(sigma.sum()), rel=1e-12)
    temp = torch.from_numpy(rng.uniform(1e4, 1e6, size=(64, 64)))
    t_pool = pool_map(temp, 4, weight=sigma)
    num = (sigma * temp).reshape(16, 4, 16, 4).sum(dim=(1, 3))
    np.testing.assert_allclose(
        t_pool.numpy(), (num / sigma.reshape(16, 4, 16, 4).sum(dim=(1, 3))).numpy(), rtol=1e-12
    )
    assert float(ph.mass_weighted_temperature(t_pool, pooled)) == pytest.approx(
        float(ph.mass_weighted_temperature(temp, sigma)), rel=1e-12
    )


class TestBadInput:
    def test_empty_glob(self, tmp_path):
        with pytest.raises(ValueError, match="no HDF5 files found"):
            find_files(tmp_path / "nothing" / "*.hdf5")

    def test_missing_domain_group(self, tng_set):
        with pytest.raises(
            ValueError,
            match=r"no '/star/images' dataset: no '/star' group in any of 4 file\(s\); "
            r"domains found: \['dm', 'gas', 'hi', 'hi/21cm'\]",
        ):
            index_domains(find_files(tng_set), ["dm", "star"])

    def test_a_group_without_images_names_its_own_file(self, tmp_path):
        views = _views(range(2))
        write_domain_file(tmp_path / "dm.hdf5", "dm", views, galaxy_images(views, 16, 1))
        write_domain_file(tmp_path / "gas.hdf5", "gas", views, galaxy_images(views, 16, 0))
        with h5py.File(tmp_path / "gas.hdf5", "a") as f:
            del f["gas/images"]
        with pytest.raises(ValueError, match=r"no '/gas/images' dataset: gas.hdf5 has a '/gas' group without an 'images'"):
            index_domains(find_files(str(tmp_path)), ["dm", "gas"])

    def test_missing_metadata_and_count_mismatch(self, tmp_path):
        views = _views([0])
        p = write_domain_file(tmp_path / "a.hdf5", "gas", views, galaxy_images(views, 8, 0))
        with h5py.File(p, "a") as f:
            del f["gas/metadata/0003"]
        with pytest.raises(ValueError, match=r"a.hdf5 /gas: 4 images but 3 metadata groups"):
            index_domains([p], ["gas"])
        with h5py.File(p, "a") as f:
            del f["gas/metadata"]
        with pytest.raises(ValueError, match=r"a.hdf5 /gas: the 'metadata' group is missing"):
            index_domains([p], ["gas"])

    def test_missing_attribute(self, tmp_path):
        views = _views([0])
        p = write_domain_file(tmp_path / "a.hdf5", "gas", views, galaxy_images(views, 8, 0))
        with h5py.File(p, "a") as f:
            del f["gas/metadata/0002"].attrs["gid"]
        with pytest.raises(ValueError, match=r"a.hdf5 /gas row 2: metadata attribute 'gid' is missing"):
            index_domains([p], ["gas"])

    def test_corrupt_and_truncated_files(self, tng_set, tmp_path):
        bad = tmp_path / "bad.hdf5"
        bad.write_bytes(b"not an hdf5 file at all")
        with pytest.raises(ValueError, match=r"bad.hdf5: corrupt or truncated HDF5"):
            index_domains([bad], ["dm"])
        src = find_files(tng_set)[0]
        cut = tmp_path / "cut.hdf5"
        cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
        with pytest.raises(ValueError, match=r"cut.hdf5: corrupt or truncated HDF5"):
            index_domains([cut], ["dm"])

    @staticmethod
    def _gas_set_with(tmp_path, row: int, pixel: tuple[int, int], value, size: int = 16) -> GalaxyDataModule:
        """A dm → gas set whose gas map ``row`` has ``value`` at ``pixel`` (``value(img)`` if callable)."""
        views = _views(range(4))
        imgs = galaxy_images(views, 16, 0)
        imgs[(row, *pixel)] = value(imgs[row]) if callable(value) else value
        write_domain_file(tmp_path / "d/dm.hdf5", "dm", views, galaxy_images(views, 16, 1))
        write_domain_file(tmp_path / "d/gas.hdf5", "gas", views, imgs)
        return GalaxyDataModule(
            data=str(tmp_path / "d"), source="dm", targets=["gas"], size=size, split=(1, 0, 0), fit_maps=100
        )

    def test_nan_pixels_name_file_and_row(self, tmp_path):
        with pytest.raises(ValueError, match=r"gas.hdf5 /gas row 5: 1 NaN/Inf pixel"):
            self._gas_set_with(tmp_path, 5, (3, 3), np.nan).setup("fit")

    def test_negative_values_under_log(self, tmp_path):
        with pytest.raises(ValueError, match=r"gas.hdf5 /gas row 2: 1 negative pixel\(s\) \(min -5\) in a gas map"):
            self._gas_set_with(tmp_path, 2, (0, 0), -5.0).setup("fit")

    def test_a_negative_pixel_is_caught_before_pooling_averages_it_away(self, tmp_path):
        dm = self._gas_set_with(tmp_path, 1, (4, 4), lambda img: -1e-3 * img.max(), size=8)  # pooled 16 → 8
        with pytest.raises(ValueError, match=r"gas.hdf5 /gas row 1: 1 negative pixel.*checked before pooling"):
            dm.setup("fit")

    def test_size_not_dividing(self, tng_set):
        dm = GalaxyDataModule(data=str(tng_set), source="dm", targets=["gas"], size=24)
        with pytest.raises(ValueError, match="cannot resize 32x32 to 24x24"):
            dm.setup("fit")

    def test_impossible_configs(self):
        with pytest.raises(ValueError, match=r"data.targets\[0\]: unknown domain 'gaz'"):
            GalaxyDataModule(source="dm", targets=["gaz"])
        with pytest.raises(ValueError, match="cannot also be a target"):
            GalaxyDataModule(source="gas", targets=["gas"])
        with pytest.raises(ValueError, match="unknown transform 'log'"):
            GalaxyDataModule(source="dm", targets=["gas"], transforms={"gas": "log"})


@pytest.mark.parametrize(("n_in", "n_out"), [(7, 3), (3, 7), (64, 64), (10, 4), (5, 8)])
def test_area_resample_keeps_mass_and_constants(n_in, n_out):
    from app.data.resize import area_resample

    x = torch.rand(2, n_in, n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(n_in))
    y = area_resample(x, (n_out, n_out))
    # mass: Σ·A_pix with A ∝ 1/n² on the same field of view
    torch.testing.assert_close(y.sum((-2, -1)) / n_out**2, x.sum((-2, -1)) / n_in**2, rtol=1e-12, atol=0)
    const = area_resample(torch.full((n_in, n_in), 3.5, dtype=torch.float64), (n_out, n_out))
    torch.testing.assert_close(const, torch.full((n_out, n_out), 3.5, dtype=torch.float64))


def test_area_resample_equals_block_means_for_integer_factors_and_keeps_orientation():
    from app.data.resize import area_resample, pool_map

    x = torch.rand(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(area_resample(x, (4, 4)), pool_map(x, 3), rtol=1e-12, atol=1e-14)
    # an asymmetric map keeps its orientation: the bright corner stays at row 0, last column
    corner = torch.zeros(9, 9, dtype=torch.float64)
    corner[0, -1] = 81.0
    y = area_resample(corner, (3, 3))
    assert y[0, -1] == pytest.approx(9.0) and float(y.sum()) == pytest.approx(9.0)
