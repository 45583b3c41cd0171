"""A 2-D U-Net whose blocks are chosen by name (vanilla, residual, attention, vit, mamba)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from app.nets.attention import AttentionGate
from app.nets.blocks import BLOCKS, BlockOptions, group_norm
from app.nets.embeddings import TimeEmbedding

__all__ = ["DOWNSAMPLERS", "UNet"]

#: stride-2 downsampling convolutions, by name. ``conv3x3`` (the wave-1 default) is centred on
#: each 2×2 block's first pixel, so with nearest-neighbour upsampling a feature drifts by
#: +½ fine pixel per level; ``conv2x2`` sees exactly its block and keeps features in place
#: (tested), with fewer weights. Which trains better is measured, not assumed (docs/networks.md).
DOWNSAMPLERS = {
    "conv3x3": lambda ch: nn.Conv2d(ch, ch, 3, stride=2, padding=1),
    "conv2x2": lambda ch: nn.Conv2d(ch, ch, 2, stride=2),
}


class UNet(nn.Module):
    """U-Net ``(B, in_channels, H, W)`` (+ optional ``(B,)`` times) → ``(B, out_channels, H, W)``.

    Args:
        in_channels: condition channels (+ noisy-state channels for diffusion families).
        out_channels: predicted channels; the head is linear (no clamp on physical maps).
        base_channels: width of the first level; level ``i`` has ``base · channel_mults[i]``.
        channel_mults: one entry per level; the map is halved ``len − 1`` times.
        blocks_per_level: blocks per level in the encoder and the decoder.
        block: block type (see ``app.nets.blocks.BLOCKS``).
        mixing_levels: levels (0 = full resolution) where attention / ViT / Mamba blocks mix
            globally; default the two lowest levels. The bottleneck always mixes.
        time_embedding: None (no conditioning), ``"sinusoidal"`` or ``"fourier"`` (the style of
            ``app.nets.embeddings.TimeEmbedding``); ``time_features``: its number of features.
        attention_gates: gate the skip connections (Attention U-Net).
        downsample: ``conv3x3`` (default) or ``conv2x2`` (``DOWNSAMPLERS``).
        dropout, norm_groups, heads, vit_patch, vit_depth, mamba_patch, mamba_d_state,
        mamba_expand: block options (``BlockOptions``).
        mamba_scan_backend: ``auto`` (default; the CUDA kernel when a call qualifies, or
            ``GALCHEMY_SCAN_BACKEND`` when that is set at construction), ``torch`` or ``cuda``.
            Resolved once, when the Mamba mixers are built.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] | list[int] = (1, 2, 4),
        blocks_per_level: int = 1,
        block: str = "residual",
        mixing_levels: list[int] | None = None,
        time_embedding: str | None = None,
        time_features: int = 64,
        attention_gates: bool = False,
        dropout: float = 0.0,
        norm_groups: int = 8,
        heads: int = 4,
        vit_patch: int = 1,
        vit_depth: int = 1,
        mamba_patch: int = 1,
        mamba_d_state: int = 8,
        mamba_expand: int = 2,
        downsample: str = "conv3x3",
        mamba_scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        block_cls = BLOCKS.get(block, "model.net.block")
        if downsample not in DOWNSAMPLERS:
            raise ValueError(f"model.net.downsample: unknown {downsample!r}; choose one of {sorted(DOWNSAMPLERS)}")
        mults = list(channel_mults)
        if not mults or min(mults) < 1 or base_channels < 1 or blocks_per_level < 1:
            raise ValueError("UNet: channel_mults, base_channels and blocks_per_level must be positive")
        self.levels = len(mults)
        self.block = block
        mixing = set(range(max(0, self.levels - 2), self.levels) if mixing_levels is None else mixing_levels)
        bad = [m for m in mixing if not 0 <= m < self.levels]
        if bad:
            raise ValueError(f"model.net.mixing_levels: {bad} outside 0..{self.levels - 1}")
        self.mixing_levels = sorted(mixing)
        opts = BlockOptions(
            dropout=dropout, groups=norm_groups, heads=heads, vit_patch=vit_patch, vit_depth=vit_depth,
            vit_mlp_ratio=2.0, mamba_patch=mamba_patch, mamba_d_state=mamba_d_state,
            mamba_expand=mamba_expand, mamba_scan_backend=mamba_scan_backend,
        )  # fmt: skip
        self.patches = block_cls.patch_size(opts)
        emb_dim = 4 * base_channels if time_embedding else None
        self.time_embed = TimeEmbedding(time_embedding, emb_dim, time_features) if time_embedding else None
        widths = [base_channels * m for m in mults]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = widths[0]
        for i, w in enumerate(widths):
            self.down.append(
                nn.ModuleList(
                    block_cls(ch if j == 0 else w, w, emb_dim, i in mixing, opts)
                    for j in range(blocks_per_level)
                )
            )
            ch = w
            if i < self.levels - 1:
                self.downsample.append(DOWNSAMPLERS[downsample](w))
        self.mid = nn.ModuleList(
            [block_cls(ch, ch, emb_dim, True, opts), block_cls(ch, ch, emb_dim, True, opts)]
        )
        self.up = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(self.levels)):
            w = widths[i]
            self.gates.append(AttentionGate(w, ch) if attention_gates else nn.Identity())
            self.up.append(
                nn.ModuleList(
                    block_cls(ch + w if j == 0 else w, w, emb_dim, i in mixing, opts)
                    for j in range(blocks_per_level)
                )
            )
            ch = w
            if i > 0:
                self.upsample.append(nn.Conv2d(w, w, 3, padding=1))
        self.out_norm = group_norm(ch, norm_groups)
        self.out = nn.Conv2d(ch, out_channels, 3, padding=1)
        self.attention_gates = attention_gates

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (2^(levels−1), and 2^level × patch at mixing levels)."""
        needs = [2 ** (self.levels - 1)] + [
            2**lvl * self.patches for lvl in [*self.mixing_levels, self.levels - 1]
        ]
        return math.lcm(*needs)

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError if ``(height, width)`` maps cannot pass through the net."""
        for lvl in [*self.mixing_levels, self.levels - 1]:
            need = 2**lvl * self.patches
            if height % need or width % need:
                raise ValueError(
                    f"image size {height}x{width}: level {lvl} of this {self.levels}-level U-Net with "
                    f"{self.block} blocks needs H and W divisible by {need} (2^{lvl} x patch {self.patches})"
                )
        need = 2 ** (self.levels - 1)
        if height % need or width % need:
            raise ValueError(f"image size {height}x{width} is not divisible by 2^(levels-1) = {need}")

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, in_channels, H, W)`` and, with a time embedding, ``t`` ``(B,)`` or a scalar
        → ``(B, out_channels, H, W)``."""
        return self.forward_parts(x, t)[0]

    def forward_parts(
        self, x: torch.Tensor, t: torch.Tensor | None = None, deep: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output and the *deep features* (what enters the shallowest up level from below,
        ``(B, C₁, H, W)``). Given ``deep`` from an earlier call (DeepCache, ``app/nets/deepcache.py``),
        only the shallowest level is computed: the stem, the first down level and the last up
        level; with ``deep`` from the same ``x`` and ``t`` the output is the full forward's."""
        self.check_size(*x.shape[-2:])
        if self.time_embed is not None:
            if t is None:
                raise ValueError("this U-Net has a time embedding: pass t of shape (B,)")
            emb = self.time_embed(t.expand(x.shape[0]) if t.numel() == 1 else t)
        else:
            emb = None
        h = self.stem(x)
        skips = []
        for i, blocks in enumerate(self.down):
            if deep is not None and i > 0:
                break
            for blk in blocks:
                h = blk(h, emb)
            skips.append(h)
            if i < self.levels - 1 and deep is None:
                h = self.downsample[i](h)
        if deep is None:
            for blk in self.mid:
                h = blk(h, emb)
        first = self.levels - 1 if deep is not None else 0
        for k in range(first, self.levels):
            if k == self.levels - 1:
                h = deep if deep is not None else h
                deep = h
            skip = skips.pop()
            if self.attention_gates:
                skip = self.gates[k](skip, h)
            h = torch.cat([h, skip], dim=1)
            for blk in self.up[k]:
                h = blk(h, emb)
            if k < self.levels - 1:
                h = self.upsample[k](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h))), deep
