"""`./run stress [--runs 50] [--suite PATH ...]`: a suite, again and again, with
`./run tests`'s four workers (`-n 4`), in random order; counts failing runs, leaks (the host's network state
changed, or a process of a run outlived it) and runs whose skips changed, and
prints the median suite time.

    ./run stress --runs 30                                  # scenarios/
    ./run stress --runs 30 --suite tests/                   # what ./run tests runs
    ./run stress --runs 5 -k veth                           # extra arguments go to pytest

Each run gets its own random order (`--randomly-seed=N`, printed, so a failing
order can be replayed) and its own reports directory; a failing run's output
and reports are kept under reports/stress/run-N/, which is emptied at the start.
A run that skips a different number of tests than the first run that passed
counts as failed: a skip can hide a broken probe as well as a failure can.

The target is 0 failures, 0 leaks and no change in skips.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nslab.kernel import leftovers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "stress"


WORKERS = "4"  # as ./run tests: on two cores a test waits for the kernel more than it computes
GRACE = 5.0  # seconds a dead run's processes may take to finish exiting (bpftrace detaches its probes as it dies)


def processes_left_after(grace: float) -> list[str]:
    """Processes of ended runs still alive *grace* seconds from now (polled: a process
    that is exiting is not a leak; one still there at the deadline is)."""
    deadline, pause = time.monotonic() + grace, 0.01
    while True:
        left = [str(item) for item in leftovers.find() if item.kind == "process"]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(pause)  # a poll with a deadline, not a wait for the kernel to be done
        pause = min(pause * 2, 0.5)


def host_state() -> str:
    """The host's network state; raises if it cannot be read (an empty snapshot would compare equal)."""
    return "".join(
        subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        for argv in (["ip", "netns", "list"], ["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"])
    )


def counts(reports: Path) -> dict[str, int]:
    """The run's outcome counts from its summary.json (empty if it wrote none)."""
    try:
        return json.loads((reports / "summary.json").read_text()).get("counts", {})
    except (OSError, ValueError):
        return {}


def main() -> int:
    parser = argparse.ArgumentParser(prog="./run stress", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--suite", action="append", metavar="PATH", help="test paths, repeatable (default: scenarios/)")
    parser.add_argument("--seed", type=int, help="seed of the per-run orders (default: from the clock; printed)")
    args, pytest_args = parser.parse_known_args()
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: must be at least 1")
    suite = args.suite or ["scenarios/"]
    for path in suite:
        if not (ROOT / path).exists():
            parser.error(f"--suite {path!r}: no such path under {ROOT}")
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000
    rng = random.Random(seed)
    shutil.rmtree(OUT, ignore_errors=True)  # failing runs of an earlier stress
    OUT.mkdir(parents=True)
    print(f"stress: {args.runs} runs of {' '.join(suite)} under -n {WORKERS} in random order (--seed {seed})", flush=True)
    def in_order(order: int) -> list[str]:
        """The suite under WORKERS workers, in the random order *order* (replayable)."""
        return [sys.executable, "-m", "pytest", *suite, "-n", WORKERS, "--dist", "worksteal", "-p", "randomly", f"--randomly-seed={order}"]

    before = host_state()
    times: list[float] = []
    failures, leaks, skips = [], [], []
    clean_skips: int | None = None
    for i in range(1, args.runs + 1):
        order = rng.randrange(1, 2**31)
        reports = OUT / f"run-{i}"
        argv = [*in_order(order), "-q", "-p", "no:cacheprovider", f"--nslab-reports={reports}", *pytest_args]
        start = time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        times.append(time.monotonic() - start)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
        skipped = counts(reports).get("skipped", 0)
        keep = done.returncode != 0
        if done.returncode != 0:
            failures.append((i, order, summary))
        elif clean_skips is None:
            clean_skips = skipped
        elif skipped != clean_skips:
            skips.append((i, order, skipped))
            keep = True
        left = processes_left_after(GRACE)
        if host_state() != before or left:
            leaks.append((i, left or ["host network state changed"]))
        if keep:
            (reports / "output.txt").write_text(f"$ {shlex.join(argv)}\n\n{done.stdout}{done.stderr}")
        else:
            shutil.rmtree(reports, ignore_errors=True)
        print(f"run {i:2}/{args.runs}: {times[-1]:6.1f} s  {skipped} skipped  {summary}", flush=True)

    def replay(order: int) -> str:
        return shlex.join([*in_order(order), *pytest_args])

    print(f"\n{args.runs} runs, {len(failures)} failed, {len(leaks)} leaked, {len(skips)} with changed skips "
          f"(clean run: {clean_skips if clean_skips is not None else '-'} skipped), median suite time {statistics.median(times):.1f} s")
    for i, order, summary in failures:
        print(f"  run {i} failed: {summary}; output in reports/stress/run-{i}/; replay: {replay(order)}")
    for i, order, skipped in skips:
        print(f"  run {i} skipped {skipped}, the first passing run {clean_skips}; output in reports/stress/run-{i}/; replay: {replay(order)}")
    for i, what in leaks:
        print(f"  run {i} leaked: {'; '.join(what)}")
    if not os.listdir(OUT):
        OUT.rmdir()
    return 1 if failures or leaks or skips else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
