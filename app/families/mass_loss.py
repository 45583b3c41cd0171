"""A total-mass loss: the generator is told how far each map's summed mass is from the truth's.

The pixel losses of the families work in normalised units, where a map is a strongly convex
function of the network's values (``x ∝ f^γ`` for the ``power`` transform, ``10^f`` for
``log10``). A prediction that is slightly too smooth in those units therefore loses mass in
physical units, and does so systematically. This loss measures the mass itself, after the
data's own inverse transforms (differentiably, in float64), for the channels whose pixels
add up to a mass (the domains' ``profiled`` kinds: surface densities and surface brightness).

It is not ``physics.mass_log_error``: that statistic is exact at any scale (power-of-two
mantissas, no gradient) and refuses an empty truth; a training loss needs a gradient and
skips such maps. Pixels that the inverse transform puts at zero (below its floor, ``snap``)
get no gradient from it, so the loss cannot refill emptied pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from app.data.domains import get_domain
from app.families.inference import SCORE_CLAMP

__all__ = ["MASS_FLOOR", "mass_channels", "mass_dex_loss"]

#: fraction of the true mass added to both masses, so that an emptied prediction costs a
#: finite ``log10(1 / MASS_FLOOR)`` ≈ 3 dex instead of an infinite one
MASS_FLOOR = 1e-3


def mass_channels(targets: Sequence[str]) -> list[int]:
    """Indices of the target channels whose pixels sum to a mass (surface density, brightness)."""
    return [i for i, d in enumerate(targets) if get_domain(d).profiled]


def mass_dex_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    to_physical: Callable[[torch.Tensor], torch.Tensor],
    channels: Sequence[int],
) -> torch.Tensor:
    """Mean ``|log10 M_pred / M_true|`` [dex] over maps and ``channels`` (differentiable in ``pred``).

    The score's mass error, symmetric in the ratio: a relative error ``|M_pred/M_true − 1|``
    would cost an overshoot by 2× twice an undershoot by 2× and so pull predictions low.
    Both masses get ``MASS_FLOOR · M_true`` added, and a negative predicted mass (possible
    under a signed transform such as ``asinh``) counts as 0.

    Args:
        pred, target: normalised maps ``(B, C, H, W)``, any float dtype. They are inverted in
            float64, ``pred`` clamped to ±``SCORE_CLAMP`` first, as at inference.
        to_physical: the data's inverse transforms, normalised → physical units.
        channels: the channels to sum (``mass_channels``); maps whose true mass is 0 are left out.

    Returns:
        A 0-d tensor of ``pred``'s dtype [dex] (0 when no map has mass).
    """
    use = list(channels)
    p = to_physical(pred.to(torch.float64).clamp(-SCORE_CLAMP, SCORE_CLAMP))[:, use].sum(dim=(-2, -1))
    with torch.no_grad():
        t = to_physical(target.to(torch.float64))[:, use].sum(dim=(-2, -1))
    has = t > 0
    if not bool(has.any()):
        return pred.new_zeros(())
    floor = MASS_FLOOR * t[has]
    return torch.abs(torch.log10((p[has].clamp(min=0) + floor) / (t[has] + floor))).mean().to(pred.dtype)
