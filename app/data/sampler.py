"""Replayable data order: a shuffling sampler seeded by (seed, epoch), and a loader that
Lightning checkpoints mid-epoch, so a run resumed after preemption continues with the very
batch it would have seen next."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

__all__ = ["EpochSampler", "ResumableLoader"]


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, epoch)``: a permutation seeded by ``(seed, epoch)`` (or in order).

    Lightning calls :meth:`set_epoch` before each epoch. The epoch travels with the index
    so that per-item randomness (augmentation) can also be seeded by ``(seed, epoch, index)``
    in any worker process.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0
        self.start = 0  # items of this epoch to skip once (a resumed, half-finished epoch)

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
        start, self.start = self.start, 0
        return iter((i, self.epoch) for i in order[start:])


class ResumableLoader(DataLoader):
    """A DataLoader over an ``EpochSampler`` whose position Lightning saves in checkpoints.

    ``state_dict`` is ``{"epoch", "batches"}``: the batches handed out so far in the current
    epoch. After ``load_state_dict``, the next pass over that epoch skips them, so a run
    stopped mid-epoch (SIGTERM, preemption) resumes with the next batch of the same order.
    Under DDP, Lightning wraps the sampler for the ranks; the loader then reads in plain
    order and a mid-epoch resume restarts that epoch's order from its start.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._position = {"epoch": 0, "batches": 0}
        self._resume: dict[str, int] | None = None

    def __iter__(self):
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):  # e.g. Lightning's distributed wrapper: plain order
            yield from super().__iter__()
            return
        skip = 0
        if self._resume is not None and self._resume["epoch"] == sampler.epoch:
            skip = self._resume["batches"]
        self._resume = None
        sampler.start = min(skip * int(self.batch_size or 1), len(sampler))
        self._position = {"epoch": sampler.epoch, "batches": skip}
        for batch in super().__iter__():
            self._position["batches"] += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The epoch and the batches of it handed out so far."""
        return dict(self._position)

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next pass over epoch ``state["epoch"]`` skips ``state["batches"]`` batches."""
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}
