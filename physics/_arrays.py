"""The numpy / torch / astropy boundary shared by every statistic.

Inputs arrive as numpy arrays, astropy Quantities or torch tensors of shape
``(..., H, W)``. They are validated, turned into float64 torch tensors on their own
device, and results are handed back in the library the caller gave: numpy (Quantity when
units were given) or torch on the caller's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from astropy import units as u

__all__ = ["Boundary", "as_float_tensor", "as_map", "check_same_shape", "give_back", "refuse_non_finite"]


@dataclass(frozen=True)
class Boundary:
    """How to hand results back.

    Attributes:
        library: ``"numpy"`` (numpy arrays, Quantities with units) or ``"torch"``.
        device: torch device of the caller's tensors (CPU for numpy).
        unit: the caller's map unit, or None.
    """

    library: str
    device: torch.device
    unit: u.UnitBase | None = None

    def wants_units(self, *others: u.UnitBase | None) -> bool:
        """Whether results should carry astropy units."""
        return self.library == "numpy" and (self.unit is not None or any(o is not None for o in others))


def _to_tensor(x: Any, name: str) -> tuple[torch.Tensor, str, u.UnitBase | None]:
    unit = None
    if isinstance(x, torch.Tensor):
        library = "torch"
        t = x.detach()
    else:
        library = "numpy"
        if isinstance(x, u.Quantity):
            unit = x.unit
            x = x.value
        arr = np.asarray(x)
        if arr.dtype.kind not in "biufc":  # bool, integers, floats, complex (refused below)
            raise TypeError(f"{name} must be a numeric array or tensor, got dtype {arr.dtype}")
        # shared, not copied (no statistic writes into its input): a copy of a large batch
        # cost more than its FFT; read-only or strided arrays are copied (torch needs both)
        if not (arr.flags.c_contiguous and arr.flags.writeable):
            arr = arr.copy(order="C")  # (not ascontiguousarray: it turns 0-d into 1-d)
        t = torch.from_numpy(arr)
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued, got complex dtype {t.dtype}")
    return t.to(torch.float64), library, unit


def as_map(x: Any, name: str = "map", check_finite: bool = True) -> tuple[torch.Tensor, Boundary]:
    """Validate a map ``(..., H, W)`` and return it as float64 tensor plus its boundary.

    ``check_finite=False`` leaves the NaN/Inf check to a caller that makes its own pass over
    the pixels (it must call :func:`refuse_non_finite` when that pass finds one).

    Raises:
        TypeError: non-numeric or complex input.
        ValueError: fewer than 2 dimensions, an empty map, or NaN/Inf pixels.
    """
    t, library, unit = _to_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must have shape (..., H, W) with at least 2 dimensions; got shape {tuple(t.shape)}"
        )
    if t.numel() == 0 or t.shape[-1] == 0 or t.shape[-2] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    # A finite sum proves every pixel finite (NaN and ±Inf propagate); only when it is not
    # (a bad pixel, or an overflowing sum of finite values) is the per-pixel scan needed.
    if check_finite and not math.isfinite(t.sum().item()):
        refuse_non_finite(t, name)
    return t, Boundary(library=library, device=t.device, unit=unit)


def refuse_non_finite(t: torch.Tensor, name: str) -> None:
    """Raise a ValueError counting the NaN/Inf pixels of map ``t`` (none: return)."""
    n_bad = int((~torch.isfinite(t)).sum())
    if n_bad:
        raise ValueError(f"{name} contains {n_bad} NaN/Inf pixel(s) out of {t.numel()}")


def as_float_tensor(x: Any, name: str, device: torch.device) -> tuple[torch.Tensor, u.UnitBase | None]:
    """A non-map numeric argument (scalar or array) as a float64 tensor on ``device``."""
    t, _, unit = _to_tensor(x, name)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return t.to(device), unit


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise a ValueError naming both arguments when their shapes differ."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def give_back(t: torch.Tensor, boundary: Boundary, unit: u.UnitBase | None = None) -> Any:
    """Return ``t`` in the caller's library; a Quantity when ``unit`` is given (numpy only)."""
    if boundary.library == "torch":
        return t.to(boundary.device)
    arr = t.detach().cpu().numpy()
    if arr.ndim == 0:
        arr = arr[()]
    if unit is not None:
        return u.Quantity(arr, unit)
    return arr
