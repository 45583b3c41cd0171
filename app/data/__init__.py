"""Data layer: TNG map files and built-in mock galaxies, paired, split, normalised."""

from app.data.catalog import (
    MapRef,
    PairedRow,
    PairingReport,
    find_files,
    index_domains,
    pair_rows,
    split_by_galaxy,
)
from app.data.datamodule import GalaxyDataModule, ensure_mock
from app.data.dataset import MapReader, PairedMapDataset
from app.data.domains import DOMAINS, Domain, get_domain
from app.data.mock import MOCK_DOMAINS, GalaxyParams, render, sample_params, write_mock_set
from app.data.transforms import TRANSFORMS, MapTransform, make_transform

__all__ = [
    "DOMAINS",
    "MOCK_DOMAINS",
    "TRANSFORMS",
    "Domain",
    "GalaxyDataModule",
    "GalaxyParams",
    "MapReader",
    "MapRef",
    "MapTransform",
    "PairedMapDataset",
    "PairedRow",
    "PairingReport",
    "ensure_mock",
    "find_files",
    "get_domain",
    "index_domains",
    "make_transform",
    "pair_rows",
    "render",
    "sample_params",
    "split_by_galaxy",
    "write_mock_set",
]
