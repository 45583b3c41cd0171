"""Token merging (Bolya & Hoffman 2023, after Bolya et al.'s ToMe): attention over fewer tokens.

Before an attention, a fraction ``ratio`` of the tokens is merged into its most similar partner by
bipartite soft matching: tokens alternate into sets A and B, each A token finds the B token whose
key (averaged over heads) has the largest cosine similarity, and the ``r`` best-matched A tokens
are averaged into their partners. Attention runs over the merged tokens, each key weighted by
how many tokens it stands for (proportional attention: ``+ ln size`` on the logits), and every
original token takes its merged token's output. With ``ratio = 0`` nothing changes; a set of
exactly duplicated tokens merges without changing the result.

Selected at sampling time, without retraining: ``with token_merging(0.3): model.generate(...)``
(``generate_physical`` does this for the ``token_merging`` option of validate / predict).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
import torch.nn.functional as F

__all__ = ["check_ratio", "current_ratio", "merged_attention", "token_merging"]

_RATIO: ContextVar[float] = ContextVar("token_merging_ratio", default=0.0)


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float; ValueError naming ``token_merging`` unless it is in [0, 0.5]."""
    if isinstance(ratio, bool) or not 0 <= float(ratio) <= 0.5:
        raise ValueError(f"token_merging must be a fraction of tokens in [0, 0.5], got {ratio!r}")
    return float(ratio)


@contextlib.contextmanager
def token_merging(ratio: float) -> Iterator[None]:
    """Within the block, every ``app.nets.attention.attention`` merges ``ratio`` of its tokens."""
    token = _RATIO.set(check_ratio(ratio))
    try:
        yield
    finally:
        _RATIO.reset(token)


def current_ratio() -> float:
    """The merging ratio in force (0: off)."""
    return _RATIO.get()


def merged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ratio: float) -> torch.Tensor:
    """``softmax(q kᵀ/√d) v`` on ``(B, heads, N, d)`` (v may have its own last size) with ``⌊ratio·N⌋``
    tokens (at most ⌊N/2⌋) merged away."""
    b, h, n, _ = q.shape
    d = v.shape[-1]
    n_a = (n + 1) // 2
    r = min(int(ratio * n), n_a, n - n_a)
    if r <= 0:
        return F.scaled_dot_product_attention(q, k, v)
    metric = F.normalize(k.mean(1), dim=-1)  # (B, N, d)
    scores = metric[:, 0::2] @ metric[:, 1::2].transpose(1, 2)  # (B, N_a, N_b)
    best, partner = scores.max(-1)
    order = best.argsort(-1, descending=True)
    src, kept = order[:, :r], order[:, r:]  # A tokens merged away, A tokens kept
    dst = partner.gather(1, src)  # their B partners

    def merge(t: torch.Tensor) -> torch.Tensor:  # (B, h, N, c) → (B, h, N − r, c): kept A, then all B
        a, bb = t[:, :, 0::2], t[:, :, 1::2]
        c = t.shape[-1]
        take = a.gather(2, src[:, None, :, None].expand(b, h, r, c))
        summed = bb.scatter_add(2, dst[:, None, :, None].expand(b, h, r, c), take)
        return torch.cat([a.gather(2, kept[:, None, :, None].expand(b, h, n_a - r, c)), summed], dim=2)

    size_b = torch.ones(b, n - n_a, device=q.device, dtype=q.dtype).scatter_add(
        1, dst, torch.ones_like(dst, dtype=q.dtype)
    )
    size = torch.cat([torch.ones(b, n_a - r, device=q.device, dtype=q.dtype), size_b], dim=1)  # (B, N − r)
    norm = size[:, None, :, None]
    qm, km, vm = (merge(t) / norm for t in (q, k, v))
    out = F.scaled_dot_product_attention(qm, km, vm, attn_mask=size.log()[:, None, None, :])
    # unmerge: kept A and all B from their own rows, merged A from their partners' rows
    full = torch.empty(b, h, n, d, device=q.device, dtype=q.dtype)
    a_out = torch.empty(b, h, n_a, d, device=q.device, dtype=q.dtype)
    a_out.scatter_(2, kept[:, None, :, None].expand(b, h, n_a - r, d), out[:, :, : n_a - r])
    b_out = out[:, :, n_a - r :]
    a_out.scatter_(2, src[:, None, :, None].expand(b, h, r, d), b_out.gather(2, dst[:, None, :, None].expand(b, h, r, d)))
    full[:, :, 0::2], full[:, :, 1::2] = a_out, b_out
    return full
