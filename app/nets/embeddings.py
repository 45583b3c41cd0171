"""Noise-level / time embeddings: sinusoidal or random Fourier features followed by an MLP."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TIME_EMBEDDINGS", "TimeEmbedding"]

TIME_EMBEDDINGS = ("sinusoidal", "fourier")


class TimeEmbedding(nn.Module):
    """``(B,)`` float times or noise levels → ``(B, dim)``.

    ``sinusoidal``: transformer features of ``t`` (suited to step indices 0…1000);
    ``fourier``: fixed Gaussian random features ``sin/cos(2π f t)``, ``f ~ N(0, scale²)``
    (suited to continuous inputs such as ``ln(σ)/4``).
    """

    def __init__(self, kind: str, dim: int, features: int = 64, scale: float = 16.0) -> None:
        super().__init__()
        if kind not in TIME_EMBEDDINGS:
            raise ValueError(f"unknown time embedding {kind!r}; choose one of {TIME_EMBEDDINGS}")
        self.kind = kind
        half = features // 2
        if kind == "sinusoidal":
            freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / max(1, half - 1))
        else:
            freqs = torch.randn(half, generator=torch.Generator().manual_seed(0)) * scale * 2 * math.pi
        self.register_buffer("freqs", freqs, persistent=True)
        self.mlp = nn.Sequential(nn.Linear(2 * half, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1).to(self.freqs.dtype)
        args = t[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([torch.sin(args), torch.cos(args)], dim=-1))
