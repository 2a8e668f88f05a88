"""A packet's way, namespace by namespace, through the kernel's own decisions.

From where the packet is made (or where it came in), each step asks the kernel
for its routing decision (`stages/routing.py`), checks the way out
(`stages/link.py`), finds who on the segment holds the next hop
(`stages/neighbour.py`) and enters that namespace on that interface. At the
namespace that holds the destination, delivery is checked (`stages/local.py`).
The first stage that stops the packet ends the walk with its finding.

The walk reads state only. What it cannot see (a netfilter verdict, a frame
lost on the wire) the caller takes from the evidence: the drop reasons and the
captures of this packet.
"""

from __future__ import annotations

from dataclasses import dataclass

from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, link, local, neighbour, routing
from nslab.probes.result import Cause, Where

MAX_HOPS = 32


@dataclass(frozen=True)
class Walked:
    """Where the walk went: the namespaces in order (with the interface each was entered by),
    and either the finding that stopped the packet or the place it was delivered."""

    path: tuple[tuple[str, str | None], ...]
    stop: Finding | None = None
    delivered: tuple[str, str | None] | None = None
    segments: frozenset[str] = frozenset()  # namespaces on the segments it crossed (bridges, hosts)

    @property
    def namespaces(self) -> list[str]:
        return [ns for ns, _ in self.path]


def walk(reads: Reads, at: At, *, asked: neighbour.Asked | None = None, deliver: bool = True, hops: int = MAX_HOPS) -> Walked:
    """Follow *at* until a stage stops it or it is delivered; neither where the way leaves
    what can be followed (a device nslab cannot follow, a namespace outside the lab).
    *asked*: the solicitations the captures saw in this probe (None: not every namespace was watched).
    *deliver*: check local delivery at the end (an echo request, a SYN; not an answer).
    *hops*: how many namespaces to decide in (1: only where the packet is now)."""
    path: list[tuple[str, str | None]] = []
    crossed: set[str] = set()

    def done(stop: Finding | None = None, delivered_at: tuple[str, str | None] | None = None) -> Walked:
        return Walked(tuple(path), stop, delivered_at, frozenset(crossed))

    for _ in range(hops):
        if (at.ns, at.iif) in path:
            return done(Finding(Cause.UNKNOWN, Where(at.ns, at.iif), f"the {at.what} would loop: it comes back to {at.ns} on {at.iif}"))
        path.append((at.ns, at.iif))
        decision = routing.decide(reads, at)
        if isinstance(decision, Finding):
            return done(decision)
        if decision.local:
            stop = delivered(reads, at) if deliver else None
            return done(stop, None if stop else (at.ns, at.iif))
        dev, hop = decision.dev or "", decision.hop or at.dst
        stop = link.way_out(reads, at, dev)
        if stop is not None:
            return done(stop)
        entry = reads.neighbour(at.ns, hop)
        if entry is not None and ("FAILED" in entry.state or "INCOMPLETE" in entry.state):
            return done(neighbour.unanswered(reads, at, dev, hop, asked))
        segment = reads.hosts_on(at.ns, dev)
        if segment is None:
            return done()
        crossed.update(n for n, _ in segment[0] | segment[1])
        holders = neighbour.holders(reads, segment[0], hop)
        if not holders:
            return done(neighbour.unanswered(reads, at, dev, hop, asked))
        ns, iif = holders[0]
        at = At(ns, at.src, at.dst, iif, at.what, at.proto, at.dport)
    return done()


def delivered(reads: Reads, at: At) -> Finding | None:
    """What local delivery does with the packet: None where it is taken."""
    if at.proto == "tcp":
        return local.no_listener(reads, at)
    return local.ignored_echo(reads, at)
