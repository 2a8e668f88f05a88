"""`./run bench --grading`: a class of 200 graded in one `nslab grade EXERCISE DIR` run.

The class is generated from the exercise's samples: the correct solution and
each typical mistake in turn, and a few hostile submissions (a fork bomb, an
endless loop, a huge output, a script that tries to enter the host's network
namespace). The whole CLI runs end to end (start-up included) with its default
jobs (two scripts at a time per core); the bench then checks what it wrote:
every student's score is the one samples/expected.toml states (hostile ones
zero), gradebook.csv has a row per student and a column per check, and there
are 200 feedback pages and the class summary. Prints each run's wall time, its CPU time (user and
system, over the whole process tree: less affected than wall time by what else
runs on the machine) and the load average before it, then the medians; the
target is at most 30 s on 2 cores.

    ./run bench --grading [--submissions 200] [--repeat 1] [--exercise bridge-three-containers]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from nslab.grading import exercise as ex

HOSTILE = ex.EXERCISES / "veth-two-namespaces" / "samples" / "hostile"
HOSTILE_SAMPLES = ("fork-bomb", "infinite-loop", "output-flood", "enter-host-netns")
TARGET = 30.0  # seconds for 200 submissions on 2 cores


def make_class(exercise: str, n: int, directory: Path) -> dict[str, int]:
    """*n* submissions in *directory* (hostile ones spread through the class); student id -> expected score."""
    samples = ex.load(exercise).path.parent / "samples"  # type: ignore[union-attr]
    expected = tomllib.loads((samples / "expected.toml").read_text())
    ordinary = [(samples / f"{name}.sh", want["score"]) for name, want in expected.items()]
    hostile = [(HOSTILE / f"{name}.sh", 0) for name in HOSTILE_SAMPLES]
    spacing = max(1, n // (len(hostile) + 1))
    scores, plain = {}, itertools.cycle(ordinary)
    for i in range(n):
        k = i // spacing - 1
        src, score = hostile[k] if i % spacing == 0 and 0 <= k < len(hostile) else next(plain)
        sid = f"student{i + 1:03d}"
        shutil.copy(src, directory / f"{sid}.sh")
        scores[sid] = score
    return scores


def check_outputs(out: Path, exercise: str, scores: dict[str, int]) -> list[str]:
    """What is wrong with the run's outputs ([] when nothing is)."""
    problems = []
    checks = [c.id for c in ex.load(exercise).checks]
    with open(out / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != ["id", "total", "maximum", *checks]:
        problems.append(f"gradebook.csv columns: {rows[0][:5]}...")
    got = {row[0]: int(row[1]) for row in rows[1:]}
    wrong = {sid: (got.get(sid), want) for sid, want in scores.items() if got.get(sid) != want}
    if wrong:
        reasons = {Path(g["submission"]).stem: g["reason"] for g in json.loads((out / "grades.json").read_text())["submissions"]}
        shown = {sid: (*pair, reasons.get(sid)) for sid, pair in list(wrong.items())[:5]}
        problems.append(f"{len(wrong)} scores differ from expected.toml (got, want, why): {shown}")
    pages = list(out.glob("student-*.html"))
    if len(pages) != len(scores):
        problems.append(f"{len(pages)} feedback pages for {len(scores)} students")
    if not (out / "index.html").is_file():
        problems.append("no class summary (index.html)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run bench --grading", description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", default="bridge-three-containers")
    parser.add_argument("-n", "--submissions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("-j", "--jobs", type=int, help="scripts at a time (default: nslab grade's, two per core)")
    args = parser.parse_args(argv)
    times, cpus, failed = [], [], False
    with tempfile.TemporaryDirectory(prefix="nslab-bench-grading-") as tmp:
        submissions = Path(tmp) / "submissions"
        submissions.mkdir()
        scores = make_class(args.exercise, args.submissions, submissions)
        for run in range(args.repeat):
            out = Path(tmp) / f"grades-{run}"
            load = os.getloadavg()
            used = _children_cpu()
            start = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "nslab.cli.main", "grade", args.exercise, str(submissions), "--out", str(out), "--json", str(out / "grades.json"), *(["-j", str(args.jobs)] if args.jobs else [])],
                check=False,
                capture_output=True,
                text=True,
            )
            times.append(time.monotonic() - start)
            cpus.append(_children_cpu() - used)
            lines = proc.stdout.strip().splitlines()
            problems = check_outputs(out, args.exercise, scores) if proc.returncode in (0, 1) else [f"exit status {proc.returncode}: {proc.stderr.strip()[-300:]}"]
            failed |= bool(problems)
            note = next((line for line in lines if line.startswith("drop reasons:")), "")
            print(f"run {run + 1}: {times[-1]:.2f} s, CPU {cpus[-1]:.1f} s, load before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  ({lines[-3] if len(lines) >= 3 else ''}; {note})")
            for p in problems:
                print(f"  PROBLEM: {p}")
    median = statistics.median(times)
    verdict = "within" if median <= TARGET else "OVER"
    print(
        f"{args.submissions} submissions of {args.exercise} (correct, each typical mistake, {len(HOSTILE_SAMPLES)} hostile): "
        f"median {median:.2f} s (CPU {statistics.median(cpus):.1f} s) over {len(times)} runs, {verdict} the {TARGET:g} s target"
    )
    return 1 if failed or median > TARGET else 0


def _children_cpu() -> float:
    """User and system CPU seconds of this process's ended children and all they waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


if __name__ == "__main__":
    sys.exit(main())
