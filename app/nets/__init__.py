"""Networks: the block-configurable U-Net, the PatchGAN discriminator, attention and Mamba."""

from app.nets.blocks import BLOCKS, Block, BlockOptions
from app.nets.discriminator import PatchDiscriminator
from app.nets.mamba import Mamba, VisionMamba2D
from app.nets.scan import resolve_scan_backend, selective_scan, selective_scan_loop
from app.nets.unet import UNet

__all__ = [
    "BLOCKS",
    "Block",
    "BlockOptions",
    "Mamba",
    "PatchDiscriminator",
    "UNet",
    "VisionMamba2D",
    "resolve_scan_backend",
    "selective_scan",
    "selective_scan_loop",
]
