"""Read-only folders: training reads a read-only data folder without writing into it, and a
read-only output folder stops the run before it starts, naming the option and the folder.

Permissions are real: the folders are made read-only with ``chmod``, and when the tests run
as root the CLI runs without the capabilities that let root write anyway (``setpriv``).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.data import write_mock_set

ROOT = Path(__file__).resolve().parents[1]
#: as root, drop the capabilities that bypass file permissions (CAP_DAC_*), so chmod binds
UNPRIVILEGED = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    if os.geteuid() == 0
    else []
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "user-cache")}  # the index cache of read-only data
    return subprocess.run([*UNPRIVILEGED, sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)  # fmt: skip


def _read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in folder.rglob("*")}  # fmt: skip


@pytest.fixture()
def data(tmp_path) -> Path:
    folder = write_mock_set(tmp_path / "data", galaxies=8, size=32, seed=0, progress=False)
    _read_only(folder)
    yield folder
    _writable(folder)  # let pytest clean up


def _fit(data: Path, out: Path, cwd: Path) -> subprocess.CompletedProcess:
    return _run("-m", "app", "fit", "--config", str(ROOT / "configs/quickstart.yaml"),
                "--data.init_args.data", str(data), "--data.init_args.size", "16",
                "--data.init_args.split", "[0.5, 0.25, 0.25]", "--trainer.default_root_dir", str(out),
                "--trainer.logger.init_args.save_dir", str(out), "--trainer.max_epochs", "1",
                "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", cwd=cwd)  # fmt: skip


def test_the_folders_are_really_read_only(data, tmp_path):
    probe = _run("-c", f"open({str(data / 'probe.txt')!r}, 'w')", cwd=tmp_path)
    assert probe.returncode != 0 and "Permission denied" in probe.stderr


def test_training_reads_a_read_only_data_folder_and_writes_nothing_there(data, tmp_path):
    before = _snapshot(data)
    fit = _fit(data, tmp_path / "run", tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert list((tmp_path / "run").rglob("last.ckpt"))
    assert _snapshot(data) == before
    assert list((tmp_path / "user-cache" / "galchemy").glob("index-*.json"))  # the index went to the user cache


def test_a_read_only_output_folder_stops_the_run_before_it_starts(data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    _read_only(out)
    try:
        fit = _fit(data, out / "sub", tmp_path)
    finally:
        _writable(out)
    assert fit.returncode == 2
    assert f"trainer.default_root_dir: cannot write into {out} (Permission denied)" in fit.stderr
    assert "Traceback" not in fit.stderr and not list(out.iterdir())
