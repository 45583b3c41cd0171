"""Generator families as LightningModules: pix2pix, diffusion (ε / v / EDM), residual diffusion, InDI, Diffusion Mamba, the
distilled students (consistency models, progressive distillation); baselines."""

from app.families.base import Translator, build_unet
from app.families.baseline import BaselineModel
from app.families.consistency import Consistency
from app.families.diffusion import Diffusion, DiffusionMamba
from app.families.indi import InDI, indi_sample
from app.families.pix2pix import Pix2Pix
from app.families.progressive import Progressive
from app.families.residual import ResidualDiffusion

__all__ = [
    "BaselineModel",
    "Consistency",
    "Diffusion",
    "DiffusionMamba",
    "InDI",
    "Pix2Pix",
    "Progressive",
    "ResidualDiffusion",
    "Translator",
    "build_unet",
    "indi_sample",
]
