"""Pixel scale and pixel coordinates of a map.

The pixel scale comes from ``pixel_size`` (float in kpc, or an astropy Quantity of any
length or angle unit) or from ``extent = [x0, x1, y0, y1]`` (matplotlib's convention: x
along the last axis, y along the second-to-last). Either may be per map, shaped like the
batch dimensions. Lengths are carried internally in kpc, angles in rad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from astropy import units as u

from physics._arrays import as_float_tensor

__all__ = ["PixelScale", "pixel_offsets", "resolve_scale"]


@dataclass(frozen=True)
class PixelScale:
    """Pixel side ``size`` (float64 tensor, batch-shaped or scalar) in ``unit`` (kpc or rad).

    ``has_units`` records whether the caller gave a Quantity, so results can carry units;
    ``value`` is ``size`` as a Python float when the caller gave one plain number (so the
    arithmetic on it needs no tensor operations).
    """

    size: torch.Tensor
    unit: u.UnitBase
    has_units: bool
    value: float | None = None

    @property
    def area(self) -> torch.Tensor:
        """Pixel area in ``unit``² (same shape as ``size``)."""
        return self.size**2

    def per_map(self) -> torch.Tensor:
        """``size`` with a trailing axis, ready to broadcast against ``(..., n)`` arrays."""
        return self.size.unsqueeze(-1)


def _in_internal_unit(value: Any, name: str, device: torch.device) -> tuple[torch.Tensor, u.UnitBase, bool]:
    if isinstance(value, u.Quantity):
        if value.unit.physical_type == "length":
            return as_float_tensor(value.to_value(u.kpc), name, device)[0], u.kpc, True
        if value.unit.physical_type == "angle":
            return as_float_tensor(value.to_value(u.rad), name, device)[0], u.rad, True
        raise ValueError(f"{name} must have a length or angle unit, got '{value.unit}'")
    if isinstance(value, str):
        raise TypeError(f"{name} must be a number, array or Quantity, got a string {value!r}")
    return as_float_tensor(value, name, device)[0], u.kpc, False


def resolve_scale(
    pixel_size: Any,
    extent: Any,
    shape: tuple[int, ...],
    device: torch.device,
) -> PixelScale:
    """Pixel scale of maps of ``shape`` ``(..., H, W)`` from ``pixel_size`` or ``extent``.

    Raises:
        ValueError: neither or both given, non-positive or non-finite size, an extent that
            is not ``[x0, x1, y0, y1]`` or whose pixels are not square, or a per-map value
            whose shape does not broadcast against the batch shape.
    """
    if pixel_size is None and extent is None:
        raise ValueError("pixel scale unknown: pass pixel_size=<kpc or Quantity> or extent=[x0, x1, y0, y1]")
    if pixel_size is not None and extent is not None:
        raise ValueError("pass either pixel_size or extent, not both")
    batch = tuple(shape[:-2])
    if isinstance(pixel_size, (float, int)) and not isinstance(pixel_size, bool) and extent is None:
        value = float(pixel_size)  # the common case, checked in Python
        if not math.isfinite(value):
            raise ValueError(f"pixel_size must be finite, got {pixel_size!r}")
        if value <= 0:
            raise ValueError(f"pixel_size must be positive; got {pixel_size!r}")
        return PixelScale(torch.tensor(value, dtype=torch.float64, device=device), u.kpc, False, value)
    if pixel_size is not None:
        size, unit, has_units = _in_internal_unit(pixel_size, "pixel_size", device)
    else:
        ext, unit, has_units = _in_internal_unit(extent, "extent", device)
        if ext.ndim == 0 or ext.shape[-1] != 4:
            raise ValueError(
                f"extent must be [x0, x1, y0, y1] (last axis of length 4); got shape {tuple(ext.shape)}"
            )
        height, width = shape[-2], shape[-1]
        dx = (ext[..., 1] - ext[..., 0]) / width
        dy = (ext[..., 3] - ext[..., 2]) / height
        if bool((dx <= 0).any()) or bool((dy <= 0).any()):
            raise ValueError(f"extent must satisfy x1 > x0 and y1 > y0; got {extent!r}")
        if not torch.allclose(dx, dy, rtol=1e-6, atol=0.0):
            raise ValueError(
                f"extent {extent!r} gives non-square pixels ({dx.tolist()} x {dy.tolist()}); "
                "only square pixels are supported"
            )
        size = dx
    if bool((size <= 0).any()):
        raise ValueError(
            f"pixel_size must be positive; got {pixel_size if pixel_size is not None else extent!r}"
        )
    if size.ndim > 0:
        try:
            torch.broadcast_shapes(size.shape, batch)
        except RuntimeError as err:
            raise ValueError(
                f"per-map pixel scale of shape {tuple(size.shape)} does not broadcast "
                f"against the batch shape {batch}"
            ) from err
        if len(size.shape) > len(batch):
            raise ValueError(
                f"per-map pixel scale of shape {tuple(size.shape)} has more dimensions than "
                f"the batch shape {batch}"
            )
    return PixelScale(size=size, unit=unit, has_units=has_units)


def pixel_offsets(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre offsets from the map centre, in pixels: ``(rows (H, 1), cols (1, W))``.

    Pixel ``i`` has its centre at ``(i + 0.5)`` pixels from the edge; the map centre is at
    ``H/2`` (resp. ``W/2``), so a 180° rotation about the centre is an exact flip.
    """
    rows = torch.arange(height, dtype=torch.float64, device=device) + 0.5 - height / 2
    cols = torch.arange(width, dtype=torch.float64, device=device) + 0.5 - width / 2
    return rows[:, None], cols[None, :]
