"""What a model receives from its data, once, at set-up: the data contract.

A family never reaches into the data module at run time; ``Translator.setup`` asks the
data module for a ``DataContract`` and keeps it. Everything a model, a baseline or a
report needs from the data is listed here, with its units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from app.data.transforms import MapTransform

__all__ = ["DataContract", "fit_picks"]


def fit_picks(n: int, fit_maps: int) -> torch.Tensor:
    """Indices ``(≤ fit_maps,)`` int64 of the training views a transform or baseline is fitted on:
    ``fit_maps`` evenly spaced views of ``n`` (all of them when ``n ≤ fit_maps``)."""
    if n < 1:
        raise ValueError("the training split is empty: add galaxies or raise data.split[0]")
    return torch.linspace(0, n - 1, min(n, fit_maps)).round().long().unique()


@dataclass(frozen=True)
class DataContract:
    """The data a model is trained and scored on.

    Attributes:
        source: the source domain key (``app.data.domains``).
        targets: the target domain keys, in channel order.
        size: map side in pixels (maps are ``size × size``).
        batch_size: maps per batch when a model generates a whole split.
        fit_maps: training views the transforms were fitted on (``fit_picks``).
        transforms: the fitted transform of every domain (physical ↔ normalised).
        to_physical: normalised ``(B, C, H, W)`` targets → physical units (float64), channel by
            channel in ``targets`` order.
        maps: ``maps(split, max_maps=None)`` → the views of a split, stacked
            (``GalaxyDataModule.maps``).
        data_path: the folder or glob the maps are read from.
        weighted_pooling: whether T and |B| are pooled with the gas map as weight.
    """

    source: str
    targets: tuple[str, ...]
    size: int
    batch_size: int
    fit_maps: int
    transforms: Mapping[str, MapTransform]
    to_physical: Callable[[torch.Tensor], torch.Tensor]
    maps: Callable[..., dict[str, Any]]
    data_path: str
    weighted_pooling: bool

    def __deepcopy__(self, memo: dict[int, Any]) -> DataContract:
        """The contract is immutable and refers to the data module: copies of a model share it."""
        return self
