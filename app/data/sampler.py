"""Replayable data order: a shuffling sampler seeded by (seed, epoch) that shards itself over
DDP ranks, and a loader that Lightning checkpoints mid-epoch, so a run resumed after
preemption continues with the very batch it would have seen next (on one process or many)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, DistributedSampler

__all__ = ["EpochSampler", "ResumableLoader"]

log = logging.getLogger(__name__)


class EpochSampler(DistributedSampler):
    """Yields ``(index, epoch)``: this rank's share of a permutation seeded by ``(seed, epoch)``
    (or of the plain order).

    Lightning calls :meth:`set_epoch` before each epoch. The epoch travels with the index
    so that per-item randomness (augmentation, training noise) can be seeded by
    ``(seed, epoch, index)`` in any worker process.

    Over ``num_replicas`` ranks the order is padded (from its start) to a multiple of the
    ranks and rank ``r`` takes every ``num_replicas``-th item from ``r``, as torch's
    ``DistributedSampler`` does: per-rank batches of ``b`` maps together hold exactly the maps
    of one process's batch of ``b × num_replicas`` (when the split divides evenly), so a DDP
    run sees the data of a single-process run with the same global batch. Being a
    ``DistributedSampler``, Lightning keeps it instead of wrapping it, so the mid-epoch
    position of ``ResumableLoader`` survives DDP too.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, num_replicas: int = 1, rank: int = 0) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"EpochSampler: need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}"
            )
        super().__init__(range(n), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.n = n
        self.start = 0  # items of this rank's epoch share to skip once (a resumed, half-finished epoch)

    def __len__(self) -> int:
        return self.num_samples  # DistributedSampler's ceil(n / num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.num_replicas > 1 and order:
            pad = self.total_size - self.n
            order = (order + order * (pad // self.n + 1))[: self.n + pad][self.rank :: self.num_replicas]
        start, self.start = self.start, 0
        return iter((i, self.epoch) for i in order[start:])


class ResumableLoader(DataLoader):
    """A DataLoader over an ``EpochSampler`` whose position Lightning saves in checkpoints.

    ``state_dict`` is ``{"epoch", "batches"}``: the batches handed out so far in the current
    epoch. After ``load_state_dict``, the next pass over that epoch skips them, so a run
    stopped mid-epoch (SIGTERM, preemption) resumes with the next batch of the same order.
    The position is also kept as maps of the epoch's order consumed by all ranks together, so
    a run resumed on another number of processes (same global order) skips exactly those.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._position = {"epoch": 0, "batches": 0, "maps": 0}
        self._resume: dict[str, int] | None = None

    def __iter__(self):
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):  # Lightning replaced it (overfit_batches): plain order
            yield from super().__iter__()
            return
        per_batch = int(self.batch_size or 1) * sampler.num_replicas  # maps of the whole order per step
        skip_maps = 0
        if self._resume is not None and self._resume["epoch"] == sampler.epoch:
            skip_maps = self._resume["maps"]
        self._resume = None
        if skip_maps % sampler.num_replicas:
            log.warning("resuming epoch %d after %d maps on %d ranks: not a multiple of the ranks, so up to "
                        "%d maps are seen twice", sampler.epoch, skip_maps, sampler.num_replicas,
                        sampler.num_replicas - 1)  # fmt: skip
        sampler.start = min(skip_maps // sampler.num_replicas, len(sampler))
        done = sampler.start * sampler.num_replicas
        self._position = {"epoch": sampler.epoch, "batches": done // per_batch, "maps": done}
        for batch in super().__iter__():
            self._position["batches"] += 1
            self._position["maps"] += per_batch
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The epoch, the batches of it handed out in this pass and the maps of the epoch's order
        consumed so far by all ranks together (what a resume skips, whatever its process count)."""
        return dict(self._position)

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next pass over epoch ``state["epoch"]`` skips the maps already consumed
        (``state["maps"]``; checkpoints written before it existed: ``batches × batch_size``)."""
        maps = state.get("maps")
        if maps is None:
            maps = int(state["batches"]) * int(self.batch_size or 1)
        self._resume = {"epoch": int(state["epoch"]), "maps": int(maps)}
