"""LightningDataModule for paired galaxy maps (real TNG files or the built-in mock set)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from app.data.catalog import PairedRow, PairingReport, find_files, index_domains, pair_rows, split_by_galaxy
from app.data.contract import DataContract, fit_picks
from app.data.dataset import MapReader, PairedMapDataset
from app.data.domains import get_domain
from app.data.index_cache import IndexCache
from app.data.mock_set import ensure_mock, mock_folder
from app.data.own_maps import OwnMap, OwnMapsDataset, distribution_warnings, read_own_maps
from app.data.sampler import EpochSampler, ResumableLoader
from app.data.transforms import MapTransform, make_transform

__all__ = ["GalaxyDataModule"]

log = logging.getLogger(__name__)

#: the data settings that decide which galaxies are held out
SPLIT_KEYS = ("data", "source", "size", "split", "seed", "stratify", "mock_galaxies", "mock_size")


class GalaxyDataModule(L.LightningDataModule):
    """Paired maps of one source domain and one or more target domains.

    Args:
        data: folder or glob of HDF5 files in the TNG map layout; ``None`` uses the built-in
            mock galaxies (written to ``mock_dir`` on first use).
        source: source domain key (``dm``, ``star``, ``gas``, ``hi``, ``hi/21cm``, ``temp``, ``bfield``).
        targets: target domain keys, stacked as channels.
        size: map side after mass-conserving pooling (must divide the stored side).
        batch_size, num_workers: DataLoader settings.
        split: (train, val, test) fractions of *galaxies*.
        seed: seeds the split and the training shuffle.
        transforms: per-domain transform: a name (``log10``, ``asinh``, ``power``,
            ``identity``) or a mapping of its fields; default ``log10`` with an automatic floor.
        augment: random 90° rotations and flips of training pairs.
        cache_mb: in-memory cache of resized maps per process (0 = off).
        index_cache: keep the files' index (their rows' attributes) between runs, beside the
            data when the folder is writable, else in ``~/.cache/galchemy`` (``app.data.index_cache``);
            a file is re-read when its size or modification time changes.
        fit_maps: training maps per domain used to fit the transforms.
        mock_dir, mock_galaxies, mock_size: the built-in mock set (``mock_size`` default: ``size``,
            at least 128), written once to
            ``{mock_dir}/v3-g{galaxies}-n{size}-seed{seed}-views4`` (one folder per setting).
        stratify: order galaxies by mass (``num_particles``) before splitting, so every split
            spans the mass range.
        predict_maps: your own source maps for ``predict`` (files, folders or globs of FITS,
            NPY or source-only TNG-layout HDF5), instead of the test split; the training data
            is then not read (the fitted transforms come from ``--ckpt_path``).
        predict_unit: unit of those maps when the files give none (NPY), e.g. ``solMass / kpc2``.
        predict_pixel_size: their pixel side [kpc] when the files give none (overrides them).
        predict_pixel_unit: length unit of a FITS CDELT1 without CUNIT1.
        predict_samples: samples per own map (generative families draw independent noise for
            each); with more than one, the writer gives each map's mean and standard deviation.
        weighted_pooling: pool T and |B| with the gas map as weight when gas files exist.
    """

    def __init__(
        self,
        data: str | None = None,
        source: str = "dm",
        targets: list[str] | tuple[str, ...] = ("gas",),
        size: int = 64,
        batch_size: int = 8,
        num_workers: int = 0,
        split: tuple[float, float, float] = (0.6, 0.2, 0.2),
        seed: int = 0,
        transforms: dict[str, Any] | None = None,
        augment: bool = True,
        cache_mb: float = 0.0,
        index_cache: bool = True,
        fit_maps: int = 256,
        mock_dir: str = "data/mock",
        mock_galaxies: int = 80,
        mock_size: int | None = None,
        weighted_pooling: bool = True,
        stratify: bool = True,
        predict_maps: list[str] | None = None,
        predict_unit: str | None = None,
        predict_pixel_size: float | None = None,
        predict_pixel_unit: str | None = None,
        predict_samples: int = 1,
    ) -> None:
        super().__init__()
        targets = [targets] if isinstance(targets, str) else list(targets)
        for key, value in [("source", source), *[(f"targets[{i}]", t) for i, t in enumerate(targets)]]:
            try:
                get_domain(value)
            except ValueError as err:
                raise ValueError(f"data.{key}: {err}") from None
        if not targets:
            raise ValueError("data.targets: give at least one target domain")
        if source in targets:
            raise ValueError(f"data.targets: the source domain {source!r} cannot also be a target")
        if len(set(targets)) != len(targets):
            raise ValueError(f"data.targets: repeated domain in {targets}")
        for key, value in [("size", size), ("batch_size", batch_size), ("fit_maps", fit_maps)]:
            if int(value) < 1:
                raise ValueError(f"data.{key} must be a positive integer, got {value}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.save_hyperparameters()
        self.source, self.targets = source, targets
        self.domains = [source, *targets]
        spec = transforms or {}
        unknown = set(spec) - set(self.domains)
        if unknown:
            raise ValueError(f"data.transforms: {sorted(unknown)} are not among the domains {self.domains}")
        self.transforms: dict[str, MapTransform] = {
            d: make_transform(d, spec.get(d), get_domain(d).transform) for d in self.domains
        }
        self.report: PairingReport | None = None
        self.splits: dict[str, list[PairedRow]] | None = None
        self.datasets: dict[str, PairedMapDataset] = {}
        self.trained_split: dict[str, Any] | None = None  # the split of a restored checkpoint
        self.train_fov: tuple[float, float] | None = None  # training fields of view [kpc]: min, max
        self.own_maps: list[OwnMap] | None = None

    # ---------------------------------------------------------------- preparation
    @property
    def mock_size(self) -> int:
        """Side in pixels of the mock maps: ``mock_size``, or by default the data's ``size`` (at
        least 128), so any config runs on the built-in data without resampling up."""
        hp = self.hparams
        return int(hp.mock_size) if hp.mock_size is not None else max(128, int(hp.size))

    def data_path(self) -> str:
        """The data folder or glob; the built-in mock set (written if missing) when ``data`` is None."""
        hp = self.hparams
        if hp.data is not None:
            return hp.data
        return str(ensure_mock(hp.mock_dir, hp.mock_galaxies, self.mock_size, hp.seed))

    def _data_folder(self) -> str:
        """The data folder or glob, without writing the mock."""
        hp = self.hparams
        return hp.data if hp.data is not None else str(mock_folder(hp.mock_dir, hp.mock_galaxies, self.mock_size, hp.seed))

    def prepare_data(self) -> None:
        """Write the mock set if it is the data and missing (rank 0 only; not for own maps)."""
        if not self.hparams.predict_maps:
            self.data_path()

    def setup(self, stage: str | None = None) -> None:
        """Index, pair and split the files (once), fit any unfitted transforms on the training split
        and build the train/val/test datasets (``augment`` on train only). ``predict`` of own
        maps reads only those maps."""
        if stage == "predict" and self.hparams.predict_maps:
            hp = self.hparams
            self.own_maps = read_own_maps(hp.predict_maps, self.source, unit=hp.predict_unit,
                                          pixel_size=hp.predict_pixel_size, pixel_unit=hp.predict_pixel_unit)  # fmt: skip
            return
        if self.splits is None:
            data = self.data_path()
            files = find_files(data)
            needed = list(self.domains)
            want_gas = self.hparams.weighted_pooling and any(
                get_domain(d).mass_weighted for d in self.domains
            )
            cache = IndexCache.for_data(data) if self.hparams.index_cache else None
            index = index_domains(files, needed, cache)
            if want_gas and "gas" not in index:
                try:
                    index.update(index_domains(files, ["gas"], cache))
                except ValueError:
                    log.warning("no gas maps found: T and |B| are pooled without mass weighting")
            if cache is not None:
                cache.keep_only(files)
                cache.save()
                log.info("index cache %s: %d file(s) unchanged, %d read", cache.path, cache.hits, cache.misses)
            rows, self.report = pair_rows(index)
            self.splits = split_by_galaxy(
                rows, tuple(self.hparams.split), self.hparams.seed, self.hparams.stratify
            )
            fovs = [r.extent[1] - r.extent[0] for r in self.splits["train"]]
            self.train_fov = (min(fovs), max(fovs)) if fovs else None
            log.info(
                "data: %d files; %s; split (views) %s",
                len(files),
                self.report.summary(),
                {k: len(v) for k, v in self.splits.items()},
            )
        reader = MapReader(
            self.hparams.size, int(self.hparams.cache_mb * 2**20), self.hparams.weighted_pooling
        )
        if not all(t.fitted for t in self.transforms.values()):
            self._fit_transforms(
                PairedMapDataset(self.splits["train"], self.source, self.targets, self.transforms, reader)
            )
        for name in ("train", "val", "test"):
            self.datasets[name] = PairedMapDataset(
                self.splits[name], self.source, self.targets, self.transforms, reader,
                augment=self.hparams.augment and name == "train", seed=self.hparams.seed,
            )  # fmt: skip

    def _fit_transforms(self, train: PairedMapDataset) -> None:
        picks = fit_picks(len(train), self.hparams.fit_maps).tolist()
        for d, t in self.transforms.items():
            if t.fitted:
                continue

            def maps(d=d, t=t):
                for i in picks:
                    x = train.physical(i, d)
                    t.check_input(x, train.rows[i].refs[d].where)
                    yield x

            t.fit(maps)
            log.info("transform %s: %s", d, t.state())

    def contract(self) -> DataContract:
        """What a model needs from this data (handed over once, at the model's set-up)."""
        hp = self.hparams
        return DataContract(
            source=self.source, targets=tuple(self.targets), size=int(hp.size), batch_size=int(hp.batch_size),
            fit_maps=int(hp.fit_maps), transforms=self.transforms, to_physical=self.to_physical, maps=self.maps,
            data_path=self._data_folder(), weighted_pooling=hp.weighted_pooling,
        )  # fmt: skip

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Fitted transforms and the settings that decide the split (saved into every checkpoint)."""
        fov = None if self.train_fov is None else list(self.train_fov)
        return {"transforms": {d: t.state() for d, t in self.transforms.items()}, "split": self._split_settings(),
                "train_fov_kpc": fov}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the checkpoint's fitted transforms (also into built datasets) and record its
        split settings; raises ValueError if a domain's transform is missing."""
        saved = state_dict.get("transforms", {})
        missing = set(self.domains) - set(saved)
        if missing:
            raise ValueError(f"checkpoint has no fitted transform for domain(s) {sorted(missing)}")
        self.transforms.update({d: MapTransform.from_state(saved[d]) for d in self.domains})
        for ds in self.datasets.values():
            ds.transforms = self.transforms
        self.trained_split = state_dict.get("split")
        fov = state_dict.get("train_fov_kpc")
        self.train_fov = None if fov is None else (float(fov[0]), float(fov[1]))

    def _split_settings(self) -> dict[str, Any]:
        norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        return {k: norm(self.mock_size if k == "mock_size" else self.hparams[k]) for k in SPLIT_KEYS}

    def split_mismatch(self) -> str:
        """``data.key: trained → now`` for each split setting that differs from the restored
        checkpoint's ('' when they agree; a note when the checkpoint predates the record)."""
        if self.trained_split is None:
            return ""
        now = self._split_settings()
        return "; ".join(f"data.{k}: {self.trained_split.get(k)!r} → {now[k]!r}"
                         for k in SPLIT_KEYS if self.trained_split.get(k) != now[k])  # fmt: skip

    def to_physical(self, y: torch.Tensor, domains: list[str] | None = None) -> torch.Tensor:
        """Invert the transforms channel by channel: ``(B, C, H, W)`` network → physical units."""
        domains = self.targets if domains is None else domains
        if y.shape[-3] != len(domains):
            raise ValueError(f"expected {len(domains)} channels for {domains}, got shape {tuple(y.shape)}")
        return torch.stack(
            [self.transforms[d].inverse(y[..., i, :, :]) for i, d in enumerate(domains)], dim=-3
        )

    def maps(
        self, split: str, max_maps: int | None = None, spread: bool = False, physical: bool = True
    ) -> dict[str, Any]:
        """The first ``max_maps`` views of ``split`` (``spread``: ``max_maps`` evenly spaced ones,
        ``fit_picks``), unaugmented, stacked: normalised ``source`` ``(N, 1, S, S)`` and ``target``
        ``(N, C, S, S)`` float32, ``pixel_size`` ``(N,)`` [kpc], ``index`` ``(N,)``, the paired
        ``rows`` and, with ``physical``, the same maps in physical units (``physical_source``
        ``(N, S, S)``, ``physical_target``; float64, read, not inverted)."""
        if not self.datasets:
            self.setup()
        ds = self.datasets[split]
        # a reader of its own with a cache, so the physical maps below are read once
        reader = MapReader(ds.reader.size, 2**40 if physical else 0, ds.reader.weighted_pooling)
        plain = PairedMapDataset(ds.rows, ds.source, ds.targets, self.transforms, reader)
        if len(plain) == 0:
            raise ValueError(f"the {split} split is empty: add galaxies or change data.split")
        n = len(plain) if max_maps is None else min(len(plain), max_maps)
        picks = fit_picks(len(plain), n).tolist() if spread else list(range(n))
        items = [plain[i] for i in picks]
        out: dict[str, Any] = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
        out["rows"] = [ds.rows[i] for i in picks]
        if physical:
            out["physical_source"] = torch.stack([plain.physical(i, self.source) for i in picks])
            out["physical_target"] = torch.stack(
                [torch.stack([plain.physical(i, d) for d in self.targets]) for i in picks]
            )
        return out

    # ---------------------------------------------------------------- loaders
    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        if not self.datasets:
            self.setup()
        workers = self.hparams.num_workers
        dataset = self.datasets[name]
        if shuffle:  # training: the order shards itself over DDP ranks and resumes mid-epoch
            trainer = self.trainer  # None outside a Trainer: one process
            ranks = {"num_replicas": trainer.world_size, "rank": trainer.global_rank} if trainer is not None else {}
            loader, sampler = ResumableLoader, EpochSampler(len(dataset), self.hparams.seed, True, **ranks)
        else:  # evaluation: in order; under DDP Lightning shards it (predict without repeats)
            loader, sampler = DataLoader, None
        return loader(
            dataset,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(self.hparams.seed),  # worker seeds, not the global RNG
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        """Training batches, shuffled by ``(seed, epoch)`` and sharded over DDP ranks (``EpochSampler``),
        augmented if ``augment``; ``batch_size`` is per process."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in dataset order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in dataset order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Prediction batches: ``predict_maps`` on the model's grid, or the test split, in order."""
        if not self.hparams.predict_maps:
            return self._loader("test", shuffle=False)
        transform = self.transforms[self.source]
        if not transform.fitted:
            raise ValueError("predicting your own maps needs the fitted transforms of a trained model: pass --ckpt_path")
        if self.own_maps is None:
            self.setup("predict")
        dataset = OwnMapsDataset(self.own_maps, int(self.hparams.size), transform, int(self.hparams.predict_samples))
        for line in distribution_warnings(dataset, self.train_fov):
            log.warning(line)
        return DataLoader(dataset, batch_size=self.hparams.batch_size, shuffle=False, num_workers=0)
