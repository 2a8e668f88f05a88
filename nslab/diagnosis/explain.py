"""Turns a probe's evidence into a structured cause and one plain sentence.

Tests assert on the cause (`result.cause is Cause.NO_RETURN_ROUTE`); people
read the sentence, which names the namespace, the interface and the missing
piece: "the echo request reached container1 on ceth1, but container1 has no
route back to 10.0.0.10".
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
import socket

from nslab.diagnosis.evidence import DROP_COUNTERS, Evidence, _arp_target
from nslab.model.topology import Topology
from nslab.probes.result import Cause, Outcome, Result

REQUEST = {"ping": "echo request", "tcp": "TCP SYN", "http": "TCP SYN", "arp": "ARP request"}


def explain(result: Result, ev: Evidence, topo: Topology) -> tuple[Cause | None, str]:
    """(cause, sentence). Success has no cause."""
    what = REQUEST.get(result.probe, "request")
    if result.outcome is Outcome.REPLY:
        return None, _success(result, ev)
    if _is_loopback(result.dst) and not _lo_up(ev, ev.src):
        return Cause.LOOPBACK_DOWN, f"lo is down in {ev.src}, so {result.dst} is not even a local address there; bring it up: ip link set lo up"
    if result.outcome is Outcome.LOCAL_ERROR and result.errno == errno_mod.ENETUNREACH:
        down = _down_link_on_subnet(ev, topo, ev.src, result.dst)
        if down:
            return Cause.LINK_DOWN, f"{ev.src} has no route to {result.dst} because {down} is down (its connected route went with it); ip link set {down} up"
        return Cause.NO_ROUTE_AT_SENDER, f"{ev.src} has no route to {result.dst} (ENETUNREACH at once): add one, e.g. ip route add {_net_hint(result.dst)} dev ... or a default route"
    if result.outcome is Outcome.REFUSED:
        return Cause.PORT_CLOSED, f"{result.dst} answered with a TCP reset: the host is reachable but nothing listens on that port"

    if ev.path_down is not None:
        return Cause.LINK_DOWN, f"the {what} could not get through: {ev.path_down}"

    out = ev.link(ev.src, ev.sender_route.dev)
    if out is not None and not (out.up and out.carrier):
        peer = topo.peer(ev.src, out.name)
        where = f"{ev.src}'s {out.name} is {out.state}"
        if out.up and peer:
            where += f": its peer {peer[1]} in {peer[0]} is down"
        return Cause.LINK_DOWN, f"the {what} could not leave: {where}"

    if ev.return_route is not None and not ev.return_route.found and ev.target is not None:
        arrived_on = _arrival_dev(ev, ev.target)
        on = f" on {arrived_on}" if arrived_on else ""
        how = " and the reverse-path filter dropped it" if ev.delta(ev.target, "TcpExt.IPReversePathFilter") else ""
        arrived = ev.delta(ev.target, "Icmp.InEchos") or ev.delta(ev.target, "Tcp.InSegs") or ev.delta(ev.target, "TcpExt.IPReversePathFilter") or arrived_on
        if arrived:
            return Cause.NO_RETURN_ROUTE, f"the {what} reached {ev.target}{on}{how}, but {ev.target} has no route back to {ev.request_src}"

    drops = [(ns, c) for ns, c in ev.drops() if not (ns == ev.src and c == "Ip.OutNoRoutes")]
    if drops:
        ns, counter = drops[0]
        why = DROP_COUNTERS[counter].format(ns=ns)
        via = f" via {ev.sender_route.via}" if ev.sender_route.via else ""
        if _is_default(ev, topo):
            return Cause.LOST_VIA_DEFAULT_ROUTE, f"the {what} left {ev.src} by the default route{via} and was dropped in {ns}: {why} ({counter})"
        return Cause.NO_ANSWER, f"the {what} was dropped in {ns}: {why} ({counter})"

    unresolved = _unresolved_neighbour(ev, result)
    if unresolved is not None or (result.probe == "arp" and result.outcome is Outcome.TIMEOUT):
        dev = result.dst.split(" on ")[-1] if result.probe == "arp" else ev.sender_route.dev
        hop = result.dst.split(" on ")[0] if result.probe == "arp" else (ev.sender_route.via or result.dst)
        cut = _cut_off(ev, topo, hop)
        if cut is not None:
            return cut
        heard = sorted({s.ns for s in ev.seen(kind="arp-request", direction="in")})
        reached = f"; the request reached {', '.join(heard)}, where nobody has {hop}" if heard else "; no other namespace heard the request"
        return Cause.NO_ARP_ANSWER, f"nobody answered ARP for {hop} on {ev.src}'s {dev}{reached}"

    if result.outcome is Outcome.ICMP_ERROR and result.icmp is not None:
        return Cause.ICMP_UNREACHABLE, f"{result.icmp} for the {what} from {ev.src}"

    if _is_default(ev, topo) and (ev.target is None or not ev.seen(ns=ev.target, direction="in")):
        gw = f" via {ev.sender_route.via}" if ev.sender_route.via else ""
        return Cause.LOST_VIA_DEFAULT_ROUTE, (
            f"{ev.src} has no specific route to {result.dst}: the {what} left by the default route{gw} "
            f"on {ev.sender_route.dev} and never arrived anywhere that answers"
        )
    arrived_on = _arrival_dev(ev, ev.target) if ev.target is not None else None
    if arrived_on is not None:
        return Cause.NO_ANSWER, f"the {what} reached {ev.target} on {arrived_on} but no answer came back"
    return Cause.NO_ANSWER, f"no answer to the {what} from {ev.src} to {result.dst} within the deadline"


def _success(result: Result, ev: Evidence) -> str:
    if result.probe == "arp":
        return f"{result.dst.split(' on ')[0]} is at {result.mac}"
    return f"{result.probe} from {ev.src} to {result.dst} succeeded in {result.elapsed * 1000:.1f} ms"


def _is_loopback(dst: str) -> bool:
    try:
        return ipaddress.ip_address(dst.split(":")[0]).is_loopback
    except ValueError:
        return False


def _lo_up(ev: Evidence, ns: str) -> bool:
    lo = ev.link(ns, "lo")
    return lo is not None and lo.up


def _net_hint(dst: str) -> str:
    try:
        return str(ipaddress.ip_network(f"{dst.split(':')[0]}/24", strict=False))
    except ValueError:
        return dst


def _down_link_on_subnet(ev: Evidence, topo: Topology, ns: str, dst: str) -> str | None:
    try:
        ip = ipaddress.ip_address(dst.split(":")[0])
    except ValueError:
        return None
    for a in topo.addresses:
        link = ev.link(ns, a.dev)
        if a.ns == ns and ip in a.interface.network and link is not None and not link.up:
            return a.dev
    return None


def _cut_off(ev: Evidence, topo: Topology, hop: str) -> tuple[Cause, str] | None:
    """Why the namespace that has *hop* never heard the ARP request: the other
    end of its veth is down, or is not a port of the bridge the request was flooded through."""
    owner = next((a for a in topo.addresses if str(a.interface.ip) == hop), None)
    peer = topo.peer(owner.ns, owner.dev) if owner is not None else None
    far = ev.link(*peer) if peer is not None else None
    if owner is None or peer is None or far is None:
        return None
    wired = f"{hop} is on {owner.ns}'s {owner.dev}, wired to {peer[1]} in {peer[0]}"
    if not far.up:
        return Cause.LINK_DOWN, f"the ARP request for {hop} never reached {owner.ns}: {wired}, which is down; ip -n {peer[0]} link set {peer[1]} up"
    bridges = {b.name for b in topo.bridges if b.ns == peer[0]}
    crossed = sorted({s.dev for s in ev.seen(ns=peer[0], kind="arp-request") if s.dev in bridges and _arp_target(s.frame) == hop} - {far.master})
    if crossed:
        also = f" (it is a port of {far.master})" if far.master else ""
        return Cause.NOT_ON_BRIDGE, (
            f"the ARP request for {hop} was flooded through {crossed[0]} in {peer[0]} but never reached {owner.ns}: "
            f"{wired}, which is not a port of {crossed[0]}{also}; ip -n {peer[0]} link set {peer[1]} master {crossed[0]}"
        )
    return None


def _arrival_dev(ev: Evidence, ns: str) -> str | None:
    """Where the request (an IPv4 packet to the probed address) first entered *ns*."""
    dst = socket.inet_aton(ev.dst) if _is_ipv4(ev.dst) else None
    seen = [s for s in ev.seen(ns=ns, direction="in") if s.frame[12:14] == b"\x08\x00" and s.frame[30:34] == dst and s.dev != "lo"]
    return seen[0].dev if seen else None


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _is_default(ev: Evidence, topo: Topology) -> bool:
    """Did the kernel pick the sender's default route (no more specific one)?"""
    if not ev.sender_route.found or ev.sender_route.type != "unicast":
        return False
    try:
        dst = ipaddress.ip_address(ev.dst)
    except ValueError:
        return False
    specific = [r for r in topo.routes if r.ns == ev.src and r.dst != "default" and dst in r.network]
    connected = [a for a in topo.addresses if a.ns == ev.src and dst in a.interface.network]
    has_default = any(r.ns == ev.src and r.dst == "default" for r in topo.routes)
    return has_default and not specific and not connected


def _unresolved_neighbour(ev: Evidence, result: Result):
    hop = ev.sender_route.via or result.dst
    for n in ev.neighbours.get(ev.src, []):
        if n.dst == hop and ("INCOMPLETE" in n.state or "FAILED" in n.state):
            return n
    if result.outcome is Outcome.ICMP_ERROR and result.icmp is not None and result.icmp.type == 3 and result.icmp.code == 1:
        if ev.sender_route.src == result.icmp.source:
            return hop
    return None
