"""What the lab showed around one probe, tied to the probe's own packet.

Every sighting, counter delta and drop here concerns the probe's packet (or its
answer, or an error about it): frames of other traffic are left out, and the
trace is ordered causally, not only by clock.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Any

from nslab.diagnosis import frames
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.frames import Flow
from nslab.kernel.state import LinkState, NeighbourState, RouteLookup
from nslab.probes import packets


@dataclass(frozen=True)
class DropSeen:
    """The kernel freed the probe's packet: where, and its own reason (skb:kfree_skb)."""

    ns: str
    dev: str | None
    reason: str
    packet: packets.Packet | None = field(default=None, repr=False)
    asks: str | None = None  # for a neighbour solicitation of the probe's (ARP request, NDP NS): the address it asks for


@dataclass
class Evidence:
    probe: str
    src: str
    dst: str
    flow: Flow
    sender_route: RouteLookup
    request_src: str | None  # the source address the request left with
    counters: dict[str, dict[str, int]]  # per namespace, the counters that changed
    sightings: list[Sighting]  # the probe's frames only, in causal order
    links: dict[str, list[LinkState]]
    watched: frozenset[str]  # the namespaces whose captures ran (the sightings come from these alone)
    neighbours: dict[str, list[NeighbourState]]
    resolving: str | None  # the sender's next hop, where its neighbour entry was mid-resolution (INCOMPLETE, PROBE) when the probe began
    drops: list[DropSeen] = field(default_factory=list)
    drop_reasons: str | None = None  # None when the kernel's drop reasons were read, all of them; else why not
    target: str | None = None  # the namespace the request was delivered to, as seen
    return_route: RouteLookup | None = None  # at the target, back to where the request came from
    settled_by: str | None = None

    def delta(self, ns: str, counter: str) -> int:
        return self.counters.get(ns, {}).get(counter, 0)

    def seen(self, ns: str | None = None, direction: str | None = None, kind: str | None = None) -> list[Sighting]:
        return [
            s
            for s in self.sightings
            if (ns is None or s.ns == ns) and (direction is None or s.direction == direction) and (kind is None or s.kind == kind)
        ]

    def link(self, ns: str, dev: str | None) -> LinkState | None:
        return next((link for link in self.links.get(ns, []) if link.name == dev), None)

    def trace(self) -> str:
        """Per hop: where each of the probe's frames was seen, in causal order."""
        lines = []
        if self.sightings:
            t0 = min(s.time_ns for s in self.sightings)
            lines = [f"+{(s.time_ns - t0) / 1e6:7.3f} ms  {s.ns:>12} {s.dev:<10} {s.direction:<3}  {s.summary()}" for s in self.sightings]
        else:
            lines = ["(no frame of this probe seen on any interface of the lab)"]
        lines += [f"dropped in {d.ns}{' on ' + d.dev if d.dev else ''}: {d.reason}" for d in self.drops]
        if self.drop_reasons is not None:
            lines.append(f"(the kernel's drop reasons were not read: {self.drop_reasons})")
        return "\n".join(lines)

    def write_pcap(self, path: str) -> str:
        return write_pcap(self.sightings, path)


def write_pcap(sightings: list[Sighting], path: str) -> str:
    """Frames as one pcap, each once per interface it crossed, with a comment naming it."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapWriter

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with PcapWriter(path, linktype=1, sync=True) as out:
        for s in sightings:
            pkt = Ether(s.frame)
            pkt.time = s.time_ns / 1e9
            pkt.comment = f"{s.ns} {s.dev} {s.direction}".encode()
            out.write(pkt)
    return path


def _identity(s: Sighting) -> tuple[str | int | None, ...] | None:
    """What stays the same for one packet along its way (the IP id survives routing and NAT)."""
    arp = frames.neighbour_fields(s.frame)
    if arp is not None:
        return ("arp", *arp)
    p = s.packet
    return None if p is None else (p.proto, p.ident, p.icmp_type, p.icmp_id, p.icmp_seq, p.tcp_flags)


def causal_order(sightings: list[Sighting], peers: dict[tuple[str, str], tuple[str, str]], ports: dict[tuple[str, str], tuple[str, str]]) -> list[Sighting]:
    """Sightings in the order they happened: a packet leaving one end of a veth
    comes before it enters the other end (*peers* maps each end to the other),
    a packet enters a namespace before it is forwarded out of it, and a bridge
    port receives a frame before its bridge does and sends one after (*ports*
    maps each port to its bridge). The kernel's timestamps order what these rules
    do not relate: they come from different sockets' clocks and can disagree by
    microseconds, so a rule, not a timestamp, orders what the kernel's path does."""
    ordered = sorted(sightings, key=lambda s: (s.time_ns, s.direction != "out"))
    after: dict[int, list[int]] = {i: [] for i in range(len(ordered))}
    waiting = [0] * len(ordered)
    ident = [_identity(s) for s in ordered]
    # Looked up by where and which way, not compared pair by pair: a frame a bridge floods to a
    # thousand ports is a thousand sightings of one identity.
    at: dict[tuple[Any, str, str, str], list[int]] = {}
    inside: dict[tuple[Any, str, str], list[int]] = {}
    for i, s in enumerate(ordered):
        if ident[i] is not None:
            at.setdefault((ident[i], s.ns, s.dev, s.direction), []).append(i)
            inside.setdefault((ident[i], s.ns, s.direction), []).append(i)
    ports_of: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for port, bridge in ports.items():
        ports_of.setdefault(bridge, []).append(port)
    for b, sb in enumerate(ordered):
        key = ident[b]
        if key is None:
            continue
        before: set[int] = set()
        if sb.direction == "in":
            far = peers.get((sb.ns, sb.dev))
            if far is not None:
                before.update(at.get((key, *far, "out"), ()))  # over the veth
            for port in ports_of.get((sb.ns, sb.dev), ()):
                before.update(at.get((key, *port, "in"), ()))  # a port received it before its bridge
        else:
            before.update(a for a in inside.get((key, sb.ns, "in"), ()) if ordered[a].dev != sb.dev)  # forwarded
            master = ports.get((sb.ns, sb.dev))
            if master is not None:
                before.update(at.get((key, *master, "out"), ()))  # the bridge sent it before its port
        before.discard(b)
        for a in before:
            after[a].append(b)
            waiting[b] += 1
    ready = [i for i in range(len(ordered)) if waiting[i] == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(i)
        for j in after[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    out += [i for i in range(len(ordered)) if i not in set(out)]  # a cycle (a hairpin): clock order
    return [ordered[i] for i in out]
