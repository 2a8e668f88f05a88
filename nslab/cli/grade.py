"""`nslab grade EXERCISE SCRIPT...`, `nslab grade EXERCISE submissions/` and `nslab grade EXERCISE --live`.

A directory is a class: each file in it is a student, its stem the student's
id. Then (or with --out) the outputs go under --out (default ./grades/):
gradebook.csv, a feedback page per student and the class summary, index.html.

Exit status: 0 when every submission has full marks, 1 otherwise, 2 for a
usage error or an invalid exercise file.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nslab.grading import exercise as exercise_mod
from nslab.grading import gradebook, jail, pages, scoring

DEFAULT_OUT = "grades"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("exercise", help="an exercise name (see exercises/), directory, or .toml/.json file")
    parser.add_argument(
        "scripts", nargs="*", metavar="SCRIPT", help="student shell scripts, or a directory of them (a class: each file a student, its stem the id)"
    )
    parser.add_argument("--live", action="store_true", help="grade what is built on this machine instead (read-only)")
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="run N scripts at a time, each in its jail (a script mostly waits for the kernel); two graders per script check what they left (default: two per core)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every result as JSON to FILE")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE (a suite per submission)")
    parser.add_argument("--out", metavar="DIR", help=f"write gradebook.csv, a feedback page per student and index.html (the class summary) to DIR (default for a directory: ./{DEFAULT_OUT}/)")
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
        scripts, is_class = _expand(args.scripts)
    except ValueError as exc:
        print(f"nslab grade: SCRIPT: {exc}", file=sys.stderr)
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

    out = args.out or (DEFAULT_OUT if is_class else None)
    note = None
    if args.live:
        grades = [runner.grade_live(exercise, fixes=_fixer(args))]
    else:
        limits = jail.Limits(time=args.time_limit, output=args.output_limit)
        graded = runner.grade_scripts(exercise, scripts, jobs=args.jobs, limits=limits, fixes=_fixer(args), draw=_drawer() if out else None)
        grades, note = graded.grades, graded.drop_reasons
    for grade in grades:
        if is_class and not args.verbose:
            print(f"{gradebook.student_id(grade.submission)}: {grade.score}/{grade.total}" + (f" (graded zero: {grade.reason})" if grade.reason else ""))
        else:
            print(scoring.text(grade, verbose=args.verbose))
    if len(grades) > 1:
        full = sum(g.full_marks for g in grades)
        print(f"{len(grades)} submissions, {full} with full marks")
    if note and (args.verbose or out):
        print(note)
    if args.json:
        _write(args.json, scoring.to_json(grades))
    if args.junit:
        _write(args.junit, scoring.to_junit(grades))
    if out:
        _write_class(Path(out), exercise, grades, note or "", args.jobs or len(os.sched_getaffinity(0)))
        print(f"gradebook: {Path(out) / 'gradebook.csv'}; feedback: {len(grades)} pages; class summary: {Path(out) / pages.SUMMARY}")
    return 0 if all(g.full_marks for g in grades) else 1


def _expand(paths: list[str]) -> tuple[list[str], bool]:
    """The scripts to grade (a directory's files in name order), and whether a directory was given."""
    scripts, is_class = [], False
    for p in paths:
        if os.path.isdir(p):
            is_class = True
            scripts += [str(f) for f in gradebook.submissions(Path(p))]
        else:
            scripts.append(p)
    if paths and not scripts:
        raise ValueError(f"{paths[0]!r} holds no submission (each regular file in it is one)")
    return scripts, is_class


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.live and args.scripts:
        return "--live grades this machine; give either --live or scripts, not both"
    if not args.live and not args.scripts:
        return "give one or more student scripts (or a directory of them) to grade, or --live to grade this machine"
    for path in args.scripts:
        if not os.path.isfile(path) and not os.path.isdir(path):
            return f"SCRIPT: {path!r} is neither a file nor a directory"
    if args.live and args.out:
        return "--out: writes a class's gradebook and pages; grade scripts or a directory with it, not --live"
    if args.jobs is not None and args.jobs < 1:
        return f"--jobs: {args.jobs} must be at least 1"
    if not 0 < args.time_limit <= 600:
        return f"--time-limit: {args.time_limit:g} must be in (0, 600] seconds"
    if args.output_limit < 1:
        return f"--output-limit: {args.output_limit} must be at least 1 byte"
    return None


def _write(path: str | Path, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _write_class(out: Path, exercise: exercise_mod.Exercise, grades: list[scoring.Grade], note: str, jobs: int) -> None:
    """gradebook.csv, a page per student, index.html; each distinct diagram drawn once, *jobs* at a time."""
    svg_of = _svg_renderer({r.path for g in grades for r in g.checks if r.path}, jobs)
    _write(out / "gradebook.csv", gradebook.csv_text(exercise, grades))
    for g in grades:
        _write(out / gradebook.page_name(gradebook.student_id(g.submission)), pages.student_page(exercise, g, svg_of))
    _write(out / pages.SUMMARY, pages.summary_page(exercise, grades, note))


def _svg_renderer(sources: set[str], jobs: int):
    """DOT -> inline SVG for each source (drawn by Graphviz in parallel, once per distinct source)."""
    from html import escape

    from nslab.views.render import DiagramUnavailable, inline_svg

    def draw(source: str) -> str:
        try:
            return inline_svg(None, source=source)  # type: ignore[arg-type]
        except DiagramUnavailable as exc:
            return f'<p class="note">No diagram: {escape(str(exc))}</p>'

    ordered = sorted(sources)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        drawn = dict(zip(ordered, pool.map(draw, ordered)))
    return lambda source: drawn.get(source) or draw(source)


def _drawer():
    """What draws a failed probe's way on the lab the grader read (nslab.advice.path), as DOT."""
    from nslab.advice.path import overlay
    from nslab.views.render import to_dot

    return lambda result, lab: overlay(to_dot(lab.topology), result)


def _fixer(args: argparse.Namespace):
    """With --fixes, what finds the verified fixes of a failed check (nslab.advice); else None."""
    if not args.fixes:
        return None
    from nslab.advice.fixes import fixes_for

    return lambda result, lab, prefixes: fixes_for(result, lab, prefixes=prefixes)
