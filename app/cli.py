"""``python -m app fit|validate|test|predict --config configs/<name>.yaml`` (LightningCLI)."""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from app.data import GalaxyDataModule
from app.families import Translator

__all__ = ["GalchemyCLI", "main"]


class GalchemyCLI(LightningCLI):
    """LightningCLI in subclass mode; ``model.init_args.target_channels`` follows ``data.init_args.targets``."""

    def add_arguments_to_parser(self, parser) -> None:
        """Link ``model.init_args.target_channels`` to the length of ``data.init_args.targets``."""
        parser.link_arguments("data.init_args.targets", "model.init_args.target_channels", compute_fn=len)


def main(args: list[str] | None = None) -> None:
    """Run the LightningCLI fit/validate/test/predict on ``args`` (``sys.argv`` when None)."""
    GalchemyCLI(
        Translator,
        GalaxyDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
        auto_configure_optimizers=False,
    )
