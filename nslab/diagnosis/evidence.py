"""What the lab saw during a probe, and when that is enough to stop waiting.

Around every probe, in every namespace of the lab:
- a packet socket (opened when the namespace was made, so nothing is missed)
  records which interface saw which frame, in which direction;
- SNMP counters (`/proc/thread-self/net/snmp` and `netstat`, opened inside the
  namespace) give deltas such as IcmpInEchos without IcmpOutEchoReps;
- the kernel's own route lookups (RTM_GETROUTE) and neighbour entries say
  what it decided, instead of nslab guessing.

`Watch.settled()` is asked by the probe between reads: it answers True as
soon as the evidence proves no reply can come (the request was counted at
the target and the target has no route back; a namespace counted the
request as dropped; the way out has no carrier), so negative verdicts come
in milliseconds instead of a timeout.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nslab.kernel.state import LinkState, NeighbourState, RouteLookup
from nslab.model.topology import Topology

if TYPE_CHECKING:
    from nslab.lab.live import Lab, Netns
    from nslab.probes.result import Result

ETH_P_ALL = 0x0003
ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
WATCH_ALL_UP_TO = 8  # namespaces; larger labs are watched along the probe's way

# Counters that mean "an IPv4 packet was dropped here", with why, in words.
DROP_COUNTERS = {
    "Ip.InAddrErrors": "it is not addressed to {ns} and {ns} does not forward (ip_forward=0)",
    "Ip.InNoRoutes": "{ns} has no route to forward it on",
    "Ip.OutNoRoutes": "{ns} has no route for it",
    "TcpExt.IPReversePathFilter": "the reverse-path filter dropped it: {ns} has no route back to its source",
    "Ip.InDiscards": "{ns} discarded it",
}


@dataclass(frozen=True)
class Sighting:
    """One frame on one interface: where the packet was seen, and which way it went."""

    ns: str
    dev: str
    direction: str  # 'in' or 'out'
    time: float
    frame: bytes = field(repr=False)

    def summary(self) -> str:
        from scapy.layers.l2 import Ether

        return Ether(self.frame).summary()


@dataclass
class Evidence:
    probe: str
    src: str
    dst: str
    target: str | None  # the namespace that owns dst, per the lab model
    sender_route: RouteLookup
    request_src: str | None  # the source address the request carried
    counters: dict[str, dict[str, int]]  # per namespace, the counters that changed
    sightings: list[Sighting]
    links: dict[str, list[LinkState]]
    neighbours: dict[str, list[NeighbourState]]
    return_route: RouteLookup | None = None  # at the target, back to request_src
    settled_by: str | None = None
    path_down: str | None = None  # a bridge on the way out that is down

    def delta(self, ns: str, counter: str) -> int:
        return self.counters.get(ns, {}).get(counter, 0)

    def drops(self) -> list[tuple[str, str]]:
        """(namespace, counter) for every drop counter that rose."""
        return [(ns, c) for ns, deltas in self.counters.items() for c in DROP_COUNTERS if deltas.get(c, 0) > 0]

    def seen(self, ns: str | None = None, direction: str | None = None, kind: str | None = None) -> list[Sighting]:
        return [
            s
            for s in self.sightings
            if (ns is None or s.ns == ns) and (direction is None or s.direction == direction) and (kind is None or _kind(s.frame) == kind)
        ]

    def link(self, ns: str, dev: str | None) -> LinkState | None:
        return next((link for link in self.links.get(ns, []) if link.name == dev), None)

    def trace(self) -> str:
        """Per hop: where each frame was seen, in order (the per-hop trace of a report)."""
        if not self.sightings:
            return "(no frame seen on any interface of the lab)"
        t0 = self.sightings[0].time
        return "\n".join(f"+{(s.time - t0) * 1000:7.3f} ms  {s.ns:>12} {s.dev:<10} {s.direction:<3}  {s.summary()}" for s in self.sightings)

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
            pkt.time = s.time
            pkt.comment = f"{s.ns} {s.dev} {s.direction}".encode()
            out.write(pkt)
    return path


def _kind(frame: bytes) -> str:
    ethertype = int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
    if ethertype == ETH_P_ARP:
        return "arp-request" if frame[20:22] == b"\x00\x01" else "arp-reply"
    if ethertype == ETH_P_IP and len(frame) >= 34:
        proto = frame[23]
        if proto == 1:
            return {8: "echo-request", 0: "echo-reply"}.get(frame[14 + (frame[14] & 0xF) * 4], "icmp")
        return {6: "tcp", 17: "udp"}.get(proto, "ip")
    return "other"


def _names(hosts: set[tuple[str, str]]) -> str:
    return ", ".join(sorted(f"{ns} ({dev})" for ns, dev in hosts))


def _arp_target(frame: bytes) -> str:
    return socket.inet_ntoa(frame[38:42]) if len(frame) >= 42 else ""


def segment(topo: Topology, ns: str, dev: str) -> set[tuple[str, str]]:
    """The hosts on *dev*'s Ethernet segment, per the model: (namespace, interface)
    pairs that would receive a broadcast sent on *dev*: a veth's peer, or, through
    a bridge, the bridge itself and the far end of each other port."""
    ends = {(e[0], e[1]): (v, i) for v in topo.veths for i, e in enumerate(v.ends())}

    def far(end: tuple[str, str]) -> tuple[str, str, str | None] | None:
        if end not in ends:
            return None
        v, i = ends[end]
        if not (v.up and v.peer_up):  # a veth with an end down carries nothing
            return None
        return v.ends()[1 - i]

    hosts: set[tuple[str, str]] = set()
    todo, visited = [far((ns, dev))], {(ns, dev)}
    if any((b.ns, b.name) == (ns, dev) for b in topo.bridges):  # sent by the bridge itself: out of every port
        ports = [(e[0], e[1]) for v in topo.veths for e in v.ends() if (e[0], e[2]) == (ns, dev)]
        todo, visited = [far(port) for port in ports], visited | set(ports)
    while todo:
        end = todo.pop()
        if end is None or (end[0], end[1]) in visited:
            continue
        visited.add((end[0], end[1]))
        peer_ns, peer_dev, master = end
        if master is None:
            hosts.add((peer_ns, peer_dev))
            continue
        hosts.add((peer_ns, master))
        for v in topo.veths:
            for i, e in enumerate(v.ends()):
                if e[0] == peer_ns and e[2] == master and (e[0], e[1]) not in visited and v.up and v.peer_up:
                    visited.add((e[0], e[1]))
                    todo.append(v.ends()[1 - i])
    return hosts


def wiring(topo: Topology, ns: str) -> list[tuple[str, str]]:
    """(namespace, interface) of the far end of each of *ns*'s veths, per the model."""
    out = []
    for v in topo.veths:
        near, far = v.ends()
        if near[0] == ns:
            out.append(far[:2])
        if far[0] == ns:
            out.append(near[:2])
    return out


class NamespaceWatcher:
    """The sockets and files one namespace is watched through; opened inside it."""

    def __init__(self, name: str):
        self.name = name
        self.capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.htons(ETH_P_ALL))
        self.capture.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        # The kernel's own timestamp of each frame, so sightings in different
        # namespaces sort in the order they really happened.
        self.capture.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.snmp = os.open("/proc/thread-self/net/snmp", os.O_RDONLY | os.O_CLOEXEC)
        self.netstat = os.open("/proc/thread-self/net/netstat", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        self.capture.close()
        os.close(self.snmp)
        os.close(self.netstat)

    def counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for fd in (self.snmp, self.netstat):
            lines = os.pread(fd, 1 << 16, 0).decode().splitlines()
            for head, values in zip(lines[::2], lines[1::2]):
                proto, names = head.split(":", 1)
                for name, value in zip(names.split(), values.split(":", 1)[1].split()):
                    out[f"{proto}.{name}"] = int(value)
        return out

    def read(self) -> list[Sighting]:
        out = []
        while True:
            try:
                frame, ancillary, _, addr = self.capture.recvmsg(65535, 64)
            except BlockingIOError:
                return out
            ethertype = int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
            if ethertype in (ETH_P_IP, ETH_P_ARP):
                stamp = next((struct.unpack("=qq", data[:16]) for level, kind, data in ancillary if kind == SO_TIMESTAMPNS), None)
                when = stamp[0] + stamp[1] / 1e9 if stamp else time.time()
                out.append(Sighting(self.name, addr[0], "out" if addr[2] == PACKET_OUTGOING else "in", when, frame))


class Watch:
    """Evidence around one probe. Use as a context manager; `finish` explains."""

    open_namespace = NamespaceWatcher

    def __init__(self, lab: "Lab", src: "Netns", probe: str, dst: str, *, dev: str | None = None, port: int | None = None):
        self.lab, self.src, self.probe, self.dst, self.dev, self.port = lab, src, probe, dst, dev, port
        self.sightings: list[Sighting] = []
        self.settled_by: str | None = None
        self._nobody_has: bool | None = None

    def __enter__(self) -> "Watch":
        kernel = self.lab.kernel
        self.src_links = kernel.links(self.src.handle)
        names = {link.index: link.name for link in self.src_links}
        if self.probe == "arp":
            self.sender_route = RouteLookup(self.dst, type="unicast", dev=self.dev)
        else:
            self.sender_route = kernel.route_get(self.src.handle, self.dst, names=names)
        self.target = self.lab.owner_of(self.dst)
        routed_out = self.sender_route.type == "unicast" and self.sender_route.dev is not None
        self.out_link = next((link for link in self.src_links if link.name == self.sender_route.dev), None) if routed_out else None
        self.path_down = self._bridge_down_on_the_way_out()
        self.watched = self._namespaces_to_watch()
        for ns in self.watched:
            ns.watcher.read()  # drop what came before
        self.before = {ns.name: ns.watcher.counters() for ns in self.watched}
        return self

    def _bridge_down_on_the_way_out(self) -> str | None:
        """Is the far end of the way out a port of a bridge that is down (the kernel
        says so)? Then every frame dies there, and nothing needs to be waited for."""
        if self.out_link is None:
            return None
        far = self.lab.topology.peer(self.src.name, self.out_link.name)
        master = next((e[2] for v in self.lab.topology.veths for e in v.ends() if far and (e[0], e[1]) == far), None)
        if far is None or master is None:
            return None
        bridge = next((link for link in self.lab.kernel.links(self.lab.ns(far[0]).handle) if link.name == master), None)
        if bridge is None or bridge.up:
            return None
        return f"{far[1]}, the other end of {self.src.name}'s {self.out_link.name}, is a port of bridge {master} in {far[0]}, which is down (ip -n {far[0]} link set {master} up)"

    def _namespaces_to_watch(self) -> list["Netns"]:
        """Every namespace of a small lab; in a large one (say 50 containers on a
        bridge) the sender, the target and the hosts on the sender's way out,
        so a probe's cost does not grow with the size of the lab."""
        everyone = self.lab.namespaces
        if len(everyone) <= WATCH_ALL_UP_TO:
            return everyone
        names = {self.src.name}
        for ns in (self.target, self.lab.owner_of(self.sender_route.via) if self.sender_route.via else None):
            if ns is not None:
                names.add(ns.name)
        if self.sender_route.dev is not None:
            if self.probe == "arp":  # who heard the request is the evidence
                names |= {ns for ns, _ in segment(self.lab.topology, self.src.name, self.sender_route.dev)}
            else:  # the first hop: the veth's other end (a bridge's namespace, say)
                peer = self.lab.topology.peer(self.src.name, self.sender_route.dev)
                names |= {peer[0]} if peer else set()
        return [ns for ns in everyone if ns.name in names]

    def __exit__(self, *exc: Any) -> None:
        return None

    def _pump(self) -> None:
        for ns in self.watched:
            self.sightings.extend(ns.watcher.read())

    def _deltas(self) -> dict[str, dict[str, int]]:
        out = {}
        for ns in self.watched:
            now = ns.watcher.counters()
            before = self.before.get(ns.name, {})
            changed = {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
            if changed:
                out[ns.name] = changed
        return out

    # -- fast negative verdicts -------------------------------------------------
    def settled(self) -> bool:
        """True once the evidence proves no answer can come back."""
        if self.path_down is not None:
            self.settled_by = self.path_down
            return True
        if self.out_link is not None and not (self.out_link.up and self.out_link.carrier):
            self.settled_by = f"{self.src.name}'s way out, {self.out_link.name}, is {self.out_link.state}"
            return True
        deltas = self._deltas()
        for ns, counters in deltas.items():
            for counter in DROP_COUNTERS:
                if counters.get(counter, 0) > 0 and not (ns == self.src.name and counter == "Ip.OutNoRoutes"):
                    self.settled_by = f"{ns} counted {counter}"
                    return True
        if self.target is not None and self.sender_route.src and self.target.name in deltas:
            got = deltas[self.target.name]
            arrived = got.get("Icmp.InEchos", 0) if self.probe == "ping" else got.get("Tcp.InSegs", 0)
            answered = got.get("Icmp.OutEchoReps", 0) if self.probe == "ping" else got.get("Tcp.OutSegs", 0)
            if arrived and not answered and not self.target.route_get(self.sender_route.src).found:
                self.settled_by = f"{self.target.name} received the request and has no route back to {self.sender_route.src}"
                return True
        return self._arp_unanswerable()  # last: it costs a neighbour dump

    def _arp_unanswerable(self) -> bool:
        """Nobody on the segment has the address (the kernel says so in each of
        their namespaces), and the sender is resolving it: the who-has was seen
        arriving at all of them (an ARP probe), or the sender's neighbour entry
        is INCOMPLETE/FAILED (it may be retrying an earlier request)."""
        hop = self.dst if self.probe == "arp" else (self.sender_route.via or self.dst)
        dev = self.dev if self.probe == "arp" else self.sender_route.dev
        if dev is None:
            return False
        if self.probe == "arp":
            self._pump()
            heard = {(s.ns, s.dev) for s in self.sightings if s.direction == "in" and _kind(s.frame) == "arp-request" and _arp_target(s.frame) == hop}
            hosts = segment(self.lab.topology, self.src.name, dev)
            if not hosts or not hosts <= heard or not self._nobody_has_it(hop, hosts):
                return False
            self.settled_by = f"the ARP request for {hop} reached {_names(hosts)}, and none of them has that address"
            return True
        names = {link.index: link.name for link in self.src_links}
        entry = next((n for n in self.lab.kernel.neighbours(self.src.handle, names=names) if n.dst == hop), None)
        if entry is None or not ("INCOMPLETE" in entry.state or "FAILED" in entry.state):
            return False
        hosts = segment(self.lab.topology, self.src.name, dev)
        if not hosts or not self._nobody_has_it(hop, hosts):
            return False
        self.settled_by = f"{self.src.name} is still resolving {hop} ({entry.state}) and none of {_names(hosts)} has that address"
        return True

    def _nobody_has_it(self, hop: str, hosts: set[tuple[str, str]]) -> bool:
        """Asked once per probe: is *hop* a local address in none of *hosts*' namespaces?"""
        if self._nobody_has is None:
            self._nobody_has = not any(self.lab.ns(ns).route_get(hop).type == "local" for ns, _ in hosts)
        return self._nobody_has

    # -- the verdict's evidence -------------------------------------------------
    def finish(self, result: "Result") -> "Result":
        """Attach the evidence and its explanation to *result*. A success keeps
        the cheap part (frames, counters); a failure also gets what the kernel
        reports in the namespaces that matter: links, neighbours, the way back."""
        from nslab.diagnosis.explain import explain

        self._pump()
        evidence = Evidence(
            probe=self.probe,
            src=self.src.name,
            dst=self.dst,
            target=self.target.name if self.target is not None else None,
            sender_route=self.sender_route,
            request_src=self.sender_route.src,
            counters=self._deltas(),
            sightings=sorted(self.sightings, key=lambda s: s.time),
            links={self.src.name: self.src_links},
            neighbours={},
            settled_by=self.settled_by if result.decided_early else None,
            path_down=self.path_down,
        )
        if not result.ok:
            self._failure_evidence(evidence)
        result.evidence = evidence
        result.cause, result.explanation = explain(result, evidence, self.lab.topology)
        self.lab.probes.append(result)
        return result

    def _failure_evidence(self, evidence: Evidence) -> None:
        kernel = self.lab.kernel
        names = {link.index: link.name for link in self.src_links}
        evidence.neighbours[self.src.name] = kernel.neighbours(self.src.handle, names=names)
        if self.target is not None and self.sender_route.src and self.probe != "arp":
            evidence.return_route = kernel.route_get(self.target.handle, self.sender_route.src)
        if self.target is not None and not any(s.ns == self.target.name and s.direction == "in" for s in evidence.sightings):
            # it never heard a thing: how is it wired? (its veths' other ends: down? a port of no bridge?)
            for name in {self.target.name} | {peer_ns for peer_ns, _ in wiring(self.lab.topology, self.target.name)}:
                if name not in evidence.links:
                    evidence.links[name] = kernel.links(self.lab.ns(name).handle)
