"""``python -m validation compare RUN_DIR [RUN_DIR ...] --out DIR``: compare report folders."""

from __future__ import annotations

import argparse
import sys

from validation.report import compare_reports


def main(argv: list[str] | None = None) -> int:
    """Run ``compare`` on ``argv`` and print the index path; returns the exit code (2 on a ValueError)."""
    p = argparse.ArgumentParser(prog="python -m validation")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="one table and overlaid curves for several report folders")
    c.add_argument("runs", nargs="+")
    c.add_argument("--out", required=True)
    c.add_argument("--title", default="Comparison")
    args = p.parse_args(argv)
    try:
        print(compare_reports(args.runs, args.out, args.title))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
