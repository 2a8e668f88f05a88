"""`./run stress [--runs 50]`: the whole scenario suite, again and again, under
`-n 2` in random order; counts failing runs and leaks (the host's network state
changed, or a process of a run outlived it), and prints the median suite time.

The target is 0 failures and 0 leaks.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nslab.kernel import leftovers

ROOT = Path(__file__).resolve().parent.parent


def host_state() -> str:
    return "".join(
        subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        for argv in (["ip", "netns", "list"], ["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"])
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="stress", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, e.g. -k veth")
    args = parser.parse_args()
    before = host_state()
    times, failures, leaks = [], [], []
    for i in range(1, args.runs + 1):
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "scenarios/", "-n", "2", "-q", "-p", "randomly", "-p", "no:cacheprovider", *args.pytest_args],
            cwd=ROOT, capture_output=True, text=True,
        )
        times.append(time.monotonic() - start)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
        seed = re.search(r"randomly-seed=(\d+)", done.stdout)
        if done.returncode != 0:
            failures.append((i, seed.group(1) if seed else "?", summary))
            log = ROOT / "reports" / "stress" / f"run-{i}.txt"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(done.stdout + done.stderr)
        left = [str(item) for item in leftovers.find() if item.kind == "process"]
        if host_state() != before or left:
            leaks.append((i, left or ["host network state changed"]))
        print(f"run {i:2}/{args.runs}: {times[-1]:6.1f} s  {summary}", flush=True)
    print(f"\n{args.runs} runs, {len(failures)} failed, {len(leaks)} leaked, median suite time {statistics.median(times):.1f} s")
    for i, seed, summary in failures:
        print(f"  run {i} failed (-p randomly -p 'randomly_seed={seed}'): {summary}; output in reports/stress/run-{i}.txt")
    for i, what in leaks:
        print(f"  run {i} leaked: {'; '.join(what)}")
    return 1 if failures or leaks else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
