"""Generated cases: a catalog lab, one of its checks (a ping, or a TCP connect to a
listener the case starts), and one random change (knobs.py, firewall.py); run
in the lab, then scored.

Case K of seed S is drawn from `random.Random(f"{S}:{K}")` and the catalog's
model alone, so the same seed gives the same cases, and one case replays alone.

One lab per case, in this order: build; the probe must succeed (a case needs a
probe that works before the change); the change, and a read that shows the
kernel took it; the early verdict (the default); the full wait
(`lab.settle_early = False`) on the same changed lab, the truth. Before each of
the two probes the learnt neighbours are flushed (`ip neigh flush all` in each
namespace, as if they had expired), so both meet the same state: else the
first probe's ARP answers would change the second's path (a packet sent while
its neighbour resolves is dropped later, one sent to a known neighbour fails
in sendmsg), and an ARP change would meet entries the check before the change
left. What else the early probe leaves (conntrack entries of its own echo id
or client port) no later probe matches. One lab rather than two: the truth is
measured on the very state the early verdict was given on. Then the copy `nslab why`'s fix search builds of the changed lab, and, for
a failure, that search's first verified fix applied to the changed lab itself.
"""

from __future__ import annotations

import dataclasses
import random
import re
import shlex
import socket
import statistics
from dataclasses import dataclass
from typing import Optional

from corpus import firewall, knobs, twin6
from corpus.knobs import Change, Kind, Where
from nslab import Lab, Outcome
from nslab.advice.copy import read_state
from nslab.advice.fixes import find, fix_line
from nslab.advice.trials import Probe, search
from nslab.lab.live import wait_ready
from nslab.model.queries import owner_of
from nslab.probes.result import Claim, Result
from nslab.tutorials.catalog import LABS

UP_WITHIN = 2.0  # s: how long a fixed link may take to come up
PORT = 8080  # a TCP case's listener, in the namespace that holds the destination
TCP_SHARE = 0.25
# The address family of a case, drawn by weight. An IPv6 case runs in the lab's dual-stack twin
# (twin6.py), aims at the twin of its check's address, and the knobs draw net.ipv6 sysctls,
# ip -6 routes and rules, ip6/inet nft and ip6tables rules for it. A lab without a twin runs
# the IPv4 case instead: with one lab in five so, half the draws give IPv6 about 40% of the cases.
FAMILIES = {"ipv4": 1.0, "ipv6": 1.0}
KINDS: dict[str, tuple[Kind, int]] = {  # name -> (draw, weight)
    "sysctl": (knobs.sysctl, 5),
    "route": (knobs.route_type, 3),
    "route-del": (knobs.route_del, 1),
    "rule": (knobs.rule, 2),
    "nft": (firewall.nft, 4),
    "iptables": (firewall.iptables, 2),
    "bridge-port": (knobs.bridge_port, 2),
    "bridge": (knobs.bridge, 1),
    "link": (knobs.link, 3),
    "address": (knobs.address, 1),
    "neigh": (knobs.neighbour, 1),
    "listener": (knobs.listener, 2),
}


@dataclass(frozen=True)
class Case:
    index: int
    seed: int
    lab: str  # a catalog lab (nslab/tutorials/catalog.py)
    src: str
    dst: str
    port: Optional[int]  # None: a ping
    family: str
    change: Change

    @property
    def probe(self) -> Probe:
        return Probe("tcp", self.src, self.dst, self.port) if self.port else Probe("ping", self.src, self.dst)

    def replay(self) -> str:
        return f"./run soundness --generated 1 --seed {self.seed} --case {self.index}"


def where(lab: str, src: str, dst: str, port: Optional[int], family: str = "ipv4") -> Where:
    topo = twin6.topology(lab, family)
    owner = src if dst in ("127.0.0.1", "::1") else owner_of(topo, dst) or src
    return Where(topo, src, dst, owner, port, knobs.path(topo, src, owner), family)


def draw(seed: int, index: int) -> Case:
    """Case *index* of *seed*: lab by round robin, then check, probe kind and change at random."""
    rng = random.Random(f"{seed}:{index}")
    names = sorted(LABS)
    lab = names[index % len(names)]
    family = rng.choices(list(FAMILIES), weights=list(FAMILIES.values()))[0]
    if lab not in twin6.TWINS:
        family = "ipv4"
    check = rng.choice(LABS[lab].checks)
    port = PORT if rng.random() < TCP_SHARE else None
    dst = twin6.destination(lab, family, check.dst)
    w = where(lab, check.src, dst, port, family)
    kinds = list(KINDS)
    while True:
        kind = rng.choices(kinds, weights=[KINDS[k][1] for k in kinds])[0]
        change = KINDS[kind][0](w, rng)
        if change is not None:
            return Case(index, seed, lab, check.src, dst, port, family, change)


def cases(n: int, seed: int) -> list[Case]:
    return [draw(seed, i) for i in range(n)]


# -- in a lab ---------------------------------------------------------------------------
class NotApplied(RuntimeError):
    """The change was refused, or the kernel does not show it."""


def apply(lab: Lab, change: Change, listener: Optional[socket.socket] = None, port: Optional[int] = None) -> None:
    """Make *change* in *lab* (moving *listener*, the probe's, for a listener change) and check the kernel shows it."""
    ns = lab.ns(change.ns)
    if change.listen is not None:
        if listener is None:
            raise NotApplied(f"{change}: the case has no listener to move")
        listener.close()
        ns.listen(port or PORT, change.listen)
    for argv in change.commands:
        done = ns.run(list(argv), timeout=10)
        if done.returncode != 0:
            raise NotApplied(f"{shlex.join(argv)} in {change.ns}: {done.stderr.decode(errors='replace').strip() or f'exit {done.returncode}'}")
    shown = shows(lab, change)
    if shown is not None:
        raise NotApplied(shown)


def shows(lab: Lab, change: Change) -> Optional[str]:
    """None when the kernel shows *change*; else what it showed instead."""
    done = lab.ns(change.ns).run(list(change.shown_by), timeout=10)
    out = done.stdout.decode(errors="replace")
    if (re.search(change.shows, out, re.MULTILINE) is not None) != change.gone:
        return None
    return f"{shlex.join(change.shown_by)} in {change.ns} {'still shows' if change.gone else 'does not show'} /{change.shows}/: {out.strip()[:300]!r}"


# -- a case's row -----------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """What one case showed, as plain data (it crosses from a worker process)."""

    case: Case
    error: Optional[str] = None  # the case could not be run (probe failed before the change, change refused)
    early: Optional[Outcome] = None
    early_text: str = ""
    early_ms: float = 0.0
    claims: tuple[Claim, ...] = ()
    truth: Optional[Outcome] = None
    truth_text: str = ""
    copy_ok: Optional[bool] = None  # the copy's probe succeeded (None: no copy was built)
    copy_outcome: Optional[str] = None  # the copy's outcome (reply, timeout, icmp error, refused, local error)
    copy_note: str = ""
    fix: str = ""  # the first verified fix, as typed
    fixed: bool = False  # that fix, applied to the changed lab, made the probe succeed
    fix_note: str = ""
    teardown: str = ""  # the lab did not close cleanly (the kernel's words); the scores stand

    @property
    def failing(self) -> bool:
        return self.error is None and self.truth is not Outcome.REPLY

    @property
    def agrees(self) -> bool:
        return self.error is None and self.early is self.truth

    @property
    def attributed(self) -> bool:
        return self.failing and attributed(self.case.change, self.claims)

    @property
    def false_claim(self) -> bool:
        return self.failing and bool(false_claims(self.case.change, self.claims))

    @property
    def copy_reproduces(self) -> bool:
        if self.error is not None or self.copy_ok is None:
            return False
        if self.copy_outcome is not None and self.truth is not None:
            return self.copy_outcome == self.truth.value
        return self.copy_ok == (self.truth is Outcome.REPLY)

    @property
    def misses(self) -> list[str]:
        if self.error is not None:
            return ["error"]
        out = [] if self.agrees else ["outcome"]
        out += [] if self.copy_reproduces else ["copy"]
        if self.failing:
            out += ([] if self.attributed else ["attribution"]) + (["false claim"] if self.false_claim else []) + ([] if self.fixed else ["fix"])
        return out


def names(change: Change, claim: Claim) -> bool:
    """Does *claim* name the changed object (its namespace, and its key as Claim.obj spells it)?"""
    return claim.ns == change.ns and claim.obj in change.objs


def attributed(change: Change, claims: tuple[Claim, ...]) -> bool:
    return any(c.blames and names(change, c) for c in claims)


def false_claims(change: Change, claims: tuple[Claim, ...]) -> list[Claim]:
    """The claims that blame an object the change did not touch."""
    return [c for c in claims if c.blames and not names(change, c)]


def run(case: Case, budget: float = 3.0) -> Row:
    """Run *case* in a lab of its own (in this process's sandbox) and return its row.
    A lab that fails to close is said on the row (`teardown`); the row keeps its scores."""
    lab = Lab(twin6.topology(case.lab, case.family))
    try:
        row = in_lab(case, lab.open(), budget)
    except Exception as exc:  # noqa: BLE001 - one broken case is a row, not the end of the run
        row = Row(case, error=f"{type(exc).__name__}: {exc}")
    try:
        lab.close()
    except Exception as exc:  # noqa: BLE001 - said on the row
        row = dataclasses.replace(row, teardown=f"{type(exc).__name__}: {exc}")
    return row


def in_lab(case: Case, lab: Lab, budget: float) -> Row:
    w = where(case.lab, case.src, case.dst, case.port, case.family)
    probe = case.probe
    for ns in lab.namespaces:  # as the corpus does (labs.py): a TCP socket orphaned on a cut path lets its namespace go within a second
        ns.set_sysctl("net.ipv4.tcp_orphan_retries", 1)
    listener = lab.ns(w.owner).listen(case.port, "::" if w.v6 else "0.0.0.0") if case.port else None
    before = probe.run(lab)
    if not before.ok:
        return Row(case, error=f"before the change the probe failed: {before}")
    try:
        apply(lab, case.change, listener, case.port)
    except NotApplied as exc:
        return Row(case, error=f"the change did not apply: {exc}")
    early = probe.run(forgetting(lab))
    lab.settle_early = False
    truth = probe.run(forgetting(lab))
    lab.settle_early = True
    return scored(case, lab, early, truth, budget)


def forgetting(lab: Lab) -> Lab:
    """*lab* with its learnt neighbours flushed (`ip neigh flush all` in each namespace)."""
    for ns in lab.namespaces:
        ns.flush_neighbours()
    return lab


def scored(case: Case, lab: Lab, early: Result, truth: Result, budget: float) -> Row:
    row = dict(
        early=early.outcome,
        early_text=f"{early.summary()}" + (f" -- {early.explanation}" if early.explanation else ""),
        early_ms=early.elapsed * 1000,
        claims=early.claims,
        truth=truth.outcome,
        truth_text=truth.summary(),
    )
    verdict, note = None, ""
    if not truth.ok:
        found = find(early, lab, budget=budget)
        verdict, note = found.verdict, found.note or ""
        row.update(fix_note=note)
        if found.fixes:
            row.update(fix=fix_line(found.fixes[0].changes, None), fixed=fixed(case, lab, found.fixes[0].changes))
    if verdict is None:
        verdict, note = copied(case, lab)
    return Row(case, copy_ok=verdict["ok"] if verdict else None, copy_outcome=verdict.get("outcome") if verdict else None, copy_note=note, **row)


def copied(case: Case, lab: Lab) -> tuple[Optional[dict], str]:
    """The probe on a copy of *lab* (every namespace, as the fix search reads them), before any change."""
    probe = case.probe
    state = read_state(lab, None, port=case.port, target=probe.dst)
    found = search(state, probe, None, fixes=False)
    return found.verdict, found.note or ""


def fixed(case: Case, lab: Lab, changes: list[dict]) -> bool:
    """Apply a verified fix to the changed lab (not a copy) and probe again, once every
    link the fix set up is operationally up (the kernel's linkwatch attaches its queue a
    moment after `ip link set X up`; until then it drops what is sent) and the learnt
    neighbours are flushed (as the search does before each trial)."""
    for change in changes:
        for argv in change["commands"]:
            if lab.ns(change["ns"]).run(list(argv), timeout=10).returncode != 0:
                return False
    wait_ready(lab, UP_WITHIN)  # a link that does not come up (its peer is down) is probed as it is
    return case.probe.run(forgetting(lab)).ok


def summary(done: list[Row], seed: int, label: str = "generated") -> tuple[str, bool]:
    """The closing line (of *done*, all cases or one family's) and whether it meets the targets."""
    scored = [r for r in done if r.error is None]
    n, failing = len(scored), [r for r in scored if r.failing]
    y = len(failing)
    agree = sum(r.agrees for r in scored)
    false = sum(r.false_claim for r in failing)
    named = sum(r.attributed for r in failing)
    copies = sum(r.copy_reproduces for r in scored)
    fixes = sum(r.fixed for r in failing)
    median = statistics.median(r.early_ms for r in scored) if scored else float("nan")
    line = (
        f"{label}: {n} cases (seed {seed}), outcome agreement {agree}/{n}, false claims {false}, attribution {named}/{y}, "
        f"copy reproduces {copies}/{n}, verified fix {fixes}/{y}, median early verdict {median:.1f} ms"
    )
    ok = n == len(done) and n > 0 and agree == n and false == 0 and named >= 0.9 * y and copies >= 0.98 * n and fixes >= 0.8 * y and median <= 5.0
    return line, ok
