"""``docs/tutorial.md`` runs: every command and snippet, in order, on a small mock and one epoch."""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
from pathlib import Path

from app.data import write_mock_set

ROOT = Path(__file__).resolve().parents[1]


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block, in order."""
    return re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S)


def _commands(code: str) -> list[list[str]]:
    joined = code.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def test_the_tutorial_runs(tmp_path):
    logging.getLogger("app").setLevel(logging.ERROR)
    mock = write_mock_set(tmp_path / "mock", galaxies=8, size=32, seed=0, progress=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    small = ["--data.init_args.data", str(mock), "--data.init_args.size", "16",
             "--data.init_args.split", "[0.5, 0.25, 0.25]"]  # fmt: skip
    ran = []
    for language, code in _blocks((ROOT / "docs" / "tutorial.md").read_text()):
        if language == "python":
            runs = [[sys.executable, "-c", code]]
        else:
            runs = []
            for cmd in _commands(code):
                if cmd[0] == "pip":
                    continue  # the test runs inside the installed package
                assert cmd[:2] == ["python", "-m"], cmd
                extra = small if cmd[2] in ("app", "app.report") else []
                if cmd[2:4] == ["app", "fit"]:
                    extra = [*extra, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]
                runs.append([sys.executable, *cmd[1:], *extra])
        for run in runs:
            out = subprocess.run(run, capture_output=True, text=True, cwd=work, timeout=600)
            assert out.returncode == 0, f"{run}\n{out.stderr[-3000:]}"
            ran.append(run)
    assert len(ran) == 6  # fit, report, predict, the FITS snippet, predict own maps, physics
    assert (work / "runs/quickstart/logs/version_0/reports/last/index.md").is_file()
    assert (work / "runs/quickstart/predictions/gas/hdf5/prediction.gas.hdf5").is_file()
    assert (work / "runs/quickstart/predictions-1/fits/galaxy.gas.fits").is_file()
