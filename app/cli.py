"""``python -m app fit|validate|test|predict --config configs/<name>.yaml`` (LightningCLI)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

from app.data import GalaxyDataModule
from app.data.index_cache import write_probe
from app.families import Translator
from app.families.teacher import read_checkpoint

__all__ = ["GalchemyCLI", "main", "output_folders", "typed_model_keys", "unwritable"]


def read_checkpoint_header(path: str | Path) -> dict[str, Any]:
    """The checkpoint's hyper-parameters (tensors stay on disk); ValueError naming the file when
    it is missing, truncated or not a Lightning checkpoint."""
    return dict(read_checkpoint(path, "ckpt_path").get("hyper_parameters", {}))


def typed_model_keys(args: list[str]) -> list[str]:
    """The model options given on a command line, as config keys: ``--model.init_args.steps 4`` and
    ``--model.steps=4`` both give ``model.init_args.steps`` (``class_path`` and ``help`` excluded)."""
    keys = []
    for arg in args:
        if not arg.startswith("--model."):
            continue
        key = arg[2:].split("=", 1)[0]
        if not key.startswith("model.init_args."):
            key = "model.init_args." + key[len("model.") :]
        if key.rsplit(".", 1)[-1] not in ("class_path", "help", "init_args"):
            keys.append(key)
    return keys


def output_folders(trainer: Any, subcommand: str) -> list[tuple[str, Path]]:
    """``(option, folder)`` of every folder the run will write: the loggers' and checkpoints'
    (and ``trainer.default_root_dir`` when training) and the callbacks' output folders."""
    out: list[tuple[str, Path]] = []
    if subcommand == "fit":
        out.append(("trainer.default_root_dir", Path(trainer.default_root_dir)))
        out += [("checkpoint dirpath", Path(c.dirpath)) for c in trainer.checkpoint_callbacks if c.dirpath]
    out += [(f"{type(lg).__name__} save_dir", Path(lg.save_dir)) for lg in trainer.loggers if lg.save_dir]
    attribute = {"predict": "output_dir", "test": "out"}.get(subcommand)  # MapWriter's, ReportWriter's
    for cb in trainer.callbacks if attribute else ():
        folder = getattr(cb, attribute, None)
        if isinstance(folder, (str, Path)):
            out.append((f"{type(cb).__name__} {attribute}", Path(folder)))
    return out


def unwritable(folder: Path) -> str | None:
    """Why nothing can be written into ``folder`` (or the nearest part of it that exists), or None."""
    probe = Path(folder).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    err = write_probe(probe)
    return None if err is None else f"cannot write into {probe} ({err.strerror or err})"


class GalchemyCLI(LightningCLI):
    """LightningCLI in subclass mode; ``model.init_args.target_channels`` follows ``data.init_args.targets``.

    Before anything is built, a ``--ckpt_path`` is checked: a corrupt file, or a checkpoint of
    another family than the config's, stops with an error naming both. Before a run starts,
    every output folder is checked to be writable (a read-only or missing disk stops with the
    option and folder named, not a traceback at the first save). ``predict`` writes no logger
    folders (it logs no metrics).
    """

    def add_arguments_to_parser(self, parser) -> None:
        """Link ``model.init_args.target_channels`` to the length of ``data.init_args.targets``."""
        parser.link_arguments("data.init_args.targets", "model.init_args.target_channels", compute_fn=len)

    def parse_arguments(self, parser, args) -> None:
        """Parse, then check the checkpoint against the config (file readable, same family)."""
        self._typed_args = [str(a) for a in (sys.argv[1:] if args is None else args)]
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if not ckpt_path:
            return
        try:
            hparams = read_checkpoint_header(ckpt_path)
        except ValueError as err:
            parser.error(str(err))
        saved = hparams.get("_class_path")
        wanted = self.config[sub].get("model", {}).get("class_path")
        if saved and wanted and saved != wanted:
            parser.error(f"ckpt_path: {ckpt_path} holds a {saved} model but the config asks for {wanted}; "
                         "give the config the checkpoint was trained with")  # fmt: skip

    def _parse_ckpt_path(self) -> None:
        """Lightning replaces the config's model options by the checkpoint's hyper-parameters; the
        model options typed on this command line (``--model.init_args.steps 4``, a sampler,
        ``deepcache_interval``, ``token_merging``, ``val_maps``…) are put back on top, so a
        validate or predict run uses what was asked for, not silently the training values."""
        sub = self.config.get("subcommand")
        typed = {key: self.config[sub].get(key) for key in typed_model_keys(getattr(self, "_typed_args", []))} if sub else {}
        super()._parse_ckpt_path()
        for key, value in typed.items():
            self.config[sub][key] = value

    def before_instantiate_classes(self) -> None:
        """``predict`` logs no metrics: no logger and no saved config, so no empty version folders
        and no file rewritten."""
        if self.subcommand == "predict":
            self.config["predict"]["trainer"]["logger"] = False
            self.save_config_callback = None

    def _check_outputs(self) -> None:
        """Stop with the option and folder named when a folder the run writes is not writable."""
        for option, folder in output_folders(self.trainer, self.subcommand):
            why = unwritable(folder)
            if why:
                self.parser.error(f"{option}: {why}; give a folder you can write to")

    # LightningCLI calls before_<subcommand>: every subcommand checks its output folders first
    before_fit = before_validate = before_test = before_predict = _check_outputs


def show_progress_logs(level: int = logging.INFO) -> None:
    """Print galchemy's INFO messages (files found, pairs kept and dropped, split sizes, fitted
    transforms, mock writing, output folders) on stderr, once, unless logging is configured."""
    for name in ("app", "validation"):
        logger = logging.getLogger(name)
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(level)


def main(args: list[str] | None = None) -> None:
    """Run the LightningCLI fit/validate/test/predict on ``args`` (``sys.argv`` when None)."""
    show_progress_logs()
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
