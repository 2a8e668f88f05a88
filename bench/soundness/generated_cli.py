"""`./run soundness --generated N --seed S [--case K] [--jobs J]`: N generated cases
(corpus/generated.py), run in J worker processes (each enters a sandbox of its own when
it opens its first lab), a row per case, a replay line per miss, then:

    generated: N cases (seed S), outcome agreement A/N, false claims F, attribution X/Y,
    copy reproduces C/N, verified fix V/Y, median early verdict M ms

(one line; Y is the failing cases), then the same line for each address family's share
(`generated ipv4: ...`, `generated ipv6: ...`). Exits 1 below the targets, overall or in
either family: A = N, F = 0, X >= 90% of Y, C >= 98% of N, V >= 80% of Y, M <= 5 ms; or
when a case could not run.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from typing import Iterator

from corpus.generated import Case, Row, cases, draw, false_claims, run, summary
from nslab.kernel import linux


def rows(todo: list[Case], jobs: int, budget: float) -> Iterator[Row]:
    """Each case's row, in case order; one process per job, each dying with this one."""
    if jobs <= 1:
        yield from (run(c, budget) for c in todo)
        return
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn, initializer=linux.die_with_parent, initargs=(os.getpid(),)) as pool:
        yield from pool.map(run, todo, repeat(budget))


def outcome(value) -> str:
    return value.value if value is not None else "-"


def print_row(r: Row) -> None:
    c = r.case
    probe = f"{c.src}->{c.dst}" + (f":{c.port}" if c.port else "")
    head = f"{c.index:>4} {c.lab:<23} {probe:<36}"
    if r.error is not None:
        print(f"{head} error: {r.error}", flush=True)
        return
    marks = " ".join(
        [
            f"{outcome(r.early):<11}{r.early_ms:>7.1f}ms",
            f"{outcome(r.truth):<11}",
            "agree" if r.agrees else "DIFFER",
            ("attributed" if r.attributed else "not-named") if r.failing else "-",
            "FALSE" if r.false_claim else "",
            "copy" if r.copy_reproduces else "COPY-DIFFERS",
            ("fixed" if r.fixed else "NO-FIX") if r.failing else "",
        ]
    )
    print(f"{head} {marks}  [{c.change.kind}] {c.change}" + (f"  (teardown: {r.teardown})" if r.teardown else ""), flush=True)


def print_miss(r: Row) -> None:
    c = r.case
    print(f"- case {c.index} ({', '.join(r.misses)}): {c.lab}, {c.probe}, changed in {c.change}")
    if r.error is not None:
        print(f"    {r.error}")
    else:
        print(f"    changed object: {' or '.join(c.change.objs)} in {c.change.ns}")
        print(f"    early:  {r.early_text}")
        print(f"    truth:  {r.truth_text}")
        for claim in r.claims:
            wrong = " (FALSE: not the changed object)" if claim in false_claims(c.change, r.claims) else ""
            print(f"    claim:  {claim}{' [blames]' if claim.blames else ''}{wrong}")
        if "copy" in r.misses:
            print(f"    copy:   {'answered' if r.copy_ok else 'failed' if r.copy_ok is not None else 'not built'}; {r.copy_note}")
        if "fix" in r.misses:
            print(f"    fix:    {r.fix + ' (did not fix the lab itself)' if r.fix else 'none'}; {r.fix_note}")
    print(f"    replay: {c.replay()}")


def main(n: int, seed: int, case: int | None, jobs: int, budget: float) -> int:
    todo = [draw(seed, case)] if case is not None else cases(n, seed)
    started = time.monotonic()
    print(f"{len(todo)} generated case{'s' if len(todo) != 1 else ''}, seed {seed}, {jobs} worker{'s' if jobs != 1 else ''}")
    done = []
    for row in rows(todo, min(jobs, len(todo)), budget):
        print_row(row)
        done.append(row)
    missed = [r for r in done if r.misses]
    if missed:
        print(f"\nmisses ({len(missed)}):")
    for r in missed:
        print_miss(r)
    kinds = sorted({r.case.change.kind for r in done})
    by_kind = ", ".join(f"{k} {sum(r.case.change.kind == k for r in done)}" for k in kinds)
    torn = sum(bool(r.teardown) for r in done)
    if torn:
        print(f"\n{torn} lab{'s' if torn != 1 else ''} did not close cleanly (nslab's Lab.close; see the rows): not a score, but say it")
    print(f"\n{len(done)} cases in {time.monotonic() - started:.0f} s ({by_kind}); failing by the full wait: {sum(r.failing for r in done)}")
    line, ok = summary(done, seed)
    print(line)
    for family in sorted({r.case.family for r in done}):
        line, family_ok = summary([r for r in done if r.case.family == family], seed, f"generated {family}")
        print(line)
        ok = ok and family_ok
    return 0 if ok else 1
