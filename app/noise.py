"""Training noise drawn per map: each map's draws come from its own generator, seeded by the
run's seed and the map's ``(epoch, index)``.

So the noise a map receives does not depend on which batch, process or rank it lands in: a
2-process DDP run with per-rank batches of ``b`` draws exactly the noise of a single-process
run with batches of ``2b``, and a resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["BatchNoise", "NoiseSource", "as_noise", "run_seed"]


def run_seed() -> int:
    """The run's seed: ``seed_everything``'s (Lightning's ``PL_GLOBAL_SEED``, inherited by DDP
    ranks), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class BatchNoise:
    """Uniform and normal draws for a batch of ``B`` maps, map ``i``'s from its own generator.

    Args:
        keys: ``B`` sequences of ints naming each map's stream (e.g. ``(seed, epoch, index)``);
            hashed with numpy's ``SeedSequence``, so nearby keys give independent streams.
        device: where the generators live and the draws are made (a CUDA generator on GPU).
    """

    def __init__(self, keys: Sequence[Sequence[int]], device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.generators = []
        for key in keys:
            state = int(
                np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32).view(np.uint64)[0]
            )
            self.generators.append(torch.Generator(device=self.device).manual_seed(state >> 1))

    @classmethod
    def for_batch(cls, batch: dict, seed: int | None = None) -> BatchNoise:
        """Streams keyed by ``(seed, epoch, index)`` of each map of a training ``batch`` (the
        dataset's ``epoch`` and ``index``); ``seed`` defaults to ``run_seed()``."""
        seed = run_seed() if seed is None else seed
        index = torch.as_tensor(batch["index"])
        epoch = batch.get("epoch")
        epoch = torch.zeros_like(index) if epoch is None else torch.as_tensor(epoch).to(index)
        index, epochs = torch.stack([index, epoch]).tolist()  # one host transfer, not one per map
        keys = [(seed, e, i) for e, i in zip(epochs, index, strict=True)]
        return cls(keys, batch["source"].device)

    def __len__(self) -> int:
        return len(self.generators)

    def uniform(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One draw per map from U[0, 1): ``(B,)``."""
        return torch.cat(
            [torch.rand(1, generator=g, device=self.device, dtype=dtype) for g in self.generators]
        )

    def normal(self, shape: Sequence[int] = (), dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard-normal draws ``(B, *shape)``, one block of ``shape`` per map."""
        return torch.stack(
            [torch.randn(tuple(shape), generator=g, device=self.device, dtype=dtype) for g in self.generators]
        )


class _GlobalNoise:
    """``BatchNoise``'s interface over one generator (or the global RNG when ``None``), on the CPU."""

    def __init__(self, n: int, generator: torch.Generator | None) -> None:
        self.n, self.generator = n, generator

    def __len__(self) -> int:
        return self.n

    def uniform(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(self.n, generator=self.generator, dtype=dtype)

    def normal(self, shape: Sequence[int] = (), dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn((self.n, *shape), generator=self.generator, dtype=dtype)


def as_noise(noise: BatchNoise | torch.Generator | None, n: int) -> BatchNoise | _GlobalNoise:
    """``noise`` as a per-map noise source for ``n`` maps: a ``BatchNoise`` as is (checked to
    hold ``n`` streams), a ``torch.Generator`` or ``None`` (the global RNG) drawn batch-wise."""
    if isinstance(noise, BatchNoise):
        if len(noise) != n:
            raise ValueError(f"noise: {len(noise)} per-map streams for a batch of {n} maps")
        return noise
    if noise is None or isinstance(noise, torch.Generator):
        return _GlobalNoise(n, noise)
    raise TypeError(f"noise: expected a BatchNoise, a torch.Generator or None, got {type(noise).__name__}")


#: what a training loss draws its randomness from: per-map streams, one generator, or the global RNG
NoiseSource = BatchNoise | torch.Generator | None
