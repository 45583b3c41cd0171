"""DeepCache (Ma, Fang & Wang 2024): reuse a U-Net's deep features across adjacent sampler
steps, recomputing only its shallowest level.

A sampler evaluates the network at slowly changing noise levels, and the deep (low-
resolution) features change least between neighbouring evaluations. Every ``interval``-th
call runs the whole U-Net and keeps the features entering its shallowest up level; the
calls in between run only the stem, the first down level and the last up level on top of
the kept features. ``interval=1`` is the plain network, exactly. Selected at sampling time
(``deepcache_interval``), no retraining.
"""

from __future__ import annotations

import torch

from app.nets.unet import UNet

__all__ = ["DeepCache", "check_interval"]


def check_interval(interval: int) -> int:
    """``interval`` as an int; ValueError naming ``deepcache_interval`` unless it is an integer ≥ 1."""
    if isinstance(interval, bool) or int(interval) != interval or interval < 1:
        raise ValueError(f"deepcache_interval must be an integer >= 1, got {interval!r}")
    return int(interval)


class DeepCache:
    """A callable ``(x, t) → UNet(x, t)`` that reuses deep features for ``interval − 1`` calls
    after each full one. Use a fresh instance (or :meth:`reset`) per sampling run.

    Args:
        net: the U-Net.
        interval: calls per full forward (1: no caching).
    """

    def __init__(self, net: UNet, interval: int) -> None:
        self.net, self.interval = net, check_interval(interval)
        self.reset()

    def reset(self) -> None:
        """Forget the kept features: the next call is a full forward."""
        self.calls, self.full_calls, self.deep = 0, 0, None

    def __call__(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """The U-Net's output for ``x`` ``(B, C, H, W)`` at ``t``: in full every ``interval``-th
        call (or when the batch or grid changed), from the kept deep features otherwise."""
        stale = self.deep is None or self.deep.shape[0] != x.shape[0] or self.deep.shape[-2:] != x.shape[-2:]
        if self.calls % self.interval == 0 or stale:
            out, self.deep = self.net.forward_parts(x, t)
            self.full_calls += 1
        else:
            out, _ = self.net.forward_parts(x, t, self.deep)
        self.calls += 1
        return out
