"""Why a probe failed: the one place its cause is decided, from evidence gathered and
no longer changed.

In order of what the kernel said most directly:
1. the sender's kernel refused at once (an errno): the sender's own decision;
2. an answer came back that says why (an ICMP error, a TCP reset): the decision
   of the namespace that sent it, for this packet;
3. the kernel dropped this packet or its answer and gave its reason: the stage
   that reason names, at that namespace and interface, explains it (a
   `NO_SOCKET` is a socket lookup, never a firewall rule);
4. otherwise the packet's way is walked through the kernel's decisions
   (`walk.py`), the request's and then its answer's, and checked against where
   the captures saw them; the first stage that stops it explains it.
IPv6's own decisions (nslab/diagnosis/ipv6.py: tentative or failed addresses,
IPv6 disabled, forwarding by the `all` switch, NDP asked on the wrong interface)
are asked first, as they have no IPv4 counterpart in the stages. When nothing
read explains the silence, the finding says what was read and that the cause
is unknown: never a guess.
"""

from __future__ import annotations

import dataclasses
import errno as errno_mod
import ipaddress
from typing import Callable, overload

from nslab.diagnosis import frames, ipv6
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.evidence import DropSeen, Evidence
from nslab.diagnosis.observations import Context, Finding, delivered_to
from nslab.diagnosis.stages import At, address, cmd, combined, link, link_up, local, neighbour, netfilter, queue, route_name, routing, set_sysctl, sysctl
from nslab.diagnosis.walk import Walked, delivered, walk
from nslab.probes import packets
from nslab.probes.result import Cause, Claim, Outcome, Remedy, Result, Where

ANSWER_WHAT = {"ping": "echo reply", "tcp": "TCP answer", "http": "TCP answer"}
COUNTED = ("Ip.InAddrErrors", "TcpExt.IPReversePathFilter")  # drop counters only an incoming packet moves


def explain(result: Result, ev: Evidence, ctx: Context) -> Finding | None:
    """What the result means; None for a success."""
    if result.outcome is Outcome.REPLY:
        return None
    if result.outcome is Outcome.LOCAL_ERROR:
        return ipv6.local_error(result, ev, ctx) or _at_sender(result, ev, ctx)
    if result.outcome is Outcome.ICMP_ERROR and result.icmp is not None:
        return ipv6.icmp_error(result, ev, ctx) or _icmp_error(result, ev, ctx)
    if result.outcome is Outcome.REFUSED:
        return _reset(ev, ctx)
    first = next((found for rule in ipv6.RULES if (found := rule(ctx)) is not None), None)
    if first is not None and first.cause is Cause.FORWARDING_OFF and _drop_of(ev, first.where.ns, request=False, ctx=ctx) is None:
        return _via_default(ev, ctx, first, False)  # a host that does not forward the request: did the sender's lost route send it there?
    if first is not None:
        return first
    if ctx.flow.resolves:
        return _arp(ev, ctx)
    return _by_reason(ev, ctx) or ipv6.tentative_source(ctx) or _by_walk(ev, ctx)


# -- the packet -----------------------------------------------------------------------------
def request_at(ctx: Context, ns: str, src: str, dst: str, iif: str | None) -> At:
    return At(ns, src, dst, iif, ctx.what, _proto(ctx), _port(ctx.flow.dst))


def answer_at(ctx: Context, ns: str, src: str, dst: str, iif: str | None) -> At:
    return At(ns, src, dst, iif, ANSWER_WHAT.get(ctx.flow.probe, "answer"), _proto(ctx))


def _proto(ctx: Context) -> str:
    return "tcp" if ctx.flow.probe in ("tcp", "http") else "icmp"


def _port(dst: str) -> int | None:
    head, _, port = dst.rpartition(":")
    return int(port) if head and port.isdigit() and "." in head else None


def _address(dst: str) -> str:
    return dst.rsplit(":", 1)[0] if _port(dst) is not None else dst


def _request_in(ev: Evidence, ctx: Context, ns: str, arrival: Sighting | None) -> At:
    """The request as it entered *ns* (after any NAT on the way), else as it was sent."""
    if arrival is None or arrival.packet is None:
        return _first_request(ev, ctx) if ns == ev.src else request_at(ctx, ns, ev.request_src or "", _address(ctx.flow.dst), None)
    p = arrival.packet
    return At(ns, p.src, p.dst, arrival.dev, ctx.what, _proto(ctx), p.dport if p.proto == packets.TCP else None)


def _first_request(ev: Evidence, ctx: Context) -> At:
    src = ev.request_src or ev.sender_route.src or ""
    return request_at(ctx, ev.src, src, _address(ctx.flow.dst), None)


# -- 1. the sender refused ---------------------------------------------------------------------
def _at_sender(result: Result, ev: Evidence, ctx: Context) -> Finding:
    at = _first_request(ev, ctx)
    code = result.errno
    if code == errno_mod.ENETUNREACH and _is_loopback(at.dst):
        lo = ctx.reads.link(at.ns, "lo")
        if lo is not None and not lo.up:
            return Finding(
                Cause.LOOPBACK_DOWN,
                Where(at.ns, "lo"),
                f"lo is down in {at.ns}, so {at.dst} is not even a local address there; bring it up: {cmd(at.ns, 'ip link set lo up')}",
                claims=(Claim(at.ns, "link lo", "down", dev="lo", blames=True),),
                fixes=(link_up(ctx.reads, at.ns, "lo"),),
            )
    if code == errno_mod.EMSGSIZE and ev.sender_route.dev:
        return link.too_big(ctx.reads, at, ev.sender_route.dev)
    if code == errno_mod.EPERM:
        found = netfilter.dropped(ctx.reads, at, "made", reason=_reason_in(ev, at.ns))
        if found is not None:
            return _placed(found, at.ns, ev.sender_route.dev)
    if code == errno_mod.ENOBUFS:
        drop = _drop_of(ev, at.ns, request=True, ctx=ctx)
        if drop is not None and drop.reason in queue.REASONS:
            return queue.dropped(at.ns, drop.dev, drop.reason, f"{at.ns}'s kernel could not queue the {ctx.what} (ENOBUFS) and dropped it", drop.packet.version if drop.packet else 4)
        return queue.refused(at.ns, ev.sender_route.dev, ctx.what)
    decision = routing.decide(ctx.reads, at)
    if isinstance(decision, Finding):
        return decision
    if code == errno_mod.EHOSTUNREACH and decision.dev:
        return neighbour.unanswered(ctx.reads, at, decision.dev, decision.hop or at.dst, None)
    return Finding(Cause.UNKNOWN, Where(at.ns), f"{at.ns}'s kernel refused the {ctx.what} ({result.errno_name}), though its route lookup for {at.dst} succeeds (dev {decision.dev}); the cause is unknown")


# -- 2. an answer that says why --------------------------------------------------------------
def _icmp_error(result: Result, ev: Evidence, ctx: Context) -> Finding:
    icmp = result.icmp
    assert icmp is not None
    origin = _origin(ev, lambda p: p.quoted and p.icmp_type == icmp.type) or _holder_of(ctx, icmp.source) or (ev.src, None)
    ns = origin[0]
    arrival = _arrival(ev, ctx, ns)
    at = _request_in(ev, ctx, ns, arrival)
    said = f"{icmp} for the {ctx.what}"
    if icmp.type == packets.UNREACHABLE and icmp.code == 4:
        out = ctx.reads.route_get(ns, at.dst)
        return _prefixed(link.too_big(ctx.reads, at, out.dev) if out.dev else None, said) or Finding(Cause.TOO_BIG, Where(*origin), f"{said}: the next link from {ns} is too small and DF is set")
    drop = _drop_of(ev, ns, request=True, ctx=ctx)
    if drop is not None and drop.reason == "NETFILTER_DROP":
        how = "local" if ctx.reads.is_local(ns, at.dst) else ("made" if ns == ev.src else "forwarded")
        found = netfilter.dropped(ctx.reads, at, how, reason=drop.reason, rejected=True)
        if found is not None:
            return _prefixed(found, said)
    if ns != ev.src and at.iif is None and ev.request_src:
        # the request's way into ns was not seen (ns not watched): it came in, most likely, on the
        # device ns routes its sender by; the kernel's input lookup there, source and all (a policy rule)
        back = ctx.reads.route_get(ns, ev.request_src)
        guessed = dataclasses.replace(at, src=ev.request_src, iif=back.dev) if back.dev else None
        decision = routing.decide(ctx.reads, guessed) if guessed is not None else None
        if isinstance(decision, Finding) and decision.cause is Cause.ICMP_UNREACHABLE:
            return _prefixed(decision, f"{said}; asked as it would have come into {ns} (on {back.dev}, the way {ns} routes {ev.request_src}; not seen)")
    if ns != ev.src or at.iif is not None:
        # where the request's way into ns was not seen, ask the kernel by destination alone: an
        # output lookup from a source ns does not hold answers something else (ENETUNREACH)
        decision = routing.decide(ctx.reads, at if at.iif is not None or ns == ev.src else dataclasses.replace(at, src=""))
        if isinstance(decision, Finding):
            return _prefixed(_as_icmp(decision), said)
        if icmp.type == packets.UNREACHABLE and icmp.code == 1 and decision.dev and not decision.local:
            return _prefixed(neighbour.unanswered(ctx.reads, at, decision.dev, decision.hop or at.dst, None), said)
    if icmp.type == packets.UNREACHABLE and icmp.code in (3, 9, 10, 13):
        how = "local" if ctx.reads.is_local(ns, at.dst) else "forwarded"
        found = netfilter.dropped(ctx.reads, at, how, reason=None, rejected=True)
        if found is not None and "reject" in " ".join(c.value for c in found.claims).lower():
            return _prefixed(found, said)
    return Finding(Cause.ICMP_UNREACHABLE, Where(*origin), f"{said} came from {ns}; what was read there (its route lookup, its ruleset) does not say why")


def _as_icmp(found: Finding) -> Finding:
    """A routing refusal that answered with an ICMP error is that, whatever the route type."""
    if found.cause in (Cause.NO_ROUTE_AT_SENDER, Cause.NO_ANSWER):
        return Finding(Cause.ICMP_UNREACHABLE, found.where, found.text, found.reason, found.claims, found.fixes)
    return found


def _reset(ev: Evidence, ctx: Context) -> Finding:
    reset = _origin(ev, lambda p: p.proto == packets.TCP and ctx.flow.is_answer(p) and bool((p.tcp_flags or 0) & 0x04))
    icmp_origin = _origin(ev, lambda p: p.quoted and p.icmp_type == packets.UNREACHABLE)
    target = delivered_to(ctx.reads, ctx.flow, ev.sightings)
    ns = reset[0] if reset else icmp_origin[0] if icmp_origin else target[0] if target else None
    if ns is None:
        return Finding(Cause.PORT_CLOSED, Where(ev.src), f"{_address(ctx.flow.dst)} answered with a TCP reset; no capture saw where it came from")
    arrival = _arrival(ev, ctx, ns)
    at = _request_in(ev, ctx, ns, arrival)
    drop = _drop_of(ev, ns, request=True, ctx=ctx)
    reason = drop.reason if drop else None
    made_here = ns == ev.src and arrival is None
    if reason == "NETFILTER_DROP" or icmp_origin is not None or made_here:
        how = "made" if made_here else "local" if ctx.reads.is_local(ns, at.dst) else "forwarded"
        found = netfilter.dropped(ctx.reads, at, how, reason=reason, rejected=True)
        if found is not None:
            return _placed(found, ns, drop.dev if drop else ev.sender_route.dev if made_here else at.iif)
    if at.dport is None:
        return Finding(Cause.PORT_CLOSED, Where(ns, at.iif), f"{ns} answered the {ctx.what} with a TCP reset; the port it arrived for was not seen, so its sockets cannot be checked")
    if ctx.reads.is_local(ns, at.dst):
        found = local.no_listener(ctx.reads, at, reason=reason)
        if found is not None:
            return found
        found = netfilter.dropped(ctx.reads, at, "local", reason=reason, rejected=True)
        if found is not None and any("reset" in c.value for c in found.claims):
            return found
        return Finding(Cause.PORT_CLOSED, Where(ns, at.iif), f"{ns} answered the {ctx.what} with a TCP reset although a socket there listens on {at.dst}:{at.dport}; the cause is unknown")
    found = netfilter.dropped(ctx.reads, at, "forwarded", reason=reason, rejected=True)
    return found or Finding(Cause.PORT_CLOSED, Where(ns, at.iif), f"{ns}, which does not hold {at.dst}, answered the {ctx.what} with a TCP reset; the cause is unknown")


# -- 3. the kernel's drop reason leads --------------------------------------------------------
def _by_reason(ev: Evidence, ctx: Context) -> Finding | None:
    """The first drop of this packet or its answer whose reason the kernel gave, explained by
    the stage that reason names, at that namespace and interface."""
    for drop in ev.drops:
        p = drop.packet
        if p is None or not (ctx.flow.is_request(p) or ctx.flow.is_answer(p)):
            continue
        found = _stage_of(ev, ctx, drop)
        if found is not None:
            return found
    return None


def _stage_of(ev: Evidence, ctx: Context, drop: DropSeen) -> Finding | None:
    p = drop.packet
    assert p is not None
    ns, dev, reason = drop.ns, drop.dev, drop.reason
    is_answer = ctx.flow.is_answer(p)
    made_here = (ns == ev.src and not is_answer) or (is_answer and ns == ev.target)
    iif = None if made_here else dev
    at = answer_at(ctx, ns, p.src, p.dst, iif) if is_answer else request_at(ctx, ns, p.src, p.dst, iif)
    if p.proto == packets.TCP and not is_answer:
        at = At(ns, p.src, p.dst, iif, at.what, "tcp", p.dport)
    said = f"dropped in {ns}" + (f" on {dev}" if dev else "") + f": {reason}"
    if reason in ("IP_RPFILTER", "IP_INADDRERRORS", "IP_INNOROUTES", "IP_OUTNOROUTES"):
        decision = routing.decide(ctx.reads, at)
        if isinstance(decision, Finding):
            return _with_reason(_via_default(ev, ctx, _answer_cause(decision, is_answer, at, ev), is_answer, p), reason, f"the {at.what} was {said}")
        return _unexplained(at, said, reason)
    if reason == "NETFILTER_DROP":
        here = ctx.reads.is_local(ns, p.dst)
        if dev == "lo" or (made_here and here):
            how = "looped"  # made here for an address here (lo carries nothing else): out by lo and back in
        else:
            how = "made" if made_here else ("local" if here else "forwarded")
        found = netfilter.dropped(ctx.reads, at, how, reason=reason)
        return _placed(found, ns, dev) if found else _unexplained(at, said + "; no chain on its hooks there drops it now", reason)
    if reason == "NO_SOCKET":
        return local.no_listener(ctx.reads, at, reason=reason) or _unexplained(at, said, reason)
    if reason == "PKT_TOO_BIG":
        out = ctx.reads.route_get(ns, p.dst)
        return _with_reason(link.too_big(ctx.reads, at, out.dev), reason, f"the {at.what} was {said}") if out.dev else _unexplained(at, said, reason)
    if reason == "NEIGH_FAILED":
        out = ctx.reads.route_get(ns, p.dst)
        if out.dev:
            return _with_reason(neighbour.unanswered(ctx.reads, at, out.dev, out.via or p.dst, _asked(ev, ctx)), reason, f"the {at.what} was {said}")
    if reason == "OTHERHOST":
        return _misaddressed(ev, ctx, reason) or _wrong_mac(ev, ctx, ns, dev, p)
    if reason == "IP_LOCALNET":
        lost = routing.local_rule_missing(ctx.reads, ev.src, p.dst, ctx.what) if ns != ev.src and not is_answer else None
        if lost is not None:
            return lost
        value, keys = combined(ctx.reads, ns, dev or "", "route_localnet", "or")
        key = f"net.ipv4.conf.{dev}.route_localnet"
        return Finding(
            Cause.NO_ANSWER,
            Where(ns, dev),
            f"the {at.what} to {p.dst}, a loopback address, came into {ns} on {dev} and was {said}: route_localnet is off there ({key}={ctx.reads.sysctl(ns, key)})",
            reason,
            claims=(sysctl(ctx.reads, ns, key, blames=True, dev=dev),),
            fixes=(set_sysctl(ctx.reads, ns, key, 1, dev),),
        )
    if "VLAN" in reason:
        return Finding(Cause.BRIDGE_VLAN, Where(ns, dev), f"the {at.what} was dropped by the bridge's VLAN filter in {ns} on {dev} ({reason})", reason)
    if reason in queue.REASONS:
        device = ctx.reads.link(ns, dev) if dev else None
        if dev and device is not None and not device.up:  # a device that is down queues nothing (its noop qdisc): not congestion
            return _with_reason(_down_queue(ctx, at, ns, dev), reason, f"the {at.what} was {said}")
        return queue.dropped(ns, dev, reason, f"the {at.what} was {said}", p.version)
    return None  # a reason no stage names (e.g. NOT_SPECIFIED): the walk decides


def _down_queue(ctx: Context, at: At, ns: str, dev: str) -> Finding:
    """The packet was queued on *dev*, which is down. Sent to lo because *ns* holds its destination
    itself, where the lab gives that address to another namespace: the address is what to change."""
    taken = address.stray(ctx.reads, ns, at.dst) if dev == "lo" else None
    if taken is not None:
        held = taken.claims[0].dev
        return Finding(
            Cause.NO_ANSWER,
            Where(ns, held),
            f"{taken.words}, so its kernel delivers the {at.what} by lo, which is down; {cmd(ns, taken.fixes[0].command)}",
            claims=(*taken.claims, Claim(ns, "link lo", "down", dev="lo")),
            fixes=taken.fixes,
        )
    return link.down(ctx.reads, ns, dev, f"{ns}'s {dev} is down, and a device that is down sends nothing it is given")


def _answer_cause(found: Finding, is_answer: bool, at: At, ev: Evidence) -> Finding:
    """A routing refusal of the answer where it was made is the missing way back."""
    if is_answer and at.iif is None and found.cause in (Cause.NO_ROUTE_AT_SENDER, Cause.NO_ANSWER, Cause.UNKNOWN):
        text = f"the {_request_name(at)} reached {at.ns}, but {at.ns} cannot send the {at.what} back to {at.dst}: {found.text}"
        return Finding(Cause.NO_RETURN_ROUTE, Where(at.ns, _arrival_dev(ev, at.ns)), text, found.reason, found.claims, found.fixes)
    return found


def _via_default(ev: Evidence, ctx: Context, found: Finding, is_answer: bool, p: packets.Packet | None = None) -> Finding:
    """A packet that its sender (the prober, or for an answer the namespace that answered) sent by
    its default route only, to a namespace that neither forwards nor has a route for it (a plain
    host, not a router): the sender lacks the specific route (as the tutorials tell it). A
    forwarding router without the route is blamed itself."""
    if is_answer:
        target = _delivered(ev, ctx)
        sender, dst = (target[0], p.dst) if target and p is not None else (None, "")
    else:
        sender, dst = ev.src, _address(ctx.flow.dst)
    back = _sent_back_by(ev, found.where.ns, p) if sender == found.where.ns and p is not None else None
    if back is not None:  # it came back where it was made: the one that sent it back is the one to ask
        return _default_only(ctx, found, back, dst, is_answer)
    if sender is None or found.where.ns == sender:
        return found
    if not any(c.value == "no route" for c in found.claims):  # a router that does not forward it: the sender's lost route sent it there
        return _default_only(ctx, found, sender, dst, is_answer) if found.cause is Cause.FORWARDING_OFF and _lost_here_only(ctx, sender, found.where.ns, dst) else found
    if ctx.flow.v6:  # IPv6 forwards by its `all` switch (or force_forwarding), not by IPv4's knobs
        forwards = 0 if ctx.reads.forwarding6(found.where.ns, found.where.dev or "")[0] else 1
    else:
        forwards, _ = combined(ctx.reads, found.where.ns, found.where.dev or "", "forwarding", "dev")
    if forwards != 0 and not _lost_here_only(ctx, sender, found.where.ns, dst):
        return found
    return _default_only(ctx, found, sender, dst, is_answer)


def _lost_here_only(ctx: Context, sender: str, router: str, dst: str) -> bool:
    """The lab gives *sender* a specific route to *dst* that its kernel lacks, and gives the
    forwarding *router* none it lacks: the sender's lost route, not the router, is the fault."""
    lost = routing.lost_route(ctx.reads, sender, dst)
    return lost is not None and route_name(lost.dst) != "default" and routing.lost_route(ctx.reads, router, dst) is None


def _default_only(ctx: Context, found: Finding, sender: str, dst: str, is_answer: bool) -> Finding:
    """*found* stopped a packet that *sender* sent on by its default route alone: where that is all
    *sender* has for *dst*, its missing specific route is what to change."""
    out = ctx.reads.route_get(sender, dst)
    via = out.via
    if not via or any(r.dst != "default" and r.type == "unicast" and r.covers(dst) for r in ctx.reads.routes(sender, 6 if ":" in dst else 4)):
        return found
    lost = routing.lost_route(ctx.reads, sender, dst)
    if lost is not None and route_name(lost.dst) != "default":
        why = routing.why_lost(ctx.reads, sender, lost)
        claims, fixes, words = why.claims, (*why.fixes, *found.fixes), f" ({why.words})"
    else:
        claims, fixes, words = (Claim(sender, f"route {dst} table main", f"only the default route via {via} covers it", dev=out.dev, blames=True),), found.fixes, ""
    context = tuple(dataclasses.replace(c, blames=False) for c in found.claims)  # the router's state: context, not what to change
    what = ANSWER_WHAT.get(ctx.flow.probe, "answer") if is_answer else ctx.what
    return Finding(
        Cause.NO_RETURN_ROUTE if is_answer else Cause.LOST_VIA_DEFAULT_ROUTE,
        found.where,
        f"{sender} has no specific route to {dst}{words}: the {what} left by the default route via {via} on {out.dev}, and {found.text}",
        found.reason,
        (*claims, *context),
        fixes,
    )


def _sent_back_by(ev: Evidence, ns: str, p: packets.Packet) -> str | None:
    """The namespace that routed *p* back into *ns*, which had sent it out: the last one seen
    sending it before its last arrival in *ns*."""
    same = [s for s in ev.sightings if s.packet is not None and not s.packet.quoted and (s.packet.ident, s.packet.proto, s.packet.dst) == (p.ident, p.proto, p.dst)]
    arrivals = [i for i, s in enumerate(same) if s.ns == ns and s.direction == "in"]
    if not arrivals or not any(s.ns == ns and s.direction == "out" for s in same[: arrivals[-1]]):
        return None
    return next((s.ns for s in reversed(same[: arrivals[-1]]) if s.direction == "out" and s.ns != ns), None)


def _request_name(at: At) -> str:
    return "echo request" if at.proto == "icmp" else "TCP SYN"


def _arrival_dev(ev: Evidence, ns: str) -> str | None:
    return next((s.dev for s in ev.sightings if s.ns == ns and s.direction == "in" and s.packet and not s.packet.quoted), None)


def _unexplained(at: At, said: str, reason: str) -> Finding:
    return Finding(Cause.NO_ANSWER, Where(at.ns, at.iif), f"the {at.what} was {said}; what was read there does not say why", reason, claims=(Claim(at.ns, "drop reason", reason, dev=at.iif),))


def _with_reason(found: Finding, reason: str | None, said: str) -> Finding:
    """*found*, told after what the kernel said of the packet (*said*: its drop and reason)."""
    return Finding(found.cause, found.where, f"{said}; {found.text}", reason or found.reason, found.claims, found.fixes)


def _placed(found: Finding, ns: str, dev: str | None) -> Finding:
    """*found* at the interface the packet was seen at in *ns*, where the stage named none."""
    if found.where.ns != ns or found.where.dev is not None or dev is None:
        return found
    return Finding(found.cause, Where(ns, dev), found.text, found.reason, found.claims, found.fixes)


def _wrong_mac(ev: Evidence, ctx: Context, ns: str, dev: str | None, p: packets.Packet) -> Finding:
    """Who addressed the frame to a MAC that is not the receiver's, and what its neighbour entry
    for the packet's next hop says. A bridge floods a frame for a MAC it has not learnt to every
    port, so the host that dropped it may be off the packet's path: the sender is the host whose
    frame came onto this segment, else one of the segment's hosts whose neighbour entry holds the
    MAC the frame was seen arriving with (./run soundness --generated 120 --seed 41, case 62:
    pod2-1's echo reply, sent on by node2 to a MAC no host has and flooded to node3, was blamed on
    pod2-1's entry for its gateway, which was right)."""
    what = ctx.packet_name(p)
    lead = f"{ns}{' on ' + dev if dev else ''} dropped the {what} as addressed to another host"
    receiver = ctx.reads.link(ns, dev) if dev else None
    here, mac = dev or "?", receiver.mac if receiver else "?"
    mine = [s for s in ev.sightings if s.packet is not None and s.packet.ident == p.ident and s.packet.proto == p.proto]
    found = ctx.reads.hosts_on(ns, dev) if dev else None
    segment = (found[0] if found else set()) | ({(ns, dev)} if dev else set())
    peer = ctx.reads.peer(ns, dev) if dev else None
    if peer is not None and ctx.reads.route_get(peer[0], p.dst).dev == peer[1]:
        sender: str | None = peer[0]  # the other end of the veth it came in by, which routes it there
    else:
        onto = [s.ns for s in mine if s.direction == "out" and (s.ns, s.dev) in segment and s.ns != ns]
        sender = onto[-1] if onto else None
    if sender is not None:
        out = ctx.reads.route_get(sender, p.dst)
        return _misaddressed_by(ctx, sender, out.dev, out.via or p.dst, lead, here, mac, "OTHERHOST")
    macs = {frames.destination(s.frame) for s in mine if s.direction == "in" and (s.ns, s.dev) in segment}
    version = ipaddress.ip_address(p.dst).version
    for host, hdev in sorted(segment):
        if host not in ctx.reads.view.spaces:
            continue
        entry = next((e for e in ctx.reads.neighbours(host, version) if e.dev == hdev and e.mac in macs), None)
        if entry is not None:
            held = [(n, d, link.mac) for n, d in neighbour.holders(ctx.reads, segment, entry.dst) if (link := ctx.reads.link(n, d)) is not None]
            holder, held_mac = (f"{held[0][0]}'s {held[0][1]}", held[0][2]) if held else (here, mac)
            return _misaddressed_by(ctx, host, hdev, entry.dst, lead, holder, held_mac, "OTHERHOST")
    seen = f" ({', '.join(sorted(macs))})" if macs else ""
    return Finding(Cause.WRONG_NEIGHBOUR, Where(ns, dev), f"{lead}{seen}; it was not seen leaving a host of that segment, and no neighbour entry there holds that MAC: who addressed it so is not known", "OTHERHOST")


def _misaddressed(ev: Evidence, ctx: Context, reason: str | None = None) -> Finding | None:
    """A frame of this probe left a namespace addressed to a MAC that no holder of its next hop
    on that segment has (as the capture shows it and the kernel wires the segment)."""
    for s in ev.sightings:
        p = s.packet
        if s.direction != "out" or s.dev == "lo" or p is None or p.quoted or s.frame[0] & 1 or not (ctx.flow.is_request(p) or ctx.flow.is_answer(p)):
            continue
        out = ctx.reads.route_get(s.ns, p.dst)
        segment = ctx.reads.hosts_on(s.ns, s.dev) if out.dev == s.dev else None
        hop = out.via or p.dst
        held = neighbour.holders(ctx.reads, segment[0], hop) if segment else []
        links = [(f"{n}'s {d}", link.mac) for n, d in held if (link := ctx.reads.link(n, d)) is not None]
        sent = frames.destination(s.frame)
        if links and sent not in {mac for _, mac in links}:
            lead = f"the {ctx.packet_name(p)} left {s.ns} on {s.dev} for {sent}, which is not the MAC of {hop}'s holder on that segment"
            return _misaddressed_by(ctx, s.ns, s.dev, hop, lead, *links[0], reason)
    return None


def _misaddressed_by(ctx: Context, sender: str, odev: str | None, hop: str, lead: str, holder: str, mac: str, reason: str | None = None) -> Finding:
    """*sender* addressed its frames for *hop* on *odev* to a MAC *holder* does not have: its
    device does no ARP (its NOARP flag, as read), or its neighbour entry says so (learnt, or made by
    hand: a NOARP entry on a device that does ARP is `ip neigh ... nud noarp`'s)."""
    entry = ctx.reads.neighbour(sender, hop)
    said = f"{entry.mac} ({entry.state})" if entry else "an unknown MAC"
    text = f"{lead}: {sender}'s neighbour entry for {hop} on {odev} says {said}, but {holder} has {mac}"
    sending = ctx.reads.link(sender, odev)
    if sending is not None and sending.noarp:  # the device does no ARP: its entries are made, not learnt
        return Finding(
            Cause.WRONG_NEIGHBOUR,
            Where(sender, odev),
            f"{text}: {odev} does no ARP (arp off: its entries are NOARP); {cmd(sender, 'ip link set', odev or '?', 'arp on')}",
            reason,
            claims=(Claim(sender, f"link {odev}", "arp off", dev=odev, blames=True),),
            fixes=(Remedy(sender, f"ip link set {odev} arp on", f"ip link set {odev} arp off", odev),),
        )
    claims = (Claim(sender, f"neigh {hop} dev {odev}", said, dev=odev, blames=True),) if entry else ()
    return Finding(
        Cause.WRONG_NEIGHBOUR,
        Where(sender, odev),
        f"{text} ({cmd(sender, 'ip neigh replace', hop, 'lladdr', mac, 'dev', odev or '?')}, or delete the entry)",
        reason,
        claims=claims,
        fixes=(Remedy(sender, f"ip neigh del {hop} dev {odev}", f"ip neigh replace {hop} lladdr {entry.mac} dev {odev} nud {'noarp' if 'NOARP' in entry.state else 'permanent'}", odev),) if entry and entry.mac else (),
    )


# -- 4. the walk ---------------------------------------------------------------------------------
def _by_walk(ev: Evidence, ctx: Context) -> Finding:
    """The request's way, then its answer's, through the kernel's decisions, checked against
    the captures; else what was read, and that the cause is unknown. Where the captures saw
    the request delivered (after any NAT), its answer's way starts there."""
    counted = _counted(ev, ctx) or _misaddressed(ev, ctx)
    if counted is not None:
        return counted
    asked = _asked(ev, ctx)
    first = _first_request(ev, ctx)
    target = _delivered(ev, ctx)
    request = walk(ctx.reads, first, asked=asked)
    if target is None:
        if request.stop is not None:
            return _via_default(ev, ctx, request.stop, False) if _agrees(request, ev, ctx, ctx.flow.is_request) else _unknown(ev, ctx, request)
        if request.delivered is None:
            return _left(ev, ctx, request) or _unknown(ev, ctx, request)
        ns, iif = request.delivered
        arrived_src, arrived_dst = first.src, first.dst
    else:
        ns, iif, packet = target
        arrived_src, arrived_dst = packet.src, packet.dst
        stop = walk_delivery(ctx, ns, iif, packet)
        if stop is not None:
            return stop
    back = answer_at(ctx, ns, arrived_dst, arrived_src, None)
    answer = walk(ctx.reads, back, asked=asked, deliver=False)
    if answer.stop is not None:
        found = answer.stop
        if len(answer.path) == 1 and any(c.value == "no route" for c in found.claims):
            return Finding(
                Cause.NO_RETURN_ROUTE,
                Where(ns, iif),
                f"the {ctx.what} reached {ns} on {iif}, but {ns} has no route back to {back.dst}",
                claims=found.claims,
                fixes=found.fixes,
            )
        if len(answer.path) == 1 and found.where.ns == ns:
            return Finding(Cause.NO_RETURN_ROUTE, Where(ns, iif), f"the {ctx.what} reached {ns} on {iif}, but {ns} cannot send the {back.what} back: {found.text}", found.reason, found.claims, found.fixes)
        names = answer.namespaces
        if len(names) > 2 and names[-1] in names[:-1]:  # it came back where it had been: the one that sent it back is the one to ask
            found = _default_only(ctx, found, names[-2], back.dst, True)
        return found if _agrees(answer, ev, ctx, ctx.flow.is_answer) else _unknown(ev, ctx, request, answer)
    return _unknown(ev, ctx, request, answer)


def walk_delivery(ctx: Context, ns: str, iif: str, packet: packets.Packet) -> Finding | None:
    """Local delivery where the captures saw the request arrive."""
    return delivered(ctx.reads, At(ns, packet.src, packet.dst, iif, ctx.what, _proto(ctx), packet.dport if packet.proto == packets.TCP else None))


def _left(ev: Evidence, ctx: Context, request: Walked) -> Finding | None:
    """The walk left the lab (a segment nslab cannot follow) by a default route: as far as
    nslab sees, it went where nothing answers."""
    ns, _ = request.path[-1]
    dst = _address(ctx.flow.dst)
    out = ctx.reads.route_get(ns, dst)
    routes = ctx.reads.routes(ns, 6 if ctx.flow.v6 else 4)
    if not out.via or not routes or any(r.dst != "default" and r.type == "unicast" and r.covers(dst) for r in routes):
        return None
    return Finding(
        Cause.LOST_VIA_DEFAULT_ROUTE,
        Where(ns, out.dev),
        f"the {ctx.what} left the lab by {ns}'s default route via {out.via} on {out.dev}, where nslab cannot follow it, and no answer came back",
        claims=(Claim(ns, "route default table main", f"via {out.via} dev {out.dev}", dev=out.dev),),
    )


def _delivered(ev: Evidence, ctx: Context) -> tuple[str, str, packets.Packet] | None:
    """Where the captures saw the request delivered: the last namespace it entered holding its
    destination (as it arrived, after any NAT) and was not seen leaving."""
    found = None
    for i, s in enumerate(ev.sightings):
        p = s.packet
        if s.direction != "in" or s.dev == "lo" or p is None or not ctx.flow.is_request(p) or s.ns not in ctx.reads.view.spaces:
            continue
        left = any(o.ns == s.ns and o.direction == "out" and o.packet is not None and ctx.flow.is_request(o.packet) for o in ev.sightings[i + 1 :])
        if not left and ctx.reads.is_local(s.ns, p.dst):
            found = (s.ns, s.dev, p)
    return found


def _counted(ev: Evidence, ctx: Context) -> Finding | None:
    """Without the kernel's drop reasons: a drop counter rose in a namespace this request entered,
    and no other packet entered it meanwhile; the routing stage there says why."""
    if ev.drop_reasons is None:
        return None
    arrivals = {s.ns: s for s in ev.sightings if s.direction == "in" and s.dev != "lo" and s.packet and ctx.flow.is_request(s.packet)}
    for ns, s in arrivals.items():
        if ns == ev.src or ctx.others_in.get(ns, 0):
            continue
        assert s.packet is not None, "an arrival of the request's packet"
        for counter in COUNTED:
            if ev.delta(ns, counter) > 0 and not ctx.request_left(ns):
                decision = routing.decide(ctx.reads, request_at(ctx, ns, s.packet.src, s.packet.dst, s.dev))
                if isinstance(decision, Finding):  # as a drop reason read there would be (_stage_of): the sender's default route may have sent it
                    return _with_reason(_via_default(ev, ctx, decision, False, s.packet), None, f"the {ctx.what} was dropped in {ns} on {s.dev} ({counter} counted, no other packet arrived)")
    return None


def _asked(ev: Evidence, ctx: Context) -> neighbour.Asked | None:
    """The probe's solicitations as the captures saw them; None where a namespace was not watched."""
    if not ctx.reads.view.spaces.keys() <= ev.watched:
        return None
    return neighbour.Asked.of(ev.sightings, ctx.flow.hops, {(ev.src, ev.resolving)} if ev.resolving else set(), ev.drops)


def _agrees(walked: Walked, ev: Evidence, ctx: Context, which: Callable[[packets.Packet], bool]) -> bool:
    """The captures saw the packet (*which*: request or answer) enter no namespace off the
    walk's way: the namespaces it routed through, the segments it crossed, the stop's."""
    allowed = set(walked.namespaces) | walked.segments | ({walked.stop.where.ns} if walked.stop else set()) | {ev.src}
    seen = {s.ns for s in ev.sightings if s.direction == "in" and s.dev != "lo" and s.packet is not None and which(s.packet)}
    return seen <= allowed


def _unknown(ev: Evidence, ctx: Context, *walks: Walked) -> Finding:
    """Nothing read explains the silence: say where the captures last saw the packet, what
    can stop it there (netfilter chains on its hooks) and that the cause is unknown."""
    last = _last_seen(ev, ctx)
    where = Where(last[0], last[1]) if last else Where(ev.src, ev.sender_route.dev)
    ways = "; ".join(" > ".join(w.namespaces) for w in walks if w.path)
    text = f"no answer to the {ctx.what} from {ev.src} to {_address(ctx.flow.dst)}"
    at, how = None, None  # where the packet was last seen, and which of its hooks to read there
    if last:
        ns, dev, packet = last
        text += f"; {'it' if packet == ctx.what else 'the ' + packet} was last seen entering {ns} on {dev}"
        source = ev.request_src or ev.sender_route.src or ""
        at = answer_at(ctx, ns, _address(ctx.flow.dst), source, dev) if packet != ctx.what and source else request_at(ctx, ns, "", _address(ctx.flow.dst), dev)
    elif ev.src in ev.watched and not ctx.request_left(ev.src):
        text += f"; the captures never saw it leave {ev.src}" + (f" (by {ev.sender_route.dev})" if ev.sender_route.dev else "")
        at, how = request_at(ctx, ev.src, "", _address(ctx.flow.dst), None), "made"
    claims: tuple[Claim, ...] = ()
    found = netfilter.stoppers(ctx.reads, at, how) if at is not None else []
    if at is not None and found:
        text += "; chains there that can drop it: " + "; ".join(f"table {s.family} {s.table}, chain {s.chain}: {s.text}" for s in found)
        claims = tuple(Claim(at.ns, f"nft {s.family} {s.table} {s.chain}", s.text) for s in found)
    if ways:
        text += f"; the kernel's decisions read along its way ({ways}) let it through"
    return Finding(Cause.NO_ANSWER, where, text + "; the cause is unknown", claims=claims)


def _last_seen(ev: Evidence, ctx: Context) -> tuple[str, str, str] | None:
    """(namespace, interface, which packet: the request or its answer) where the captures last
    saw the probe's own packet enter."""
    for s in reversed(ev.sightings):
        p = s.packet
        if s.direction == "in" and s.dev != "lo" and p is not None and (ctx.flow.is_request(p) or ctx.flow.is_answer(p)):
            return s.ns, s.dev, ctx.packet_name(p)
    return None


# -- ARP probes ---------------------------------------------------------------------------------
def _arp(ev: Evidence, ctx: Context) -> Finding:
    dev = ev.sender_route.dev or ""
    at = request_at(ctx, ev.src, ctx.reads.route_get(ev.src, ctx.flow.dst).src or "", ctx.flow.dst, None)
    return neighbour.unanswered(ctx.reads, at, dev, ctx.flow.dst, _asked(ev, ctx))


# -- helpers ----------------------------------------------------------------------------------
@overload
def _prefixed(found: Finding, said: str) -> Finding: ...
@overload
def _prefixed(found: Finding | None, said: str) -> Finding | None: ...
def _prefixed(found: Finding | None, said: str) -> Finding | None:
    if found is None:
        return None
    return Finding(found.cause, found.where, f"{said}: {found.text}", found.reason, found.claims, found.fixes)


def _drop_of(ev: Evidence, ns: str, *, request: bool, ctx: Context) -> DropSeen | None:
    return next((d for d in ev.drops if d.ns == ns and d.packet is not None and (ctx.flow.is_request(d.packet) if request else ctx.flow.is_answer(d.packet))), None)


def _reason_in(ev: Evidence, ns: str) -> str | None:
    return next((d.reason for d in ev.drops if d.ns == ns and d.packet is not None), None)


def _arrival(ev: Evidence, ctx: Context, ns: str) -> Sighting | None:
    """Where the request entered *ns*, as captured."""
    return next((s for s in ev.sightings if s.ns == ns and s.direction == "in" and s.dev != "lo" and s.packet is not None and ctx.flow.is_request(s.packet)), None)


def _holder_of(ctx: Context, address: str) -> tuple[str, None] | None:
    ns = next((n for n in ctx.reads.view.spaces if ctx.reads.is_local(n, address)), None) if len(ctx.reads.view.spaces) <= 64 else None
    return (ns, None) if ns else None


def _origin(ev: Evidence, which: Callable[[packets.Packet], bool]) -> tuple[str, str] | None:
    """Where a frame matching *which* was first seen leaving a namespace it had not entered: who made it."""
    entered: set[tuple[str, tuple[int, int, int | None]]] = set()
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
        return ipaddress.ip_address(dst).is_loopback
    except ValueError:
        return False
