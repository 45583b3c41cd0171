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
from app.data.contract import DataContract, fit_picks
from app.data.datamodule import GalaxyDataModule
from app.data.dataset import MapReader, PairedMapDataset
from app.data.domains import DOMAINS, Domain, get_domain
from app.data.mock import (
    MOCK_DOMAINS,
    REVEALS,
    GalaxyParams,
    Realisation,
    oracle,
    render,
    sample_params,
    twin,
)
from app.data.mock_set import ensure_mock, mock_key, write_mock_set
from app.data.transforms import TRANSFORMS, MapTransform, make_transform

__all__ = [
    "DOMAINS",
    "MOCK_DOMAINS",
    "REVEALS",
    "TRANSFORMS",
    "DataContract",
    "Domain",
    "GalaxyDataModule",
    "GalaxyParams",
    "MapReader",
    "MapRef",
    "MapTransform",
    "PairedMapDataset",
    "PairedRow",
    "PairingReport",
    "Realisation",
    "ensure_mock",
    "find_files",
    "fit_picks",
    "get_domain",
    "index_domains",
    "make_transform",
    "mock_key",
    "oracle",
    "pair_rows",
    "render",
    "sample_params",
    "split_by_galaxy",
    "twin",
    "write_mock_set",
]
