"""The one path from a batch to predicted maps in physical units, for models and baselines alike.

Validation, prediction, reports and benchmarks all call ``generate_physical``: the same
starting noise (seeded per map by its dataset index, so batching and DDP do not change
it), the same clamping and the same inverse transforms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.nets.tome import token_merging

__all__ = ["SCORE_CLAMP", "Generated", "generate_physical", "index_noise"]

SCORE_CLAMP = 50.0  # normalised units (standard deviations of the transformed training data)


@dataclass
class Generated:
    """Predictions of one batch.

    Attributes:
        normalised: ``(B, C, H, W)`` float32 network-space prediction, clamped to ±SCORE_CLAMP.
        physical: ``(B, C, H, W)`` float64 in each target domain's physical unit.
        clamped_fraction: fraction of pixels that were beyond ±SCORE_CLAMP before clamping.
    """

    normalised: torch.Tensor
    physical: torch.Tensor
    clamped_fraction: float


def index_noise(batch: dict[str, Any], channels: int, seed: int) -> torch.Tensor:
    """Standard-normal noise ``(B, channels, H, W)``; map ``i``'s is seeded by ``seed + index[i]``."""
    shape = (channels, *batch["source"].shape[-2:])
    z = [torch.randn(shape, generator=torch.Generator().manual_seed(seed + int(i))) for i in batch["index"]]
    return torch.stack(z).to(batch["source"])


def generate_physical(
    model: Any,
    batch: dict[str, Any],
    to_physical: Callable[[torch.Tensor], torch.Tensor],
    seed: int,
    channels: int,
    **overrides: Any,
) -> Generated:
    """``model.generate`` on ``batch["source"]`` → normalised and physical predictions.

    ``seed`` fixes the sampler: the starting noise of map ``i`` is seeded by ``seed +
    index[i]``; any further noise a sampler draws comes from a generator seeded by ``seed +
    index[0]``. An untrained sampler can leave values far outside the data: beyond
    ``±SCORE_CLAMP`` standard deviations the inverse transform would overflow, so values
    are clamped and the clamped fraction is returned, never hidden. A ``token_merging`` override
    (else the model's own option) merges tokens in every attention (``app.nets.tome``).
    """
    source = batch["source"]
    # a stream of its own: seeding it like the starting noise would repeat that noise
    stream = int(np.random.SeedSequence([seed, 1, int(batch["index"][0])]).generate_state(1)[0])
    generator = torch.Generator(device=source.device).manual_seed(stream)
    ratio = overrides.pop("token_merging", getattr(model, "hparams", {}).get("token_merging", 0.0))
    with torch.no_grad(), token_merging(ratio):
        out = model.generate(source, generator=generator, noise=index_noise(batch, channels, seed), **overrides)
    clamped = float((out.abs() > SCORE_CLAMP).float().mean())
    out = out.clamp(-SCORE_CLAMP, SCORE_CLAMP)
    return Generated(out, to_physical(out.double()), clamped)
