"""U-Net blocks, chosen by name from ``BLOCKS``.

Every block is ``Block(in_ch, out_ch, emb_dim, mixing, options)`` with
``forward(x, emb)``: ``emb`` is the ``(B, emb_dim)`` time embedding or None. Conditioning
is scale-and-shift (FiLM) after the block's second normalisation. Blocks that mix
globally (``attention``, ``vit``, ``mamba``) do so only where ``mixing`` is True (the
low-resolution levels chosen by the U-Net); elsewhere they are residual blocks. A new
block type is one ``Block`` subclass decorated with ``@BLOCKS.register(name)``; a block that
tokenises maps into patches says how large they are in ``Block.patch_size`` (the U-Net
reads it to check map sizes), so no other module names block types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from app.nets.attention import SpatialSelfAttention, attention
from app.nets.mamba import VisionMamba2D
from app.registry import Registry

__all__ = [
    "BLOCKS",
    "AttentionBlock",
    "Block",
    "BlockOptions",
    "MambaBlock",
    "ResidualBlock",
    "TransformerLayer",
    "VanillaBlock",
    "ViTBlock",
    "group_norm",
    "sincos_2d",
]


@dataclass(frozen=True)
class BlockOptions:
    """Settings shared by the blocks of one U-Net (``vit_*`` / ``mamba_*`` for those blocks only).

    ``mamba_scan_backend``: ``auto``, ``torch`` or ``cuda`` (``app.nets.scan``), resolved once
    when each Mamba mixer is built.
    """

    dropout: float = 0.0
    groups: int = 8
    heads: int = 4
    vit_patch: int = 1
    vit_depth: int = 1
    vit_mlp_ratio: float = 2.0
    mamba_patch: int = 1
    mamba_d_state: int = 8
    mamba_expand: int = 2
    mamba_scan_backend: str = "auto"


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count ≤ ``groups`` that divides ``channels``."""
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return nn.GroupNorm(g, channels)


class Block(nn.Module):
    """Base of the U-Net blocks: ``Block(in_ch, out_ch, emb_dim, mixing, options)``, then
    ``forward(x (B, in_ch, H, W), emb (B, emb_dim) | None) → (B, out_ch, H, W)``."""

    @classmethod
    def patch_size(cls, options: BlockOptions) -> int:
        """Side [pixels] of the patches this block type tokenises maps into where it mixes (1: none).

        The U-Net needs H and W at every mixing level to be multiples of it.
        """
        return 1


BLOCKS: Registry[type[Block]] = Registry("block type")


class _FiLM(nn.Module):
    """``h (1 + scale) + shift`` from the time embedding (identity without one)."""

    def __init__(self, emb_dim: int | None, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(emb_dim, 2 * channels) if emb_dim else None

    def forward(self, h: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        """``h`` ``(B, C, H, W)``, ``emb`` ``(B, emb_dim)`` or None → ``(B, C, H, W)``."""
        if self.proj is None or emb is None:
            return h
        scale, shift = self.proj(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        return h * (1 + scale) + shift


@BLOCKS.register("vanilla")
class VanillaBlock(Block):
    """(conv 3×3 → norm → act) × 2, FiLM after the second norm."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int | None, mixing: bool, options: BlockOptions
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm1 = group_norm(out_ch, options.groups)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.norm2 = group_norm(out_ch, options.groups)
        self.film = _FiLM(emb_dim, out_ch)
        self.dropout = nn.Dropout(options.dropout)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, in_ch, H, W)``, ``emb`` ``(B, emb_dim)`` or None → ``(B, out_ch, H, W)``."""
        h = F.silu(self.norm1(self.conv1(x)))
        h = self.conv2(self.dropout(h))
        return F.silu(self.film(self.norm2(h), emb))


@BLOCKS.register("residual")
class ResidualBlock(Block):
    """Pre-activation residual block ``skip(x) + conv(act(FiLM(norm(conv(act(norm(x)))))))``."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int | None, mixing: bool, options: BlockOptions
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch, options.groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = group_norm(out_ch, options.groups)
        self.film = _FiLM(emb_dim, out_ch)
        self.dropout = nn.Dropout(options.dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, in_ch, H, W)``, ``emb`` ``(B, emb_dim)`` or None → ``(B, out_ch, H, W)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = F.silu(self.film(self.norm2(h), emb))
        return self.skip(x) + self.conv2(self.dropout(h))


@BLOCKS.register("attention")
class AttentionBlock(ResidualBlock):
    """Residual block followed, where ``mixing``, by multi-head self-attention over positions."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int | None, mixing: bool, options: BlockOptions
    ) -> None:
        super().__init__(in_ch, out_ch, emb_dim, mixing, options)
        self.attn = SpatialSelfAttention(out_ch, options.heads, options.groups) if mixing else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, in_ch, H, W)``, ``emb`` ``(B, emb_dim)`` or None → ``(B, out_ch, H, W)``."""
        h = super().forward(x, emb)
        return self.attn(h) if self.attn is not None else h


def sincos_2d(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed 2-D sin/cos positional embedding ``(H·W, dim)`` (half the features per axis)."""
    quarter = dim // 4
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(quarter, device=device) / max(1, quarter))
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    parts = [f(c.flatten()[:, None] * freqs) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    emb = torch.cat(parts, dim=-1)
    return F.pad(emb, (0, dim - emb.shape[-1]))


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer on ``(B, L, dim)`` tokens."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"vit: token width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, L, dim)`` → ``(B, L, dim)``."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


@BLOCKS.register("vit")
class ViTBlock(ResidualBlock):
    """Residual block followed, where ``mixing``, by transformer layers over patch tokens."""

    @classmethod
    def patch_size(cls, options: BlockOptions) -> int:
        """``options.vit_patch``."""
        return options.vit_patch

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int | None, mixing: bool, options: BlockOptions
    ) -> None:
        super().__init__(in_ch, out_ch, emb_dim, mixing, options)
        self.patch = options.vit_patch
        dim = out_ch * self.patch**2
        self.layers = (
            nn.ModuleList(
                TransformerLayer(dim, options.heads, options.vit_mlp_ratio) for _ in range(options.vit_depth)
            )
            if mixing
            else None
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, in_ch, H, W)``, ``emb`` ``(B, emb_dim)`` or None → ``(B, out_ch, H, W)``."""
        h = super().forward(x, emb)
        if self.layers is None:
            return h
        b, c, hh, ww = h.shape
        p = self.patch
        if hh % p or ww % p:
            raise ValueError(f"vit: {hh}x{ww} feature map is not divisible by the patch size {p}")
        tokens = F.pixel_unshuffle(h, p).flatten(2).transpose(1, 2)
        tokens = tokens + sincos_2d(hh // p, ww // p, tokens.shape[-1], h.device).to(tokens.dtype)
        for layer in self.layers:
            tokens = layer(tokens)
        out = tokens.transpose(1, 2).reshape(b, c * p * p, hh // p, ww // p)
        return F.pixel_shuffle(out, p)


@BLOCKS.register("mamba")
class MambaBlock(ResidualBlock):
    """Residual block followed, where ``mixing``, by a four-direction 2-D Mamba (residual)."""

    @classmethod
    def patch_size(cls, options: BlockOptions) -> int:
        """``options.mamba_patch``."""
        return options.mamba_patch

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int | None, mixing: bool, options: BlockOptions
    ) -> None:
        super().__init__(in_ch, out_ch, emb_dim, mixing, options)
        o = options
        self.mixer = (
            VisionMamba2D(out_ch, o.mamba_patch, o.mamba_d_state, o.mamba_expand, o.mamba_scan_backend)
            if mixing
            else None
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, in_ch, H, W)``, ``emb`` ``(B, emb_dim)`` or None → ``(B, out_ch, H, W)``."""
        h = super().forward(x, emb)
        return h + self.mixer(h) if self.mixer is not None else h
