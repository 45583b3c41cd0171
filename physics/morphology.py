"""CAS morphology (Conselice 2003) as used by the Galactic Alchemy study.

* Asymmetry ``A = Σ_ap |I − I_180| / Σ_ap |I|`` over a circular aperture of radius
  ``1.5 R50`` about the map centre (the 180° rotation about the centre is an exact flip).
* Clumpiness ``S = Σ_ann max(I − I_σ, 0) / Σ_ann I`` over the annulus
  ``0.2 R50 – 1.5 R50``, with ``I_σ`` the map blurred by a Gaussian of ``sigma_px`` pixels.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F
from astropy import units as u

from physics._arrays import Boundary, as_float_tensor, as_map, give_back
from physics._finite import map_exponent, times_pow2
from physics.grid import pixel_offsets, resolve_scale
from physics.profiles import half_mass_radius

__all__ = ["asymmetry", "clumpiness", "gaussian_blur"]


def gaussian_blur(field: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(..., H, W)`` float64 maps (reflecting borders)."""
    if sigma_px <= 0:
        raise ValueError(f"sigma_px must be positive, got {sigma_px}")
    radius = max(1, math.ceil(4 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=field.dtype, device=field.device)
    kernel = torch.exp(-0.5 * (x / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    batch = field.shape[:-2]
    img = field.reshape(-1, 1, *field.shape[-2:])
    pad_h, pad_w = min(radius, img.shape[-2] - 1), min(radius, img.shape[-1] - 1)
    img = F.pad(img, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    kh = kernel[radius - pad_h : radius + pad_h + 1]
    kw = kernel[radius - pad_w : radius + pad_w + 1]
    img = F.conv2d(img, (kh / kh.sum()).reshape(1, 1, -1, 1))
    img = F.conv2d(img, (kw / kw.sum()).reshape(1, 1, 1, -1))
    return img.reshape(*batch, *field.shape[-2:])


def _radius_px(t: torch.Tensor) -> torch.Tensor:
    rows, cols = pixel_offsets(*t.shape[-2:], t.device)
    return torch.sqrt(rows**2 + cols**2)


def _r50_px(t: torch.Tensor, r50: Any, pixel_size: Any, extent: Any) -> torch.Tensor:
    """``R50`` ``(...,)`` in pixels: the map's own (no pixel scale needed) or the given one [kpc]."""
    if r50 is None:
        return half_mass_radius(t, 1.0)  # in pixels
    scale = resolve_scale(pixel_size, extent, tuple(t.shape), t.device)
    if isinstance(r50, u.Quantity):
        try:
            r50 = r50.to_value(scale.unit)
        except u.UnitConversionError:
            raise ValueError(f"r50 must be a {scale.unit.physical_type}, got unit '{r50.unit}'") from None
    value, _ = as_float_tensor(r50, "r50", t.device)
    if bool((value <= 0).any()):
        raise ValueError(f"r50 must be positive, got {r50!r}")
    return value / scale.size


def _positive_factor(value: float, name: str) -> float:
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) and math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def asymmetry(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    r50: Any = None,
    aperture: float = 1.5,
) -> Any:
    """Rotational asymmetry within ``aperture·R50`` of the map centre, ``(...,)``, dimensionless.

    Args:
        field: map(s) ``(..., H, W)``.
        r50: positive half-mass radius [kpc, or a Quantity], scalar or ``(...,)``; defaults
            to the map's own (then no pixel scale is needed).
        aperture: positive multiple of ``R50``.

    Raises:
        ValueError: a non-positive ``r50`` or ``aperture``, or a map that is zero inside the aperture.
    """
    t, boundary = as_map(field, "field")
    aperture = _positive_factor(aperture, "aperture")
    r50_px = _r50_px(t, r50, pixel_size, extent)
    t = times_pow2(t, -map_exponent(t)[..., None, None])  # exact; a ratio, so the scale cancels
    inside = _radius_px(t) <= (aperture * r50_px)[..., None, None]
    rotated = torch.flip(t, dims=(-2, -1))
    num = (torch.abs(t - rotated) * inside).sum(dim=(-2, -1))
    den = (torch.abs(t) * inside).sum(dim=(-2, -1))
    if bool((den <= 0).any()):
        raise ValueError("field is zero inside the asymmetry aperture")
    return give_back(num / den, Boundary(boundary.library, boundary.device))


def clumpiness(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    r50: Any = None,
    sigma_px: float = 1.0,
    inner: float = 0.2,
    outer: float = 1.5,
) -> Any:
    """Clumpiness (smoothness) in the annulus ``inner·R50 – outer·R50``, ``(...,)``, dimensionless.

    ``field`` maps ``(..., H, W)``; ``r50`` as in :func:`asymmetry`; ``sigma_px`` the blur
    [pixels]; ``0 <= inner < outer`` in units of ``R50``.
    """
    t, boundary = as_map(field, "field")
    sigma_px = _positive_factor(sigma_px, "sigma_px")
    if not (math.isfinite(inner) and math.isfinite(outer) and 0 <= inner < outer):
        raise ValueError(f"need 0 <= inner < outer, got inner={inner}, outer={outer}")
    r50_px = _r50_px(t, r50, pixel_size, extent)[..., None, None]
    t = times_pow2(t, -map_exponent(t)[..., None, None])  # exact; a ratio, so the scale cancels
    r = _radius_px(t)
    annulus = (r >= inner * r50_px) & (r <= outer * r50_px)
    residual = torch.clamp(t - gaussian_blur(t, sigma_px), min=0.0)
    num = (residual * annulus).sum(dim=(-2, -1))
    den = (t * annulus).sum(dim=(-2, -1))
    if bool((den <= 0).any()):
        raise ValueError("field has no positive flux in the clumpiness annulus")
    return give_back(num / den, Boundary(boundary.library, boundary.device))
