"""``python -m app.data mock --out data/mock --galaxies 200 --size 128``: write the mock set.

``python -m app.data inspect DATA --source dm --targets gas`` prints how a file set pairs and splits.
``python -m app.data figure --out docs/mock_galaxy.png`` draws one mock galaxy and a twin.
"""

from __future__ import annotations

import argparse
import sys

from app.data.catalog import find_files, index_domains, pair_rows, split_by_galaxy
from app.data.mock import MOCK_DOMAINS
from app.data.mock_set import write_mock_set


def main(argv: list[str] | None = None) -> int:
    """Run the ``mock``, ``figure`` or ``inspect`` command on ``argv``; returns the exit code (2 on error)."""
    parser = argparse.ArgumentParser(prog="python -m app.data")
    sub = parser.add_subparsers(dest="command", required=True)
    mock = sub.add_parser("mock", help="write deterministic mock galaxies in the TNG map layout")
    mock.add_argument("--out", required=True, help="an empty or new folder (or an earlier mock set)")
    mock.add_argument("--galaxies", type=int, default=200, help="galaxies per snapshot")
    mock.add_argument("--size", type=int, default=128, help="map side in pixels")
    mock.add_argument("--seed", type=int, default=0)
    mock.add_argument("--snapshots", type=int, nargs="+", default=[99])
    mock.add_argument("--views", type=int, default=4, help="viewing angles per galaxy (first is unrotated)")
    figure = sub.add_parser("figure", help="draw one mock galaxy in six domains, with a twin")
    figure.add_argument("--out", required=True, help="PNG path")
    figure.add_argument("--gid", type=int, default=3)
    inspect = sub.add_parser("inspect", help="index, pair and split a file set")
    inspect.add_argument("data")
    inspect.add_argument("--source", default="dm")
    inspect.add_argument("--targets", nargs="+", default=["gas"])
    inspect.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "mock":
            out = write_mock_set(
                args.out, galaxies=args.galaxies, size=args.size, seed=args.seed,
                snapshots=args.snapshots, views=args.views,
            )  # fmt: skip
            n = args.galaxies * len(args.snapshots) * args.views
            print(f"wrote {n} views x {len(MOCK_DOMAINS)} domains ({', '.join(MOCK_DOMAINS)}) to {out}")
        elif args.command == "figure":
            from app.data.mock_figure import mock_figure

            print(f"wrote {mock_figure(args.out, args.gid)}")
        else:
            files = find_files(args.data)
            rows, report = pair_rows(index_domains(files, [args.source, *args.targets]))
            splits = split_by_galaxy(rows, (0.8, 0.1, 0.1), args.seed)
            print(f"{len(files)} files; {report.summary()}")
            print("split (views): " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
