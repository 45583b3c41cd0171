"""Multi-head self-attention over spatial positions, and Attention U-Net skip gates."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from app.nets.tome import current_ratio, merged_attention

__all__ = ["AttentionGate", "SpatialSelfAttention", "attention"]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q kᵀ / √d) v`` on ``(batch, heads, tokens, d)`` via the fused SDPA kernel, over merged
    tokens inside a ``token_merging`` block (``app.nets.tome``)."""
    ratio = current_ratio()
    return merged_attention(q, k, v, ratio) if ratio > 0 else F.scaled_dot_product_attention(q, k, v)


class SpatialSelfAttention(nn.Module):
    """``x + proj(MHSA(norm(x)))`` where the H·W positions are the tokens (residual included)."""

    def __init__(self, channels: int, heads: int = 4, groups: int = 8) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {channels} channels are not divisible by {heads} heads")
        self.heads = heads
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, C, H, W)``: every position attends to every position."""
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (t.transpose(-1, -2) for t in qkv.unbind(1))  # (B, heads, HW, d)
        out = attention(q, k, v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class AttentionGate(nn.Module):
    """Oktay et al. (2018) gate: weights a skip connection by its agreement with the decoder signal."""

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int | None = None) -> None:
        super().__init__()
        inter = inter_channels or max(1, skip_channels // 2)
        self.w_x = nn.Conv2d(skip_channels, inter, 1, bias=False)
        self.w_g = nn.Conv2d(gate_channels, inter, 1)
        self.psi = nn.Conv2d(inter, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """``skip`` ``(B, C_skip, H, W)`` weighted by ``α ∈ (0, 1)`` ``(B, 1, H, W)`` computed with
        the decoder signal ``gate`` ``(B, C_gate, H, W)`` (same H, W); returns ``skip``'s shape."""
        alpha = torch.sigmoid(self.psi(F.relu(self.w_x(skip) + self.w_g(gate))))
        return skip * alpha
