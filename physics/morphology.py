"""CAS morphology (Conselice 2003) as used by the Galactic Alchemy study.

* Asymmetry ``A = Σ_ap |I − I_180| / Σ_ap |I|`` over a circular aperture of radius
  ``1.5 R50`` about the map centre (the 180° rotation about the centre is an exact flip).
* Clumpiness ``S = Σ_ann max(I − I_σ, 0) / Σ_ann I`` over the annulus
  ``0.2 R50 – 1.5 R50``, with ``I_σ`` the map blurred by a Gaussian of ``sigma_px`` pixels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from physics._arrays import Boundary, as_map, give_back
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
    if r50 is None:
        return half_mass_radius(t, 1.0)  # in pixels
    scale = resolve_scale(pixel_size, extent, tuple(t.shape), t.device)
    value = torch.as_tensor(r50, dtype=torch.float64, device=t.device)
    return value / scale.size


def asymmetry(
    field: Any,
    pixel_size: Any = None,
    *,
    extent: Any = None,
    r50: Any = None,
    aperture: float = 1.5,
) -> Any:
    """Rotational asymmetry within ``aperture·R50`` of the map centre, ``(...,)``, dimensionless.

    ``r50`` [kpc] defaults to the map's own half-mass radius (then no pixel scale is needed).
    """
    t, boundary = as_map(field, "field")
    r50_px = _r50_px(t, r50, pixel_size, extent)
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
    """Clumpiness (smoothness) in the annulus ``inner·R50 – outer·R50``, ``(...,)``, dimensionless."""
    t, boundary = as_map(field, "field")
    if not 0 <= inner < outer:
        raise ValueError(f"need 0 <= inner < outer, got inner={inner}, outer={outer}")
    r50_px = _r50_px(t, r50, pixel_size, extent)[..., None, None]
    r = _radius_px(t)
    annulus = (r >= inner * r50_px) & (r <= outer * r50_px)
    residual = torch.clamp(t - gaussian_blur(t, sigma_px), min=0.0)
    num = (residual * annulus).sum(dim=(-2, -1))
    den = (t * annulus).sum(dim=(-2, -1))
    if bool((den <= 0).any()):
        raise ValueError("field has no positive flux in the clumpiness annulus")
    return give_back(num / den, Boundary(boundary.library, boundary.device))
