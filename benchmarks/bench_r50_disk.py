"""R50 of the exponential-disk test map against its closed form, at 128², 256² and 512².

``python benchmarks/bench_r50_disk.py`` (from the repository root) prints the relative error
of ``physics.half_mass_radius``; the disk (scale length, field) is the one of
``tests/test_physics_profiles.py``, whose closed-form test bounds these numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scipy.optimize import brentq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import disk_map
from test_physics_profiles import BOX, RD, _disk_mass_within

import physics as ph


def main() -> None:
    """Print ``size  R50_measured / R50_true − 1`` for each size."""
    r50 = brentq(lambda r: _disk_mass_within(r) - 0.5 * _disk_mass_within(25.0), 1, 20)
    for n in (128, 256, 512):
        print(n, f"{ph.half_mass_radius(disk_map(n, BOX, RD), BOX / n) / r50 - 1:+.2e}")


if __name__ == "__main__":
    main()
