"""``UNetOptions``: the U-Net's options as a dataclass, for configs (``model.net``).

Generated from ``UNet.__init__`` (its one home), without the channels, which each family
sets. Typed this way, LightningCLI documents every option, rejects a misspelt key at parse
time, and merges several configs key by key (``--config configs/unet/vit.yaml`` changes
the block and keeps the width).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, get_type_hints

from app.nets.unet import UNet

__all__ = ["FAMILY_SET", "UNetOptions", "net_dict"]

#: set by the family, never by a config
FAMILY_SET = ("in_channels", "out_channels")


def _make() -> type:
    hints = get_type_hints(UNet.__init__)
    fields = [(name, hints[name], dataclasses.field(default=p.default))
              for name, p in inspect.signature(UNet.__init__).parameters.items()
              if name != "self" and name not in FAMILY_SET]  # fmt: skip
    cls = dataclasses.make_dataclass("UNetOptions", fields)
    cls.__module__ = __name__  # so the CLI and pickling find it here
    cls.__doc__ = f"U-Net options (``model.net``): the arguments of ``app.nets.UNet``.\n\n{UNet.__doc__}"
    return cls


UNetOptions = _make()


def net_dict(net: Any) -> dict[str, Any]:
    """``model.net`` as a plain dict: from ``UNetOptions``, a mapping, or None (all defaults)."""
    if net is None:
        return {}
    if dataclasses.is_dataclass(net):
        return dataclasses.asdict(net)
    return dict(net)
