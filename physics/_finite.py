"""Float64 range guards: exact power-of-two scaling and overflow errors (private to ``physics``).

A statistic that squares or sums pixel values can overflow float64 (``1e300² = inf``)
or underflow it long before its answer does. The statistics therefore scale each map by
a power of two ``2^-e`` that brings its largest ``|value|`` into ``[0.5, 1)``, compute on
the scaled map, and put the scale back at the end with :func:`times_pow2`. Multiplying
by a power of two is exact in binary floating point (barring over/underflow), so results
that were representable before are bitwise unchanged; results that are not representable
raise a ``ValueError`` naming the input (:func:`require_finite`) instead of coming back as
``inf`` or ``nan``.
"""

from __future__ import annotations

import torch

__all__ = ["SAFE_EXPONENT", "map_exponent", "peak_abs", "require_finite", "split_pow2", "times_pow2"]

_STEP = 1000  # |exponent| per multiplication: 2^±1000 is a normal float64
#: maps whose largest |value| lies in [2^-SAFE_EXPONENT, 2^SAFE_EXPONENT] (about 5e-20 to 2e19)
#: can be squared and summed unscaled: even a 2^20-pixel map's power stays far inside float64
SAFE_EXPONENT = 64


def _pow2(n: torch.Tensor) -> torch.Tensor:
    """Exact ``2.0 ** n`` (float64) for integer tensors ``n`` in ``[-1022, 1023]``, built from its bits."""
    return ((n.to(torch.int64) + 1023) << 52).view(torch.float64)


def times_pow2(x: torch.Tensor, exponent: torch.Tensor | int) -> torch.Tensor:
    """``x · 2^exponent`` (float64, broadcast), exact unless the result over- or underflows.

    ``exponent`` is an integer tensor (or int) broadcastable to ``x``, of any size: the
    factor is applied in steps of at most ``2^±1000``, so no intermediate power of two
    overflows and the intermediate values lie between ``x`` and the result.
    """
    e = torch.as_tensor(exponent, dtype=torch.int64, device=x.device)
    out = x
    while True:
        step = e.clamp(-_STEP, _STEP)
        if not bool((step != 0).any()):
            return out
        out = out * _pow2(step)
        e = e - step


def split_pow2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(m, e)`` with ``x = m · 2^e``, ``|m|`` in ``[0.5, 1)`` (``m = e = 0`` for ``x = 0``).

    ``m`` float64, ``e`` int64, both of the shape of ``x``.
    """
    m, e = torch.frexp(x)
    return m, e.to(torch.int64)


def peak_abs(t: torch.Tensor) -> torch.Tensor:
    """Largest ``|value|`` of each map ``(..., H, W)`` → ``(...,)`` float64 (NaN if a pixel is NaN).

    Taken as ``max(amax, −amin)``, without a ``|t|`` temporary (``abs().amax()`` was 10× slower).
    """
    flat = t.flatten(-2)
    return torch.maximum(flat.amax(dim=-1), -flat.amin(dim=-1))


def map_exponent(t: torch.Tensor) -> torch.Tensor:
    """Per-map exponent ``e`` ``(...,)`` (int64) with ``max |t| · 2^-e`` in ``[0.5, 1)``.

    ``e = 0`` for all-zero maps.

    ``t`` are finite float64 maps ``(..., H, W)``; ``times_pow2(t, -e[..., None, None])``
    is the scaled map, exactly.
    """
    return split_pow2(peak_abs(t))[1]


def require_finite(value: torch.Tensor, what: str, inputs: str, mantissa: torch.Tensor | None = None) -> None:
    """Raise a ValueError naming ``inputs`` when ``value`` over- (or, given ``mantissa``, under-) flowed.

    Args:
        value: the rescaled result.
        what: what ``value`` is, with its inputs, e.g. ``"the power spectrum of field"``.
        inputs: the argument(s) to rescale, e.g. ``"field or pixel_size"``.
        mantissa: the result before rescaling; where it is non-zero but ``value`` is
            zero, the result underflowed.
    """
    if not bool(torch.isfinite(value).all()):
        raise ValueError(
            f"{what} overflows float64 (beyond 1.8e308): rescale {inputs}, e.g. use another unit"
        )
    if mantissa is not None and bool(((mantissa != 0) & (value == 0)).any()):
        raise ValueError(
            f"{what} underflows float64 (below 4.9e-324): rescale {inputs}, e.g. use another unit"
        )
