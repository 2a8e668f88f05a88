"""`nslab clean`: remove what a killed nslab run left behind (and only that),
as nslab/kernel/leftovers.py finds it."""

from __future__ import annotations

import argparse

from nslab.kernel import leftovers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")


def run(args: argparse.Namespace) -> int:
    items = leftovers.find() if args.dry_run else leftovers.sweep()
    verb = "would remove" if args.dry_run else "removed"
    for item in items:
        print(f"{verb} {item}")
    if not items:
        print("nothing left behind by dead nslab runs")
    return 0
