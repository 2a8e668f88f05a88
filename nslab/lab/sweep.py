"""Many echo requests in flight at once: does every source reach every destination?

`Netns.ping` reads counters, captures and links around each probe, which is
what explains a failure, and its cost grows with the number of namespaces in
the lab. An all-pairs check needs only the kernel's answer: one raw ICMP
socket per source namespace, the requests of a round all sent before any
reply is awaited (nslab/lab/echoes.py), routing, ARP and bridging all done by
the kernel as usual. A pair that gets no echo reply is probed again with
`Netns.ping`, so the failure carries evidence and an explanation.

Rounds, and the neighbour table. The kernel's ARP table is one for all
namespaces of the machine, capped at gc_thresh3 learnt entries (1024 by
default; nslab/kernel/limits.py). A sweep takes a share of it (`SHARE`, so
that three sweeps of parallel workers, the other labs' probes and the host fit beside each other:
a probe whose next hop finds the table full is dropped, NEIGH_CREATEFAIL): it
sends the pairs in rounds (a block of sources to a block of destinations),
removes what each round resolved (`ip neigh flush all` in the round's
namespaces and those it went through), and sizes the next round by what the
last one really resolved, so the blocks grow where pairs share their next
hops (pods behind a gateway) and stay small where every pair resolves its own
(hosts on one segment).

ARP, resolved each time or once. On a segment of N hosts every resolution is
a broadcast to all N: N x (N-1) pairs cost N**3 frames, 10**9 for a bridge of
a thousand containers (2.4 to 4.5 ms a pair measured here: 40 minutes or more). So on a segment of more than
`RESOLVE_ONCE_ABOVE` hosts (or with arp="once"), each host is first asked by
its neighbour in a ring, by the kernel's own ARP: that proves every host
answers ARP and sends it, and gives its address as answered. Then for each
round the sweep holds permanent entries with those addresses (`ip neigh
replace ... nud permanent`, which the garbage collector does not count), for
both ends of each pair of the round, and drops them after it: every pair is
still routed, switched, answered and routed back by the kernel, and the ring
pairs were resolved by the kernel; what is not checked per pair is the ARP
exchange between those two hosts. `Sweep.arp` says which way a sweep went;
arp="each" always resolves by the kernel.

While a sweep runs, the lab's open captures take no frames (Capture.paused):
no probe watches, and a thousand namespaces' frames would only fill them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Literal

from nslab.kernel import limits
from nslab.lab.echoes import RoutedDrops, Sender, round_trip
from nslab.model.checks import IPNetwork, LabError
from nslab.probes.result import Result

if TYPE_CHECKING:
    from nslab.lab.live import Lab, Netns

SHARE = 0.25  # of gc_thresh3: the learnt neighbour entries one sweep may hold at once
FIRST_BLOCK = 8  # sources (and destinations) in the first round; later ones sized by what it resolved
RESOLVE_ONCE_ABOVE = 64  # hosts on one segment beyond which arp="auto" resolves each host once
SEEDED_BLOCK = 125  # hosts per block when entries are held: two blocks are 2 x 125**2 pairs in one round
RCVBUF_PER_ANSWER = 2048  # receive buffer per answer a socket may hold before it is read

Arp = Literal["auto", "each", "once"]
_NO_ROOM = (
    "refused twice for want of room (ENOBUFS), the second time with this sweep's neighbours given back: the neighbour table "
    "all namespaces of the machine share is full ({limit}); run fewer sweeps at once, or raise it in the host's namespace "
    "(sysctl -w net.ipv4.neigh.default.gc_thresh3=4096; nslab never does)"
)


@dataclass(frozen=True)
class _Flushed:
    """A neighbour a round resolved, as flushed after it."""

    place: int  # the namespace's place among the sweep's sources (-1: not a source)
    index: int  # the link it sat on
    dst: str
    mac: str | None
    state: str


@dataclass
class Sweep:
    pairs: int
    replied: int
    elapsed: float  # seconds from the first request sent to the last answer (or deadline), flushes included
    failures: list[tuple[str, str]]  # (source namespace, destination) with no echo reply
    explained: list[Result] = field(default_factory=list)  # `ping` of the first failures, with evidence
    why: dict[tuple[str, str], str] = field(default_factory=dict)  # failures the kernel named at once (errno, ICMP error)
    retried: int = 0  # pairs that answered only when asked again (in their round, or in a round of their own after it)
    rounds: int = 0
    arp: str = "each"  # 'each': the kernel resolved every pair's neighbours; 'once': on large segments once per host (see the module)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def lost(self) -> int:
        return self.pairs - self.replied

    def __str__(self) -> str:
        text = f"{self.replied}/{self.pairs} pairs replied in {self.elapsed * 1000:.0f} ms ({self.rounds} rounds"
        text += (", ARP resolved once per host" if self.arp == "once" else "") + (f", {self.retried} answered when asked again" if self.retried else "") + ")"
        if self.failures:
            text += f"; no reply: {', '.join(f'{s} -> {d}' + (f' ({self.why[(s, d)]})' if (s, d) in self.why else '') for s, d in self.failures[:10])}"
            text += f" and {len(self.failures) - 10} more" if len(self.failures) > 10 else ""
            text += "".join(f"\n  {r!r}" for r in self.explained)
        return text

    __repr__ = __str__


def ping_pairs(pairs: Iterable[tuple[Netns, str]], *, timeout: float = 1.0, explain: int = 3) -> Sweep:
    """One echo request per (source namespace, destination) pair, all in one round;
    each has *timeout* seconds from the moment the last one was sent.
    The first *explain* failures are probed again with `Netns.ping`."""
    by_src: dict[Netns, list[str]] = {}
    for src, dst in pairs:
        by_src.setdefault(src, []).append(dst)
    run = _Run(list(by_src), timeout, _version([dst for dsts in by_src.values() for dst in dsts]))
    with run:
        run.round([(run.sender(src), dsts) for src, dsts in by_src.items()], flush=list(by_src))
        run.ask_again()
    return run.finish(explain)


def all_pairs(hosts: Mapping[Netns, str], *, timeout: float = 1.0, explain: int = 3, arp: Arp = "auto", per_round: int | None = None) -> Sweep:
    """Every namespace in *hosts* pings every other's address: n x (n-1) pairs,
    in rounds that keep within the kernel's neighbour table (see the module).

    *per_round* fixes the number of sources per round (each to all its
    destinations at once) instead of sizing rounds by what they resolve.
    The first *explain* failures are probed again with `Netns.ping`."""
    if per_round is not None and per_round < 1:
        raise ValueError(f"per_round={per_round!r}: must be at least 1 source per round")
    if arp not in ("auto", "each", "once"):
        raise ValueError(f"arp={arp!r}: must be 'auto', 'each' or 'once'")
    items = list(hosts.items())
    run = _Run([ns for ns, _ in items], timeout, _version([address for _, address in items]))
    with run:
        # resolving each host once is ARP's (held entries): an IPv6 sweep lets the kernel's NDP resolve every pair
        groups = [g for g in _segments(items) if run.version == 4 and (arp == "once" and len(g) > 1 or arp == "auto" and len(g) > RESOLVE_ONCE_ABOVE)]
        ring = {g[k]: g[(k + 1) % len(g)] for g in groups for k in range(len(g))}
        held: dict[int, int] = {}  # host -> its group, for hosts whose pairs within the group are held
        if groups:
            run.sweep.arp = "once"
            macs = run.resolve_rings(items, ring)
            for gi, group in enumerate(groups):
                known = [h for h in group if h in macs]
                held.update((h, gi) for h in known)
                run.held_rounds(items, known, macs, skip=set(ring.items()))
        everyone = range(len(items))

        def wanted(s: int) -> list[int]:
            g = held.get(s)
            return [d for d in everyone if d != s and d != ring.get(s) and (g is None or held.get(d) != g)]

        run.kernel_rounds(items, everyone, wanted, per_round)
        run.ask_again()
    return run.finish(explain)


class _Run:
    """The senders, the rounds and the tally of one sweep."""

    def __init__(self, sources: list[Netns], timeout: float, version: int = 4):
        self.sources = sources
        self.timeout = timeout
        self.version = version
        self.sweep = Sweep(0, 0, 0.0, [])
        self.unanswered: list[tuple[Netns, str]] = []  # (source, destination): no answer in the pair's first round
        self.share = max(64, int(limits.neighbour_limit().gc_thresh3 * SHARE))
        self._senders: dict[Netns, Sender] = {}
        self._stack = contextlib.ExitStack()
        self._start = 0.0
        labs = {id(ns.lab): ns.lab for ns in sources}
        own = set(sources)
        self.transit = [ns for lab in labs.values() for ns in lab.namespaces if ns not in own]  # where a pair's packets may pass
        self.drops = _routed_drops(list(labs.values()))

    def __enter__(self) -> "_Run":
        limits.ensure_descriptors(len(self.sources), f"a sweep from {len(self.sources)} namespaces")
        for lab in {id(ns.lab): ns.lab for ns in self.sources}.values():
            self._stack.enter_context(_quiet(lab))
        self._start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sweep.elapsed = time.monotonic() - self._start
        for sender in self._senders.values():
            sender.close()
        self._stack.close()

    def sender(self, ns: Netns, answers: int = 256) -> Sender:
        """*ns*'s sender, with room for *answers* answers before they are read."""
        size = max(1 << 17, RCVBUF_PER_ANSWER * answers)
        if ns not in self._senders:
            self._senders[ns] = Sender(ns, size, self.version)
        elif self._senders[ns].rcvbuf < size:
            self._senders[ns].grow(size)
        return self._senders[ns]

    # -- one round ---------------------------------------------------------------
    def round(self, work: list[tuple[Sender, list[str]]], flush: Iterable[Netns], *, retry_busy: bool = True, again: bool = False) -> list[_Flushed]:
        """Send *work*, tally its answers, then flush the neighbours the round
        resolved in *flush* and the transit namespaces, and return what was flushed.

        A pair with no answer at all is kept for `ask_again`; a round that asks
        *again* counts no new pairs, and what it does not hear back is a failure."""
        work = [(s, d) for s, d in work if d]
        if not work:
            return []
        self.sweep.rounds += 1
        round_trip(work, self.timeout, self.drops)
        busy = []
        for sender, dsts in work:
            replied = sender.replied
            self.sweep.replied += len(replied)
            self.sweep.retried += len(replied) if again else sum(1 for dst in replied if dst in sender.asked_again)
            for dst, why in sender.failed:
                self.sweep.failures.append((sender.src.name, dst))
                self.sweep.why[(sender.src.name, dst)] = why
            if again:
                self.sweep.failures += [(sender.src.name, dst) for dst in sender.pending.values()]
            else:
                self.unanswered += [(sender.src, dst) for dst in sender.pending.values()]
            if sender.busy and retry_busy:
                busy.append((sender, list(sender.busy)))
            else:
                for dst in sender.busy:
                    self.sweep.failures.append((sender.src.name, dst))
                    self.sweep.why[(sender.src.name, dst)] = _NO_ROOM.format(limit=limits.neighbour_limit())
            if not again:
                self.sweep.pairs += len(dsts) - (len(sender.busy) if retry_busy else 0)
            sender.reset()
        flushed = self._flush(flush)
        if busy:  # the kernel had no room (ENOBUFS): the table is emptied now, so ask those again
            self.round(busy, [s.src for s, _ in busy], retry_busy=False, again=again)
        return flushed

    def ask_again(self) -> None:
        """The pairs that heard nothing, not even an error (nor a drop of their echo at a routing
        decision, nslab/lab/echoes.py), asked once more in rounds of their own, the kernel
        resolving their neighbours afresh. A round that sends thousands of
        requests at once can lose some to its own congestion (a CPU's backlog of 1,000
        packets, flooded by ARP broadcasts to every port of a bridge, overflows in a slow
        guest), where a broken path loses every one: only a pair silent twice is a failure.
        What this costs a sweep that finds real failures: one more *timeout* per round of them."""
        pending, self.unanswered = self.unanswered, []
        step = max(1, self.share // 2)  # two neighbours a pair at most, as kernel_rounds sizes them
        for first in range(0, len(pending), step):
            by_src: dict[Netns, list[str]] = {}
            for src, dst in pending[first : first + step]:
                by_src.setdefault(src, []).append(dst)
            self.round([(self.sender(src, len(dsts)), dsts) for src, dsts in by_src.items()], list(by_src), again=True)

    def _flush(self, spaces: Iterable[Netns]) -> list[_Flushed]:
        place = {ns: i for i, ns in enumerate(self.sources)}
        out = []
        for ns in dict.fromkeys([*spaces, *self.transit]):
            out += [_Flushed(place.get(ns, -1), n.index, n.dst, n.mac, n.state) for n in ns.lab.kernel.take_neighbours(ns.handle)]
        return out

    # -- rounds the kernel resolves ----------------------------------------------
    def kernel_rounds(self, items: list[tuple[Netns, str]], sources: Iterable[int], wanted: Callable[[int], list[int]], per_round: int | None, *, collect: bool = False) -> list[_Flushed]:
        """Every source to every destination wanted(source) lists, in rounds of a
        block of sources to a block of destinations, each sized by what the last
        one resolved; returns what the rounds resolved (from the flushes) if *collect*."""
        sources = list(sources)
        seen: list[_Flushed] = []
        bs = per_round or FIRST_BLOCK
        bd = FIRST_BLOCK
        if per_round is None and _fits(sources, wanted, self.share // 2):
            bs = bd = len(items)  # two neighbours a pair at most: all in one round
        first = 0
        while first < len(sources):
            block = sources[first : first + bs]
            targets = {s: t for s in block if (t := wanted(s))}
            union = sorted({d for ds in targets.values() for d in ds})
            step = len(union) if per_round else bd
            most = 0
            at = 0
            while at < len(union):
                window = set(union[at : at + step])
                work = [(self.sender(items[s][0], len(window)), [items[d][1] for d in ds if d in window]) for s, ds in targets.items()]
                resolved = self.round(work, [items[s][0] for s in targets] + [items[d][0] for d in window])
                if collect:
                    seen += resolved
                most = max(most, len(resolved))
                at += step
                if not per_round:
                    step = bd = _resize(bd, len(resolved), self.share)
            first += len(block)
            if not per_round:
                bs = _resize(bs, most, self.share)
        return seen

    def resolve_rings(self, items: list[tuple[Netns, str]], ring: dict[int, int]) -> dict[int, tuple[int, str]]:
        """Each host asked by the one before it in its ring, by the kernel's ARP:
        host -> (ifindex of its link, its MAC), as the kernel resolved them."""
        by_address = {address: i for i, (_, address) in enumerate(items)}
        learnt = self.kernel_rounds(items, ring, lambda s: [ring[s]], None, collect=True)
        macs: dict[int, str] = {}
        index: dict[int, int] = {}
        for n in learnt:
            target = by_address.get(n.dst)
            if n.place >= 0 and target is not None and ring.get(n.place) == target and n.mac and n.state in ("REACHABLE", "STALE", "DELAY", "PROBE"):
                index[n.place] = n.index  # the source's link, the target's answer
                macs[target] = n.mac
        return {h: (index[h], mac) for h, mac in macs.items() if h in index}

    # -- rounds with the neighbours held -------------------------------------------
    def held_rounds(self, items: list[tuple[Netns, str]], group: list[int], macs: dict[int, tuple[int, str]], skip: set[tuple[int, int]]) -> None:
        """All pairs within *group* (but *skip*), both ways, block against block, each
        round's neighbour entries held permanent at both ends and dropped after it."""
        blocks = [group[i : i + SEEDED_BLOCK] for i in range(0, len(group), SEEDED_BLOCK)]
        kernel = items[0][0].lab.kernel
        for bi, left in enumerate(blocks):
            for right in blocks[bi:]:
                pairs = [(a, b) for a in left for b in right if a != b]
                if left is not right:
                    pairs += [(b, a) for a, b in pairs]
                holds: dict[int, list[int]] = {}
                for a, b in pairs:
                    holds.setdefault(a, []).append(b)
                for a, others in holds.items():
                    kernel.hold_neighbours(items[a][0].handle, macs[a][0], [(items[b][1], macs[b][1]) for b in others])
                try:
                    work = [(self.sender(items[a][0], len(others)), [items[b][1] for b in others if (a, b) not in skip]) for a, others in holds.items()]
                    self.round(work, [])
                finally:
                    for a, others in holds.items():
                        kernel.drop_neighbours(items[a][0].handle, macs[a][0], [items[b][1] for b in others])
        self._flush(items[h][0] for h in group)  # anything the kernel resolved on the side

    def finish(self, explain: int) -> Sweep:
        sweep = self.sweep
        for src_name, dst in sweep.failures[:explain]:
            src = next(ns for ns in self.sources if ns.name == src_name)
            # afresh: a neighbour left INCOMPLETE would hold back the new ARP request, and with it the evidence
            src.flush_neighbours()
            sweep.explained.append(src.ping(dst, timeout=self.timeout))
        return sweep


def _routed_drops(labs: list[Lab]) -> RoutedDrops | None:
    """The kernel's drops of the sweep's own echoes in its lab's namespaces, read from the monitor
    its probes read; None where they wait out their deadline (several labs, a lab without drop
    reasons, or one that settles nothing early: `lab.settle_early = False`)."""
    if len(labs) != 1 or not labs[0].drop_reasons or not labs[0].settle_early:
        return None
    from nslab.kernel import drops

    lab = labs[0]
    return RoutedDrops(lab.drops or drops.monitor(), {ns.inode: ns.name for ns in lab.namespaces})


def _version(addresses: list[str]) -> int:
    """4 or 6: the one family of a sweep's destinations (a dual-stack lab sweeps each in turn)."""
    families = {6 if ":" in address else 4 for address in addresses}
    if len(families) > 1:
        raise LabError("hosts", "a sweep probes one family: give IPv4 addresses or IPv6 ones, and sweep each family in turn")
    return families.pop() if families else 4


def _fits(sources: list[int], wanted: Callable[[int], list[int]], pairs: int) -> bool:
    """Do the sources want at most *pairs* pairs in all? (stops counting past it)"""
    for s in sources:
        pairs -= len(wanted(s))
        if pairs < 0:
            return False
    return True


def _resize(size: int, learnt: int, share: int) -> int:
    """The next block size: twice as large while the round resolved at most half
    the share, half as large when it resolved more than the share."""
    if learnt * 2 <= share:
        return size * 2
    if learnt > share:
        return max(1, size // 2)
    return size


def _segments(items: list[tuple[Netns, str]]) -> list[list[int]]:
    """The hosts (by place in *items*) that share an Ethernet segment and a subnet,
    per the lab's model: where a host's next hop to another is that host itself.
    One pass: each veth end is joined to its peer, each bridge port to its bridge."""
    topo = items[0][0].lab.topology if items else None
    if topo is None:
        return []
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(x: tuple[str, str]) -> tuple[str, str]:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    def join(a: tuple[str, str], b: tuple[str, str]) -> None:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(a)] = root(b)

    for v in topo.veths:
        join((v.ns, v.name), (v.peer_ns, v.peer))
        for ns, dev, master in v.ends():
            if master is not None:
                join((ns, dev), (ns, master))
    by_ns = {ns.name: i for i, (ns, _) in enumerate(items)}
    groups: dict[tuple[tuple[str, str], IPNetwork], list[int]] = {}  # (segment, subnet) -> hosts
    for a in topo.addresses:
        i = by_ns.get(a.ns)
        if i is not None and str(a.interface.ip) == items[i][1] and (a.ns, a.dev) in parent:
            groups.setdefault((root((a.ns, a.dev)), a.interface.network), []).append(i)
    return [sorted(set(g)) for g in groups.values() if len(set(g)) > 1]


@contextlib.contextmanager
def _quiet(lab: Lab) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for ns in lab.namespaces:
            stack.enter_context(ns.watcher.paused())
        yield


__all__ = ["Sweep", "all_pairs", "ping_pairs"]
