"""`python -m bench.soundness [-k TEXT]`: the corpus, early verdict against full wait;
`--generated N --seed S`: N generated faults instead (generated.py)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Optional

from corpus.cases import CASES, Case
from corpus.cases6 import CASES6
from corpus.features import first_missing
from nslab import Lab, Result

CORPUS = CASES + CASES6
FAMILIES = ("ipv4", "ipv6")


@dataclass
class Row:
    case: Case
    early: Optional[Result] = None
    truth: Optional[Result] = None
    error: Optional[str] = None

    @property
    def agrees(self) -> bool:
        return self.error is None and self.early.outcome is self.truth.outcome

    @property
    def accurate(self) -> bool:
        if self.error is not None or self.early.cause is not self.case.cause:
            return False
        if self.case.where is None:
            return True
        return self.early.where is not None and self.early.where.ns == self.case.where.ns

    @property
    def as_injected(self) -> bool:
        """Does the full wait show the outcome the case says the kernel gives?"""
        return self.error is None and self.truth.outcome is self.case.outcome


def settle_early_is_a_lab_attribute() -> bool:
    return "settle_early" in vars(Lab())


def probe(case: Case, *, early: bool) -> Result:
    with Lab() as lab:
        lab.settle_early = early
        return case.run(lab)


def verdict(result: Optional[Result], *, where: bool = True, ms: bool = True) -> str:
    if result is None:
        return "-"
    text = f"{result.outcome.value}/{result.cause.name if result.cause else '-'}"
    if where:
        text += f" @{result.where or '-'}"
    if result.reason:
        text += f" [{result.reason}]"
    if ms:
        text += f" {result.elapsed * 1000:.1f}ms"
    return text


def injected(case: Case) -> str:
    return f"{case.outcome.value}/{case.cause.name if case.cause else '-'}" + (f" @{case.where}" if case.where else "")


def print_table(rows: list[Row]) -> None:
    if not rows:
        return
    width = max(len(r.case.name) for r in rows)
    print(f"{'case':<{width}}  {'early verdict (outcome/cause @where [drop reason] ms)':<76}  {'ground truth (full wait)':<60}  agree  cause")
    for r in rows:
        if r.error is not None:
            print(f"{r.case.name:<{width}}  error: {r.error}")
            continue
        print(
            f"{r.case.name:<{width}}  {verdict(r.early):<76}  {verdict(r.truth, where=False):<60}  "
            f"{'yes' if r.agrees else 'NO':<5}  {'ok' if r.accurate else 'WRONG'}"
        )


def print_misses(rows: list[Row]) -> None:
    misses = [r for r in rows if r.error is None and not (r.agrees and r.accurate)]
    if misses:
        print(f"\nmisses ({len(misses)}):")
    for r in misses:
        what = [] if r.agrees else ["outcome differs"]
        what += [] if r.accurate else ["wrong cause or namespace"]
        print(f"- {r.case.name} ({', '.join(what)})")
        print(f"    injected:     {injected(r.case)}: {r.case.why}")
        print(f"    early:        {verdict(r.early)}  {r.early.summary()}")
        print(f"                  {r.early.explanation or '(no explanation)'}")
        print(f"    ground truth: {verdict(r.truth)}  {r.truth.summary()}")
        print(f"                  {r.truth.explanation or '(no explanation)'}")
    unsound = [r for r in rows if r.error is None and not r.as_injected]
    if unsound:
        print(f"\nthe full wait contradicts the corpus ({len(unsound)}): the case is wrong, or the kernel surprised us")
    for r in unsound:
        print(f"- {r.case.name}: the case says {r.case.outcome.value} ({r.case.why}); the full wait gave {r.truth.summary()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soundness", description=__doc__)
    parser.add_argument("-k", metavar="TEXT", default="", help="only the cases whose name contains TEXT")
    parser.add_argument("--generated", type=int, metavar="N", help="N generated cases (one random change each to a catalog lab) instead of the corpus")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="the generated cases' seed (default: %(default)s); the same seed gives the same cases")
    parser.add_argument("--case", type=int, metavar="K", help="run only generated case K of the seed (as a miss's replay line says)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                        help="worker processes for generated cases (default: one per core, %(default)s here: each case's fix search then has the CPU nslab why has)")
    parser.add_argument("--budget", type=float, default=3.0, metavar="S", help="seconds each fix search may take (default: %(default)s, as nslab why)")
    args = parser.parse_args(argv)
    if args.generated is not None or args.case is not None:
        return generated(parser, args)
    cases = [c for c in CORPUS if args.k in c.name]
    if not cases:
        parser.error(f"-k: no case name contains {args.k!r}; names: {', '.join(c.name for c in CORPUS)}")
    if not settle_early_is_a_lab_attribute():
        print("soundness: this nslab's Lab has no settle_early attribute (issue 14), so no probe can wait its full deadline: no ground truth")
        return 2

    started = time.monotonic()
    rows, skipped = [], []
    for case in cases:
        why = first_missing(case.needs)
        if why is not None:
            skipped.append(f"{case.name}: {why}")
            continue
        row = Row(case)
        try:
            row.early = probe(case, early=True)
            row.truth = probe(case, early=False)
        except Exception as exc:  # noqa: BLE001 - one broken case is a row, not the end of the run
            row.error = f"{type(exc).__name__}: {exc}"
        rows.append(row)

    print_table(rows)
    print_misses(rows)
    for line in skipped:
        print(f"skipped {line}")
    print(f"\n{len(rows)} cases, {len(skipped)} skipped, {time.monotonic() - started:.1f} s")
    sound = bool(rows)
    for family in FAMILIES:
        mine = [r for r in rows if r.case.family == family]
        if not mine:
            continue
        line, ok = score(mine, f"soundness {family}")
        print(f"{line} ({len(mine)} of {len(rows)} cases)")
        sound = sound and ok
    return 0 if sound else 1


def score(rows: list[Row], label: str) -> tuple[str, bool]:
    """One family's line, and whether it meets the targets: agreement N/N, accuracy at least 95%, every full wait as the case says."""
    n = len(rows)
    agree = sum(r.agrees for r in rows)
    accurate = sum(r.accurate for r in rows)
    timed = [r.early.elapsed * 1000 for r in rows if r.early is not None]
    median = statistics.median(timed) if timed else float("nan")
    line = f"{label}: outcome agreement {agree}/{n}, cause accuracy {accurate}/{n}, median early verdict {median:.1f} ms"
    return line, agree == n and accurate >= 0.95 * n and all(r.as_injected for r in rows)


def generated(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.k:
        parser.error("-k selects corpus cases; with --generated, replay one case with --case K")
    if args.generated is not None and args.generated < 1:
        parser.error(f"--generated: {args.generated} cases; give 1 or more")
    if args.case is not None and args.case < 0:
        parser.error(f"--case: {args.case}; cases are numbered from 0")
    if args.jobs < 1:
        parser.error(f"--jobs: {args.jobs}; give 1 or more worker processes")
    if args.budget <= 0:
        parser.error(f"--budget: {args.budget:g} s; give a positive number of seconds")
    from bench.soundness import generated_cli

    return generated_cli.main(args.generated or 1, args.seed, args.case, args.jobs, args.budget)


if __name__ == "__main__":
    sys.exit(main())
