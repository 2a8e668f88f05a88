"""`python -m bench [--runs N]`: lab build time and time to a verdict."""

from __future__ import annotations

import argparse

from bench import build, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="repetitions per figure (default 50)")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs: need at least 3 repetitions for a median")
    build.main(args.runs)
    verdicts.main(args.runs)
    return 0


raise SystemExit(main())
