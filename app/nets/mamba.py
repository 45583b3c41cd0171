"""Mamba (S6) mixers: the 1-D block of Gu & Dao and a 2-D cross-scan block for U-Nets.

``Mamba`` keeps mamba-ssm's parameter names (``in_proj``, ``conv1d``, ``x_proj``,
``dt_proj``, ``A_log``, ``D``, ``out_proj``) and initialisation, so state dicts are
interchangeable (mamba-ssm's ``_no_weight_decay`` flags on ``A_log`` and ``D`` are not
kept: the families train without weight decay). The scan backend is resolved once, when
the block is built (``scan_backend``; ``"auto"`` defers to ``GALCHEMY_SCAN_BACKEND``, see
``app.nets.scan``). ``VisionMamba2D`` tokenises a feature map into patches and scans the
token grid in four orders (row-major, column-major, and both reversed) with one shared
``Mamba`` in a single batched scan, then averages the un-permuted outputs: every output
token sees every input token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from app.nets.scan import resolve_scan_backend, selective_scan

__all__ = ["Mamba", "VisionMamba2D", "cross_scan_orders"]


class Mamba(nn.Module):
    """Selective state-space mixer on ``(batch, L, d_model)`` sequences.

    Args:
        d_model: token width.
        d_state: state size N per channel.
        d_conv: width of the causal depthwise convolution.
        expand: inner width ``d_inner = expand · d_model``.
        dt_rank: rank of the Δ projection (default ``⌈d_model / 16⌉``).
        dt_min, dt_max: range of the initial Δ (log-uniform).
        scan_backend: ``auto``, ``torch`` or ``cuda`` (``app.nets.scan.BACKENDS``), resolved
            here once (``"auto"`` reads ``GALCHEMY_SCAN_BACKEND``) and kept as ``self.scan_backend``.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.scan_backend = resolve_scan_backend(scan_backend)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():  # bias = softplus⁻¹(dt)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, L, d_model)`` → same shape."""
        length = x.shape[1]
        xz = self.in_proj(x).transpose(1, 2)  # (batch, 2·d_inner, L)
        u, z = xz.chunk(2, dim=1)
        u = F.silu(self.conv1d(u)[..., :length])  # causal depthwise conv
        dbc = self.x_proj(u.transpose(1, 2))  # (batch, L, dt_rank + 2N)
        dt, b, c = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.T).transpose(1, 2)  # bias goes in as delta_bias
        y = selective_scan(
            u, delta, -torch.exp(self.A_log.float()), b.transpose(1, 2), c.transpose(1, 2),
            self.D.float(), z, self.dt_proj.bias.float(), True, backend=self.scan_backend,
        )  # fmt: skip
        return self.out_proj(y.transpose(1, 2))


def cross_scan_orders(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Four token orders ``(4, H·W)`` of a row-major grid: rows, columns, and both reversed."""
    grid = torch.arange(height * width, device=device).reshape(height, width)
    rows = grid.flatten()
    cols = grid.t().flatten()
    return torch.stack([rows, cols, rows.flip(0), cols.flip(0)])


class VisionMamba2D(nn.Module):
    """Patch tokens of ``(B, C, H, W)`` mixed by a four-direction Mamba; returns ``(B, C, H, W)``.

    Args:
        channels: C.
        patch: patch side p (H and W must be multiples); tokens are ``C·p²`` wide.
        d_state, expand: the ``Mamba`` mixer's.
        scan_backend: the ``Mamba`` mixer's (resolved once, at construction).
    """

    def __init__(
        self, channels: int, patch: int = 1, d_state: int = 16, expand: int = 2, scan_backend: str = "auto"
    ) -> None:
        super().__init__()
        self.patch = patch
        dim = channels * patch * patch
        self.norm = nn.LayerNorm(dim)
        self.mixer = Mamba(dim, d_state=d_state, expand=expand, scan_backend=scan_backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, C, H, W)``: every output token sees every input token."""
        b, c, h, w = x.shape
        p = self.patch
        if h % p or w % p:
            raise ValueError(f"VisionMamba2D: {h}x{w} is not divisible by the patch size {p}")
        tokens = F.pixel_unshuffle(x, p).flatten(2).transpose(1, 2)  # (B, L, C·p²)
        orders = cross_scan_orders(h // p, w // p, x.device)
        seqs = tokens[:, orders]  # (B, 4, L, dim)
        mixed = self.mixer(self.norm(seqs.flatten(0, 1))).view_as(seqs)
        out = torch.zeros_like(tokens)
        for k in range(orders.shape[0]):  # un-permute each direction and average
            out[:, orders[k]] += mixed[:, k] / orders.shape[0]
        out = out.transpose(1, 2).reshape(b, c * p * p, h // p, w // p)
        return F.pixel_shuffle(out, p)
