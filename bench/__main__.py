"""`python -m bench [--runs N]`: whole-process startup, lab build time, time to a verdict.
`python -m bench --scale`: labs of 10 to 1000 containers and a 10-node cluster instead (bench/scale.py).
`python -m bench --grading [--repeat N]`: a class of 200 submissions graded by `nslab grade` instead (bench/grading.py)."""

from __future__ import annotations

import argparse
import sys

from bench import build, startup, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="repetitions per figure (default 50)")
    parser.add_argument("--scale", action="store_true", help="only the scale table: build, all-pairs sweep, teardown, memory (a few minutes)")
    parser.add_argument("--grading", action="store_true", help="only grading a class: 200 generated submissions, at most 30 s on 2 cores")
    argv = sys.argv[1:]
    if "--grading" in argv:  # the rest are its own options (--repeat, -j, --help)
        from bench import grading

        return grading.main([a for a in argv if a != "--grading"])
    args = parser.parse_args(argv)
    if args.scale:
        from bench import scale

        return scale.main()
    if args.runs < 3:
        parser.error("--runs: need at least 3 repetitions for a median")
    # Whole processes first, before this process starts its own drop monitor (a
    # bpftrace child that would share the CPU with the processes being timed).
    startup.main(max(10, args.runs // 5))
    build.main(args.runs)
    verdicts.main(args.runs)
    return 0


raise SystemExit(main())
