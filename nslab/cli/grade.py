"""`nslab grade EXERCISE SCRIPT...` and `nslab grade EXERCISE --live`.

Exit status: 0 when every submission has full marks, 1 otherwise, 2 for a
usage error or an invalid exercise file.
"""

from __future__ import annotations

import argparse
import os
import sys

from nslab.grading import exercise as exercise_mod
from nslab.grading import jail, scoring


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("exercise", help="an exercise name (see exercises/), directory, or .toml/.json file")
    parser.add_argument("scripts", nargs="*", metavar="SCRIPT", help="student shell scripts, each graded in a fresh sandbox")
    parser.add_argument("--live", action="store_true", help="grade what is built on this machine instead (read-only)")
    parser.add_argument("-j", "--jobs", type=int, default=2, metavar="N", help="grade N submissions at a time (default: 2)")
    parser.add_argument("--json", metavar="FILE", help="also write every result as JSON to FILE")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE (a suite per submission)")
    parser.add_argument("--time-limit", type=float, default=jail.Limits.time, metavar="S", help="seconds a script may run (default: %(default)s)")
    parser.add_argument("--output-limit", type=int, default=jail.Limits.output, metavar="BYTES", help="bytes a script may print (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what was seen for passed checks too")
    parser.add_argument("--fixes", action="store_true", help="for each failed check, the fixes verified on a copy of the namespaces")


def run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        print(f"nslab grade: {problem}", file=sys.stderr)
        return 2
    try:
        exercise = exercise_mod.load(args.exercise)
    except exercise_mod.ExerciseError as exc:
        print(f"nslab grade: invalid exercise: {exc}", file=sys.stderr)
        return 2
    problem = jail.unavailable()
    if problem:
        print(f"nslab grade: {problem}", file=sys.stderr)
        return 2
    from nslab.grading import runner

    note = None
    if args.live:
        grades = [runner.grade_live(exercise, fixes=_fixer(args))]
    else:
        limits = jail.Limits(time=args.time_limit, output=args.output_limit)
        graded = runner.grade_scripts(exercise, args.scripts, jobs=args.jobs, limits=limits, fixes=_fixer(args))
        grades, note = graded.grades, graded.drop_reasons
    for grade in grades:
        print(scoring.text(grade, verbose=args.verbose))
    if len(grades) > 1:
        full = sum(g.full_marks for g in grades)
        print(f"{len(grades)} submissions, {full} with full marks")
    if note and args.verbose:
        print(note)
    if args.json:
        _write(args.json, scoring.to_json(grades))
    if args.junit:
        _write(args.junit, scoring.to_junit(grades))
    return 0 if all(g.full_marks for g in grades) else 1


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.live and args.scripts:
        return "--live grades this machine; give either --live or scripts, not both"
    if not args.live and not args.scripts:
        return "give one or more student scripts to grade, or --live to grade this machine"
    for path in args.scripts:
        if not os.path.isfile(path):
            return f"SCRIPT: {path!r} is not a file"
    if args.jobs < 1:
        return f"--jobs: {args.jobs} must be at least 1"
    if not 0 < args.time_limit <= 600:
        return f"--time-limit: {args.time_limit:g} must be in (0, 600] seconds"
    if args.output_limit < 1:
        return f"--output-limit: {args.output_limit} must be at least 1 byte"
    return None


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _fixer(args: argparse.Namespace):
    """With --fixes, what finds the verified fixes of a failed check (nslab.advice); else None."""
    if not args.fixes:
        return None
    from nslab.advice.fixes import fixes_for

    return lambda result, lab, prefixes: fixes_for(result, lab, prefixes=prefixes)
