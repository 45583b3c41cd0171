"""Noise-level / time embeddings: sinusoidal or random Fourier features followed by an MLP."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TIME_EMBEDDINGS", "TimeEmbedding"]

#: the feature styles of ``TimeEmbedding`` (the U-Net's ``time_embedding`` option)
TIME_EMBEDDINGS = ("sinusoidal", "fourier")


class TimeEmbedding(nn.Module):
    """``(B,)`` float times or noise levels → ``(B, dim)``.

    Args:
        style: ``sinusoidal``: transformer features of ``t`` (suited to step indices 0…1000);
            ``fourier``: fixed Gaussian random features ``sin/cos(2π f t)``, ``f ~ N(0, scale²)``
            (suited to continuous inputs such as ``ln(σ)/4``). Kept as ``self.style``.
        dim: output width.
        features: number of sin/cos features (half of each).
        scale: std of the Fourier frequencies (``fourier`` only).
    """

    def __init__(self, style: str, dim: int, features: int = 64, scale: float = 16.0) -> None:
        super().__init__()
        if style not in TIME_EMBEDDINGS:
            raise ValueError(f"unknown time embedding {style!r}; choose one of {TIME_EMBEDDINGS}")
        self.style = style
        half = features // 2
        if style == "sinusoidal":
            freqs = torch.exp(-math.log(10_000.0) * torch.arange(half) / max(1, half - 1))
        else:
            freqs = torch.randn(half, generator=torch.Generator().manual_seed(0)) * scale * 2 * math.pi
        self.register_buffer("freqs", freqs, persistent=True)
        self.mlp = nn.Sequential(nn.Linear(2 * half, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Times ``(B,)`` (any shape with B elements) → embeddings ``(B, dim)`` in the buffer's dtype."""
        t = t.reshape(-1).to(self.freqs.dtype)
        args = t[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([torch.sin(args), torch.cos(args)], dim=-1))
