"""Scientific validation: torchmetrics metrics over ``physics``, physics-based early stopping, reports."""

from validation.callbacks import PhysicsCheckpoint, PhysicsEarlyStopping
from validation.collection import DEFAULT_WEIGHTS, PhysicsMetrics, physics_score
from validation.metrics import (
    CrossCorrelationError,
    HalfMassRadiusError,
    HalfMassRadiusErrorDex,
    HalfMassRadiusErrors,
    MassBiasDex,
    MassErrorDex,
    PixelW1Dex,
    PowerSpectrumError,
    ProfileErrorDex,
    RelativeMassError,
    TransferFunctionError,
)
from validation.ssim import StructuralSimilarity

__all__ = [
    "DEFAULT_WEIGHTS",
    "CrossCorrelationError",
    "HalfMassRadiusError",
    "HalfMassRadiusErrorDex",
    "HalfMassRadiusErrors",
    "MassBiasDex",
    "MassErrorDex",
    "PhysicsCheckpoint",
    "PhysicsEarlyStopping",
    "PhysicsMetrics",
    "PixelW1Dex",
    "PowerSpectrumError",
    "ProfileErrorDex",
    "RelativeMassError",
    "StructuralSimilarity",
    "TransferFunctionError",
    "physics_score",
]
