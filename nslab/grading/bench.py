"""How long `nslab grade` takes for a class: N submissions of one exercise in one run.

    sudo .venv/bin/python -m nslab.grading.bench                 # 20 bridge submissions, -j 2, 3 runs
    sudo .venv/bin/python -m nslab.grading.bench --mix -n 20     # the samples in turn (mistakes too)

Each run is the whole CLI, end to end (start-up included), on copies of the
exercise's sample solutions; prints every run's wall time and the median.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nslab.grading import exercise as ex


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nslab.grading.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", default="bridge-three-containers")
    parser.add_argument("-n", "--submissions", type=int, default=20)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mix", action="store_true", help="cycle through every sample, not only correct.sh")
    args = parser.parse_args(argv)
    samples = ex.load(args.exercise).path.parent / "samples"  # type: ignore[union-attr]
    sources = sorted(samples.glob("*.sh")) if args.mix else [samples / "correct.sh"]
    with tempfile.TemporaryDirectory() as tmp:
        scripts = []
        for i, src in zip(range(args.submissions), itertools.cycle(sources)):
            dst = Path(tmp) / f"{i:03d}-{src.name}"
            shutil.copy(src, dst)
            scripts.append(str(dst))
        times = []
        for run in range(args.repeat):
            start = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "nslab.cli.main", "grade", args.exercise, *scripts, "-j", str(args.jobs)],
                check=False,
                capture_output=True,
                text=True,
            )
            times.append(time.monotonic() - start)
            summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()
            print(f"run {run + 1}: {times[-1]:.2f} s  ({summary})")
    what = "mixed samples" if args.mix else "correct.sh"
    print(f"{args.submissions} submissions of {args.exercise} ({what}), -j {args.jobs}: median {statistics.median(times):.2f} s over {len(times)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
