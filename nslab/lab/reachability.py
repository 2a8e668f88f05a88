"""A reachability matrix: which pairs must reach each other, which must not, and
what the kernel says, as Kubernetes' network-policy tests and Calico's
connectivity checker state it.

    matrix = Reachability(lab, {"pod1-1": "10.244.1.2", "pod2-1": "10.244.2.2", ...})
    matrix.expect(src=node2_pods, reach=False)            # groups: nothing leaves node2's pods
    matrix.expect(dst=node2_pods, reach=False)            # nor reaches them
    matrix.expect_when(lambda src, dst: ...)              # or a function: True = must reach
    report = matrix.check()
    assert report.ok, report

Every ordered pair is probed at once by an all-pairs sweep (nslab/lab/sweep.py).
On a mismatch the report prints the expected and the observed tables, the
cells that differ and `correct: X, incorrect: Y`; each wrong cell is probed
again with a full `Netns.ping`, so it carries its typed cause, where it
happened and the kernel's explanation, plus one line that reproduces just
that probe. Only wrong cells are probed again, one try each, all within one
deadline (`within`); the report says how long that took and how many it
reached. Rules apply in order, a later one over an earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nslab.lab.sweep import Arp, Sweep, all_pairs
from nslab.model.topology import LabError

if TYPE_CHECKING:
    from nslab.lab.live import Lab
    from nslab.probes.result import Cause, Result, Where

TABLE_UP_TO = 40  # hosts; larger matrices print only the cells that differ
CELLS_SHOWN = 20  # wrong cells printed in full

Rule = Callable[[str, str], bool | None]  # True: must reach, False: must not, None: this rule does not say


@dataclass
class Cell:
    """One ordered pair whose observation differs from its expectation."""

    src: str
    dst: str
    address: str
    expected: bool
    observed: bool
    why: str | None = None  # what the sweep was told at once (an errno, an ICMP error)
    result: Result | None = None  # the full ping of the second look (None: not probed again)
    hint: str | None = None  # what a lab-specific helper adds (e.g. the node route that is missing)

    @property
    def cause(self) -> Cause | None:
        return self.result.cause if self.result is not None else None

    @property
    def where(self) -> Where | None:
        return self.result.where if self.result is not None else None

    def reproduce(self) -> str:
        """One line that runs just this probe again."""
        return f"lab.ns({self.src!r}).ping({self.address!r})    # ip netns exec {self.src} ping -c1 -W1 {self.address}"

    def __str__(self) -> str:
        def verb(reach: bool) -> str:
            return "reach" if reach else "no reach"

        head = f"{self.src} -> {self.dst} ({self.address}): expected {verb(self.expected)}, observed {verb(self.observed)}"
        if self.result is None:
            detail = f"first look: {self.why or 'no reply within the deadline'}; not probed again (the second looks' deadline passed)"
        elif self.result.replied != self.observed:
            detail = f"a second look disagrees: {self.result.outcome.value} (flaky?)"
        elif self.result.replied:
            detail = f"it replies ({self.result.elapsed * 1000:.1f} ms)"
        else:
            cause = self.result.cause.name if self.result.cause is not None else "?"
            detail = f"cause {cause}" + (f" at {self.result.where}" if self.result.where else "") + f": {self.result.explanation}"
        lines = [head, f"    {detail}"] + ([f"    {self.hint}"] if self.hint else []) + [f"    reproduce: {self.reproduce()}"]
        return "\n".join(lines)


@dataclass
class Report:
    """Expected against observed, for every ordered pair of the matrix's hosts."""

    names: list[str]
    expected: Callable[[str, str], bool]
    unreached: set[tuple[str, str]]  # (src, dst name) pairs the sweep saw fail
    sweep: Sweep
    wrong: list[Cell] = field(default_factory=list)
    reprobe_seconds: float = 0.0
    reprobed: int = 0

    @property
    def correct(self) -> int:
        return self.sweep.pairs - self.incorrect

    @property
    def incorrect(self) -> int:
        return len(self.wrong)

    @property
    def ok(self) -> bool:
        return not self.wrong

    def observed(self, src: str, dst: str) -> bool:
        return (src, dst) not in self.unreached

    def table(self, which: Callable[[str, str], str]) -> str:
        """Rows are sources, columns destinations (numbered as the rows)."""
        width = len(str(len(self.names)))
        label = max(map(len, self.names))
        head = " " * (width + label + 2) + " ".join(f"{i:>{width}}" for i in range(1, len(self.names) + 1))
        rows = [
            f"{i:>{width}} {src:<{label}} " + " ".join(f"{'-' if src == dst else which(src, dst):>{width}}" for dst in self.names)
            for i, src in enumerate(self.names, 1)
        ]
        return "\n".join([head, *rows])

    def __str__(self) -> str:
        def mark(yes: bool) -> str:
            return "." if yes else "X"

        summary = f"reachability: correct: {self.correct}, incorrect: {self.incorrect} ({self.sweep.pairs} pairs swept in {self.sweep.elapsed:.1f} s)"
        if self.ok:
            return summary
        parts = [summary]
        if len(self.names) <= TABLE_UP_TO:
            wrong = {(c.src, c.dst) for c in self.wrong}
            parts += [
                "expected (. reaches, X does not):",
                self.table(lambda s, d: mark(self.expected(s, d))),
                "observed:",
                self.table(lambda s, d: mark(self.observed(s, d))),
                "differences (X: observed is not as expected):",
                self.table(lambda s, d: "X" if (s, d) in wrong else "."),
            ]
        parts.append(
            f"wrong cells probed again with a full ping: {self.reprobed} of {self.incorrect}, one try each, in {self.reprobe_seconds:.2f} s"
        )
        parts += [str(c) for c in self.wrong[:CELLS_SHOWN]]
        if self.incorrect > CELLS_SHOWN:
            parts.append(f"... and {self.incorrect - CELLS_SHOWN} more wrong cells")
        return "\n".join(parts)

    __repr__ = __str__


class Reachability:
    """Which of *hosts* (namespace name -> address) must reach which (by default all)."""

    def __init__(self, lab: Lab, hosts: Mapping[str, str], *, default: bool = True):
        if not hosts:
            raise LabError("hosts", "a reachability matrix needs at least one host: {namespace name: address}")
        for name in hosts:
            lab.ns(name)  # one line naming the namespace if the lab has none of that name
        self.lab = lab
        self.hosts = dict(hosts)
        self.default = default
        self._rules: list[Rule] = []

    def expect(self, src: str | Iterable[str] | None = None, dst: str | Iterable[str] | None = None, *, reach: bool) -> "Reachability":
        """From every host of *src* (None: all) to every host of *dst* (None: all), *reach* or not."""
        froms, tos = self._group(src, "src"), self._group(dst, "dst")
        self._rules.append(lambda s, d: reach if (froms is None or s in froms) and (tos is None or d in tos) else None)
        return self

    def expect_when(self, rule: Rule) -> "Reachability":
        """*rule(src, dst)* says, for every pair, whether it must reach (True) or must not (False)."""
        self._rules.append(rule)
        return self

    def expected(self, src: str, dst: str) -> bool:
        verdict = self.default
        for rule in self._rules:
            said = rule(src, dst)
            if said is not None:
                verdict = bool(said)
        return verdict

    def check(self, *, timeout: float = 1.0, within: float = 10.0, hint: Callable[[Lab, Result], str | None] | None = None, arp: Arp = "auto") -> Report:
        """Sweep every ordered pair, compare, probe the wrong cells again (all within
        *within* seconds); *hint(lab, result)* may add a line to each wrong cell."""
        names = list(self.hosts)
        by_address = {address: name for name, address in self.hosts.items()}
        sweep = all_pairs({self.lab.ns(name): address for name, address in self.hosts.items()}, timeout=timeout, explain=0, arp=arp)
        unreached = {(src, by_address[dst]) for src, dst in sweep.failures}
        report = Report(names, self.expected, unreached, sweep)
        for src in names:
            for dst in names:
                if src != dst and self.expected(src, dst) != report.observed(src, dst):
                    why = sweep.why.get((src, self.hosts[dst]))
                    sender = self.lab.owner_of(why.rsplit(" from ", 1)[1]) if why and " from " in why else None
                    why = f"{why} ({sender.name})" if sender is not None else why
                    report.wrong.append(Cell(src, dst, self.hosts[dst], self.expected(src, dst), report.observed(src, dst), why))
        start = time.monotonic()
        for cell in report.wrong:
            left = within - (time.monotonic() - start)
            if left <= 0:
                break
            sender_ns = self.lab.ns(cell.src)
            sender_ns.flush_neighbours()  # afresh: an entry the sweep left would hold back the evidence of ARP
            cell.result = sender_ns.ping(cell.address, timeout=min(timeout, left))
            report.reprobed += 1
            if hint is not None and not cell.result.replied:
                cell.hint = hint(self.lab, cell.result)
        report.reprobe_seconds = time.monotonic() - start
        return report

    def assert_ok(self, *, timeout: float = 1.0, within: float = 10.0, hint: Callable[[Lab, Result], str | None] | None = None, arp: Arp = "auto") -> Report:
        """`check()`, failing with the whole report when a cell is wrong."""
        __tracebackhide__ = True
        report = self.check(timeout=timeout, within=within, hint=hint, arp=arp)
        if not report.ok:
            raise AssertionError(str(report))
        return report

    def _group(self, group: str | Iterable[str] | None, where: str) -> set[str] | None:
        if group is None:
            return None
        names = {group} if isinstance(group, str) else set(group)
        unknown = sorted(names - set(self.hosts))
        if unknown:
            raise LabError(where, f"{unknown} are not hosts of this matrix; its hosts: {sorted(self.hosts)[:10]}{' ...' if len(self.hosts) > 10 else ''}")
        return names


__all__ = ["Cell", "Reachability", "Report"]
