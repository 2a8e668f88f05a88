"""A probe's result, explained: a cause, where, and one sentence built from what was read.

A finding (nslab.diagnosis.observations) explains the failure when the kernel
showed one. Otherwise the explanation comes from the probe's own answer (an
errno, an ICMP error, a reset) and the frames the lab saw, in this order:
the sender's kernel refused, an answer came back that says why, the next hop
was never resolved, the request arrived and nothing came back, it left and
arrived nowhere.
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
from typing import Callable

from nslab.diagnosis import frames, ipv6
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.evidence import Evidence
from nslab.diagnosis.observations import TELLING_REASONS, Context, Finding, cut_off, delivered_to, explain_drop, forwarding, left_by_default
from nslab.kernel import listeners
from nslab.probes import packets
from nslab.probes.result import Cause, Outcome, Result, Where


def explain(result: Result, ev: Evidence, ctx: Context, finding: Finding | None) -> Finding | None:
    """What the result means; None for a success."""
    if result.outcome is Outcome.REPLY:
        return None
    for rule in (ipv6.local_error, _local_error, ipv6.icmp_error, _icmp_error, _refused):
        found = rule(result, ev, ctx)
        if found is not None:
            return found
    return finding or ipv6.tentative_source(ctx) or _unresolved(ev, ctx) or _silence(ev, ctx)


def _local_error(result: Result, ev: Evidence, ctx: Context) -> Finding | None:
    if result.outcome is not Outcome.LOCAL_ERROR:
        return None
    src, dst = ev.src, ev.dst
    if result.errno == errno_mod.ENETUNREACH:
        lo = ctx.reads.link(src, "lo")
        if _is_loopback(dst) and lo is not None and not lo.up:
            return Finding(Cause.LOOPBACK_DOWN, Where(src, "lo"), f"lo is down in {src}, so {dst} is not even a local address there; bring it up: ip link set lo up")
        down = _down_link_on_subnet(ctx, src, dst)
        if down:
            return Finding(Cause.LINK_DOWN, Where(src, down), f"{src} has no route to {dst} because {down} is down (its connected route went with it); ip link set {down} up")
        return Finding(Cause.NO_ROUTE_AT_SENDER, Where(src), f"{src} has no route to {dst} (ENETUNREACH at once): add one, e.g. ip route add {_net_hint(dst)} dev ... or a default route")
    if result.errno == errno_mod.EMSGSIZE:
        out = ctx.out_link
        mtu = f" (mtu {out.mtu})" if out else ""
        return Finding(Cause.TOO_BIG, Where(src, ev.sender_route.dev), f"the {ctx.what} is larger than {src}'s {ev.sender_route.dev}{mtu} allows and may not be fragmented (DF): EMSGSIZE at once")
    if result.errno == errno_mod.EPERM:
        refused = next((d for d in ev.drops if d.ns == src and d.reason == "NETFILTER_DROP"), None)
        if refused is not None:
            return Finding(Cause.FILTERED_BY_RULE, Where(src, refused.dev), f"a firewall rule in {src} dropped the {ctx.what} on its way out ({refused.reason}): sendto() failed with EPERM", refused.reason)
    if result.errno == errno_mod.EHOSTUNREACH:
        return Finding(Cause.NO_ARP_ANSWER, Where(src, ev.sender_route.dev), f"{src} could not resolve {ctx.flow.hops[0]} on {ev.sender_route.dev} (EHOSTUNREACH)")
    if result.errno == errno_mod.ENOBUFS:
        return Finding(
            Cause.UNKNOWN,
            Where(src, ev.sender_route.dev),
            f"{src}'s kernel could not queue the {ctx.what} (ENOBUFS): the neighbour table, which all namespaces share, is full "
            "(net.ipv4.neigh.default.gc_thresh3, set in the host's namespace); fewer neighbours at once, or flush them",
        )
    return Finding(Cause.UNKNOWN, Where(src), f"{src}'s kernel refused the {ctx.what}: {result.errno_name}")


def _icmp_error(result: Result, ev: Evidence, ctx: Context) -> Finding | None:
    if result.outcome is not Outcome.ICMP_ERROR or result.icmp is None:
        return None
    icmp = result.icmp
    origin = _origin(ev, lambda p: p.quoted and p.icmp_type == icmp.type) or (ev.src, None)
    where = Where(*origin)
    filtered = next((d for d in ev.drops if d.reason == "NETFILTER_DROP"), None)
    if icmp.type == packets.UNREACHABLE and icmp.code == 4:
        return Finding(Cause.TOO_BIG, where, f"{icmp} for the {ctx.what}: the next link from {origin[0]} is too small and DF is set")
    if filtered is not None:
        return Finding(Cause.REJECTED_BY_RULE, Where(filtered.ns, filtered.dev), f"refused by a firewall rule in {filtered.ns} ({icmp})", filtered.reason)
    if icmp.type == packets.UNREACHABLE and (icmp.code in (9, 10, 13) or (icmp.code == 3 and ctx.flow.probe == "ping")):
        return Finding(Cause.REJECTED_BY_RULE, where, f"refused by a firewall rule ({icmp})")
    failed = next((d for d in ev.drops if d.reason == "NEIGH_FAILED"), None)
    if icmp.type == packets.UNREACHABLE and icmp.code == 1 and (failed is not None or origin[0] == ev.src):
        at = Where(failed.ns, failed.dev) if failed else Where(ev.src, ev.sender_route.dev)
        return Finding(Cause.NO_ARP_ANSWER, at, f"{at.ns} could not resolve the next hop on {at.dev} ({icmp})", failed.reason if failed else None)
    return Finding(Cause.ICMP_UNREACHABLE, where, f"{icmp} for the {ctx.what} from {ev.src}")


def _refused(result: Result, ev: Evidence, ctx: Context) -> Finding | None:
    if result.outcome is not Outcome.REFUSED:
        return None
    filtered = next((d for d in ev.drops if d.reason == "NETFILTER_DROP"), None)
    icmp_origin = _origin(ev, lambda p: p.quoted and p.icmp_type == packets.UNREACHABLE)
    if icmp_origin is not None:
        at = Where(filtered.ns, filtered.dev) if filtered else Where(*icmp_origin)
        return Finding(Cause.REJECTED_BY_RULE, at, f"refused by a firewall rule in {at.ns} (ICMP port unreachable from {icmp_origin[0]}), not by a TCP reset", filtered.reason if filtered else None)
    if filtered is not None:
        return Finding(Cause.REJECTED_BY_RULE, Where(filtered.ns, filtered.dev), f"refused by a firewall rule in {filtered.ns} (it dropped the SYN and answered with a TCP reset)", filtered.reason)
    reset = _origin(ev, lambda p: p.proto == packets.TCP and ctx.flow.is_answer(p) and bool((p.tcp_flags or 0) & 0x04))
    target = delivered_to(ctx.reads, ctx.flow, ev.sightings)
    ns = reset[0] if reset else (target[0] if target else None)
    if ns is None:
        return Finding(Cause.PORT_CLOSED, Where(ev.src), f"{ev.dst} answered with a TCP reset")
    port = target[2].dport if target and target[0] == ns else None
    arrival = target[1] if target and target[0] == ns else (reset[1] if reset else None)
    if port is not None and listeners.listening(ctx.reads.handle(ns).fd, port):
        return Finding(Cause.REJECTED_BY_RULE, Where(ns, arrival), f"refused by a firewall rule in {ns}: a TCP reset came back although {ns} listens on {port}")
    return Finding(Cause.PORT_CLOSED, Where(ns, arrival), f"{ns} answered with a TCP reset: it is reachable but nothing listens on port {port or '?'}")


def _unresolved(ev: Evidence, ctx: Context) -> Finding | None:
    """The next hop was never resolved (the sender's neighbour entry, as the kernel reports it)."""
    hop, dev = ctx.flow.hops[0], ev.sender_route.dev
    entry = next((n for n in ev.neighbours.get(ev.src, []) if n.dst == hop), None)
    if not ctx.flow.resolves and (entry is None or not ("INCOMPLETE" in entry.state or "FAILED" in entry.state)):
        return None
    segment = ctx.reads.hosts_on(ev.src, dev) if dev else None
    found = cut_off(ctx, hop, segment[1] if segment else set())
    if found is not None:
        return found
    heard = sorted({s.ns for s in ev.sightings if s.kind in frames.SOLICITS and s.direction == "in"})
    proxies = sorted(ns for ns, d in (segment[0] if segment else ()) if max(ctx.reads.conf(ns, d, "proxy_arp")) > 0)
    text = f"nobody answered {frames.resolver(hop)} for {hop} on {ev.src}'s {dev}"
    text += f"; the request reached {', '.join(heard)}, where nobody has {hop}" if heard else "; no other namespace heard the request"
    if proxies:
        text += f" (proxy_arp is on in {', '.join(proxies)}, which did not answer within the deadline)"
    return Finding(Cause.NO_ARP_ANSWER, Where(ev.src, dev), text)


def _silence(ev: Evidence, ctx: Context) -> Finding:
    """Nothing came back and no rule settled it: a drop the kernel explained, else where
    the request (or its answer) was last seen, with what can be read there."""
    telling = next((d for d in ev.drops if d.reason in TELLING_REASONS and d.packet is not None and (ctx.flow.is_request(d.packet) or ctx.flow.is_answer(d.packet))), None)
    if telling is not None:
        return explain_drop(ctx, telling.ns, telling.dev, telling.reason, telling.packet)
    target = delivered_to(ctx.reads, ctx.flow, ev.sightings)
    if target is not None:
        ns, dev, packet = target
        back = ctx.reads.route_get(ns, packet.src, packet.dst)
        ev.return_route = back
        if not back.found:
            return Finding(Cause.NO_RETURN_ROUTE, Where(ns, dev), f"the {ctx.what} reached {ns} on {dev}, but {ns} has no route back to {packet.src}")
        answer = _stalled(ev, ctx.flow.is_answer)
        if answer is not None and answer.ns not in (ns, ev.src):
            first = f"the {ctx.what} reached {ns} on {dev}; its answer"
            return _not_onward(ctx, answer, first) or Finding(Cause.NO_ANSWER, Where(answer.ns, answer.dev), f"{first} reached {answer.ns} on {answer.dev} and went no further")
        return Finding(Cause.NO_ANSWER, Where(ns, dev), f"the {ctx.what} reached {ns} on {dev} but no answer came back")
    drop = next((d for d in ev.drops if d.packet is not None and ctx.flow.is_request(d.packet)), None)
    stalled = _stalled(ev, ctx.flow.is_request)
    if drop is None and stalled is not None and stalled.ns != ev.src and not ctx.reads.is_local(stalled.ns, stalled.packet.dst):
        found = _not_onward(ctx, stalled, f"the {ctx.what}")
        if found is not None:
            return found
    arrivals = [s for s in ev.sightings if s.direction == "in" and s.ns != ev.src and s.packet and ctx.flow.is_request(s.packet)]
    last = (drop.ns, drop.dev) if drop else ((arrivals[-1].ns, arrivals[-1].dev) if arrivals else (ev.src, ev.sender_route.dev))
    if ev.sender_route.via and left_by_default(ctx):
        return Finding(
            Cause.LOST_VIA_DEFAULT_ROUTE,
            Where(*last),
            f"{ev.src} has no specific route to {ev.dst}: the {ctx.what} left by the default route via {ev.sender_route.via} on {ev.sender_route.dev}"
            + (f", was last seen in {last[0]} on {last[1]}" if arrivals or drop else "")
            + " and never arrived anywhere that answers",
            drop.reason if drop else None,
        )
    if drop is not None:
        return Finding(Cause.NO_ANSWER, Where(drop.ns, drop.dev), f"the {ctx.what} was dropped in {drop.ns} on {drop.dev}: {drop.reason}", drop.reason)
    if arrivals:
        return Finding(Cause.NO_ANSWER, Where(*last), f"the {ctx.what} reached {last[0]} on {last[1]} and went no further; no answer within the deadline")
    return Finding(Cause.NO_ANSWER, Where(ev.src, ev.sender_route.dev), f"no answer to the {ctx.what} from {ev.src} to {ev.dst} within the deadline")


def _not_onward(ctx: Context, s: Sighting, what: str) -> Finding | None:
    """Why a packet that entered a router was not seen leaving it, from what can be read
    there: forwarding off, or no route to its destination (an ICMP error it would send may
    be rate-limited); None if neither."""
    ns, dev, dst = s.ns, s.dev, s.packet.dst
    stopped, off, fix = forwarding(ctx, ns, dev)
    if stopped:
        return Finding(Cause.FORWARDING_OFF, Where(ns, dev), f"{what} reached {ns} on {dev} and was not forwarded: {off} there (ip netns exec {ns} {fix})")
    if not ctx.reads.route_get(ns, dst).found:
        return Finding(Cause.NO_ANSWER, Where(ns, dev), f"{what} reached {ns} on {dev} and went no further: {ns} has no route to {dst}")
    return None


def _stalled(ev: Evidence, which: Callable[[packets.Packet], bool]) -> Sighting | None:
    """The last sighting of a packet matching *which* entering a namespace it was not then
    seen leaving: where the captures lost it (None if it was seen leaving every one)."""
    for i in range(len(ev.sightings) - 1, -1, -1):
        s = ev.sightings[i]
        if s.packet is not None and s.direction == "in" and s.dev != "lo" and which(s.packet):
            later = ev.sightings[i + 1 :]
            left = any(o.ns == s.ns and o.direction == "out" and o.packet is not None and which(o.packet) for o in later)
            return None if left else s
    return None


def _origin(ev: Evidence, which) -> tuple[str, str] | None:
    """Where a frame matching *which* was first seen leaving a namespace it had not entered: who made it."""
    entered: set[tuple[str, tuple]] = set()
    for s in ev.sightings:
        p = s.packet
        if p is None or not which(p):
            continue
        key = (p.ident, p.proto, p.icmp_type)
        if s.direction == "in":
            entered.add((s.ns, key))
        elif (s.ns, key) not in entered:
            return s.ns, s.dev
    return None


def _is_loopback(dst: str) -> bool:
    try:
        return ipaddress.ip_address(dst.split(":")[0]).is_loopback
    except ValueError:
        return False


def _net_hint(dst: str) -> str:
    try:
        return str(ipaddress.ip_network(f"{dst.split(':')[0]}/24", strict=False))
    except ValueError:
        return dst


def _down_link_on_subnet(ctx: Context, ns: str, dst: str) -> str | None:
    """An interface that is down and holds an address whose subnet has *dst* (the kernel's addresses and links)."""
    try:
        ip = ipaddress.ip_address(dst.split(":")[0])
    except ValueError:
        return None
    for a in ctx.reads.kernel.addresses(ctx.reads.handle(ns), names=ctx.reads.names(ns)):
        link = ctx.reads.link(ns, a.dev)
        if link is not None and not link.up and ip in ipaddress.ip_interface(a.cidr).network:
            return a.dev
    return None
