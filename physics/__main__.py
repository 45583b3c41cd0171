"""``python -m physics MAP``: print a table of a map's statistics, with units."""

from __future__ import annotations

import argparse
import sys

from astropy import units as u

from physics.io import read_map
from physics.summary import summarize


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m physics", description=__doc__)
    p.add_argument("path", help="a .npy, .fits or .hdf5 map")
    p.add_argument("--dataset", help="HDF5 dataset, e.g. gas/images (default: the first */images)")
    p.add_argument("--index", type=int, default=0, help="row of a stacked HDF5 dataset (default 0)")
    p.add_argument("--hdu", type=int, help="FITS HDU (default: the first with data)")
    p.add_argument("--pixel-size", type=float, help="pixel side in --length-unit (overrides the file)")
    p.add_argument("--length-unit", default="kpc", help="unit of --pixel-size (default kpc)")
    p.add_argument("--pixel-unit", help="length unit of a FITS CDELT1 whose header has no CUNIT1, e.g. kpc")
    p.add_argument("--unit", help="unit of the map values (overrides the file), e.g. 'solMass / kpc2'")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        m = read_map(args.path, dataset=args.dataset, index=args.index, hdu=args.hdu, pixel_unit=args.pixel_unit)
        pixel = m.pixel_size
        if args.pixel_size is not None:
            pixel = args.pixel_size * u.Unit(args.length_unit)
        if pixel is None:
            raise ValueError(m.note or f"{m.label}: the file gives no pixel scale; pass --pixel-size")
        unit = u.Unit(args.unit) if args.unit else m.unit
        rows = summarize(m.data, unit, pixel)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table

    table = Table(title=m.label)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for row in rows:
        table.add_row(*row)
    Console(width=110).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
