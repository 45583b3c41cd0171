"""PatchGAN discriminator (Isola et al. 2017) on the concatenated (condition, map)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchDiscriminator"]

NORMS = {
    "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
    "batch": nn.BatchNorm2d,
    "none": lambda c: nn.Identity(),
}


class PatchDiscriminator(nn.Module):
    """C64 → C128 → … (4×4 convs, stride 2) → C(s1) → 1-channel logits per patch.

    With ``n_layers = 3`` each output logit sees a 70×70 input patch.

    Args:
        in_channels: condition + map channels (they are concatenated).
        base_channels: width of the first conv; doubled per layer up to 8×.
        n_layers: normalised conv layers after the first (≥ 1; all stride 2 but the last).
        norm: ``instance``, ``batch`` or ``none``.
    """

    def __init__(
        self, in_channels: int, base_channels: int = 64, n_layers: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(
                f"model.discriminator.norm: unknown norm {norm!r}; choose one of {sorted(NORMS)}"
            )
        if n_layers < 1:
            raise ValueError(f"model.discriminator.n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = base_channels
        for i in range(1, n_layers + 1):
            out = base_channels * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1), NORMS[norm](out), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 1, H', W')`` for the pair ``condition`` ``(B, C_c, H, W)``, ``image``
        ``(B, C_i, H, W)`` (``C_c + C_i = in_channels``)."""
        return self.net(torch.cat([condition, image], dim=1))

    def receptive_field(self) -> int:
        """Input pixels seen by one output logit (per side)."""
        rf = 1
        for m in reversed([m for m in self.net if isinstance(m, nn.Conv2d)]):
            rf = (rf - 1) * m.stride[0] + m.kernel_size[0]
        return rf
