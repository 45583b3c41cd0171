"""A shuffling sampler whose order depends only on (seed, epoch), so resumed runs replay it."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler"]


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, epoch)``: a permutation seeded by ``(seed, epoch)`` (or in order).

    Lightning calls :meth:`set_epoch` before each epoch. The epoch travels with the index
    so that per-item randomness (augmentation) can also be seeded by ``(seed, epoch, index)``
    in any worker process.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the next permutation (Lightning calls it before each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        return iter((i, self.epoch) for i in order)
