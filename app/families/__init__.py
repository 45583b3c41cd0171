"""Generator families as LightningModules: pix2pix, diffusion (ε / v / EDM), InDI, Diffusion Mamba; baselines."""

from app.families.base import Translator, build_unet
from app.families.baseline import BaselineModel
from app.families.diffusion import Diffusion, DiffusionMamba
from app.families.indi import InDI, indi_sample
from app.families.pix2pix import Pix2Pix

__all__ = [
    "BaselineModel",
    "Diffusion",
    "DiffusionMamba",
    "InDI",
    "Pix2Pix",
    "Translator",
    "build_unet",
    "indi_sample",
]
