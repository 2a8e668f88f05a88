"""IPv6's own decisions: each reads the kernel and returns a Finding, or None.

IPv6 fails where IPv4 has no counterpart: an address is *tentative* while
duplicate address detection runs (it neither answers NDP nor serves as a
source) or ends *dadfailed*; `disable_ipv6` removes a device's addresses; and
a namespace forwards IPv6 only when `net.ipv6.conf.all.forwarding` is on (or,
since Linux 6.17, the incoming device's `force_forwarding`): the per-device
`forwarding` switch alone makes a device act as a router (no router
advertisements taken) without forwarding anything. ICMPv6 has its own errors,
Packet Too Big among them. Every function here returns None for an IPv4 flow.

Each Finding carries its claims (nslab.probes.result.Claim: what was read, where)
and its fixes as Remedy (the command as typed in the namespace, and its undo), so the
path walk and the fix search take them over as they are.
"""

from __future__ import annotations

import dataclasses
import errno as errno_mod
import ipaddress

from nslab.diagnosis import frames
from nslab.diagnosis import observations as obs
from nslab.diagnosis.evidence import Evidence
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, link_up, netfilter, routing, set_sysctl
from nslab.diagnosis.stages.address import IPV6_MIN_MTU, absent, disabling, ipv6_back
from nslab.diagnosis.stages.neighbour import off_bridge
from nslab.kernel.state import AddressState, RouteState
from nslab.model.queries import bridge_ports
from nslab.probes import packets
from nslab.probes.result import Cause, Claim, Outcome, Remedy, Result, Where


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _held(reads: Reads, ns: str, address: str) -> AddressState | None:
    return next((a for a in reads.kernel.addresses(reads.handle(ns), names=reads.names(ns)) if _same(a.ip, address)), None)


# -- forwarding -------------------------------------------------------------------------------
def forwarding_dropped(ctx: obs.Context) -> obs.Finding | None:
    """The probe's IPv6 packet was dropped with IP_INADDRERRORS in a namespace whose
    forwarding sysctls, read there, say it does not forward IPv6."""
    if not ctx.flow.v6:
        return None
    for drop in ctx.drops:
        p = drop.packet
        if drop.reason == "IP_INADDRERRORS" and drop.dev and p is not None and p.version == 6 and (ctx.flow.is_request(p) or ctx.flow.is_answer(p)):
            found = _not_forwarded(ctx, drop.ns, drop.dev, p, drop.reason)
            if found is not None:
                return found
    return None


def forwarding_counted(ctx: obs.Context) -> obs.Finding | None:
    """Without drop reasons: Ip6.InAddrErrors rose in a namespace the request entered and did
    not leave, while no other packet came in, and its forwarding sysctls say it does not forward."""
    if not ctx.flow.v6 or not ctx.requests_in():
        return None
    for s in {s.ns: s for s in ctx.requests_in()}.values():
        if s.ns == ctx.src or ctx.others_in.get(s.ns, 0) or ctx.reads.is_local(s.ns, ctx.flow.dst):
            continue  # the sender, a namespace other packets came into, the one the request is for: none of them forwards it
        if ctx.request_left(s.ns):
            continue
        if not ctx.deltas().get(s.ns, {}).get("Ip6.InAddrErrors"):
            continue
        found = _not_forwarded(ctx, s.ns, s.dev, s.packet, None)
        if found is not None:
            return found
    return None


def _not_forwarded(ctx: obs.Context, ns: str, dev: str, packet: packets.Packet | None, reason: str | None) -> obs.Finding | None:
    stopped, off, fix = ctx.reads.forwarding6(ns, dev)
    if not stopped:
        return None
    per_dev = ctx.reads.sysctl(ns, f"net.ipv6.conf.{dev}.forwarding")
    seen = reason or "Ip6.InAddrErrors counted, no other packet arrived"
    text = f"the {ctx.packet_name(packet)} was dropped in {ns} on {dev}: {seen} ({off}: {ns} does not forward IPv6"
    if per_dev == "1":
        text += f"; net.ipv6.conf.{dev}.forwarding=1 alone does not forward, only the 'all' switch does"
    text += f"; ip netns exec {ns} {fix})"
    claims = (
        Claim(ns, "sysctl net.ipv6.conf.all.forwarding", off.split("=", 1)[1], blames=True),
        Claim(ns, f"sysctl net.ipv6.conf.{dev}.forwarding", str(per_dev), dev=dev),
    )
    return obs.Finding(Cause.FORWARDING_OFF, Where(ns, dev), text, reason, claims, (set_sysctl(ctx.reads, ns, "net.ipv6.conf.all.forwarding", 1, dev),))


# -- the neighbour that cannot answer yet, or ever -----------------------------------------------
def unready_neighbour(ctx: obs.Context) -> obs.Finding | None:
    """A solicitation for the probe's next hop (by the sender) or for its destination (by
    a router on the last link) went unanswered, and the namespace that holds the address
    (a host of that segment, or the model's owner) holds it tentative or dadfailed, or has
    IPv6 disabled on the device the solicitation reached or the model puts it on."""
    if not ctx.flow.v6:
        return None
    advertised = [frames.fields_of(s.frame)[1] for s in ctx.sightings if s.kind == "ndp-advert"]
    asked: dict[str, tuple[str, str | None]] = {}  # target -> (who asked, on which device)
    if ctx.flow.resolves:
        asked[ctx.flow.dst] = (ctx.src, ctx.sender_route.dev)
    for s in ctx.sightings:
        if s.kind == "ndp-solicit" and s.direction == "out":
            asked.setdefault(frames.fields_of(s.frame)[2], (s.ns, s.dev))
    for target, (asker, dev) in asked.items():
        if dev is None or not any(_same(target, hop) for hop in ctx.flow.hops) or any(_same(target, a) for a in advertised):
            continue
        segment = ctx.reads.hosts_on(asker, dev)
        reached = sorted(segment[0]) if segment else []
        owners = _model_owner(ctx, target)
        for ns in dict.fromkeys([*(ns for ns, _ in reached), *owners]):
            held = _held(ctx.reads, ns, target)
            if held is not None and held.flags:
                found = _unready_address(ctx, asker, dev, ns, held)
                if found is not None:
                    return found
        for ns, where in [*owners.items(), *reached]:
            if where is not None and _held(ctx.reads, ns, target) is None:
                found = disabled(ctx, ns, where, target)
                if found is not None:
                    return found
    return None


def _model_owner(ctx: obs.Context, address: str) -> dict[str, str | None]:
    """{namespace: device} where the lab's model puts *address* (the kernel is asked after)."""
    return {a.ns: a.dev for a in ctx.reads.view.topology.addresses if a.ns in ctx.reads.view.spaces and _same(a.cidr.split("/")[0], address)}


def _unready_address(ctx: obs.Context, asker: str, dev: str, ns: str, held: AddressState) -> obs.Finding | None:
    claim = Claim(ns, f"address {held.cidr} dev {held.dev}", " ".join(held.flags), dev=held.dev, blames=True)
    redo = (_readdressed(ns, held),)
    if "dadfailed" in held.flags:
        text = (
            f"nobody answered NDP for {held.ip} on {asker}'s {dev}: {ns} holds {held.cidr} on {held.dev} "
            f"but duplicate address detection failed (another host answered for it), so it is not used"
        )
        return obs.Finding(Cause.DAD_FAILED, Where(ns, held.dev), text, claims=(claim,), fixes=redo)
    if "tentative" in held.flags:
        key = f"net.ipv6.conf.{held.dev}.dad_transmits"
        probes = ctx.reads.sysctl(ns, key)
        text = (
            f"nobody answered NDP for {held.ip} on {asker}'s {dev}: {ns} holds {held.cidr} on {held.dev}, still tentative: "
            f"duplicate address detection sends {key}={probes} solicitations first, a retransmit interval (a second) apart; 'nodad' skips it"
        )
        return obs.Finding(Cause.ADDRESS_TENTATIVE, Where(ns, held.dev), text, claims=(claim, Claim(ns, f"sysctl {key}", str(probes), dev=held.dev)), fixes=redo)
    return None


def _readdressed(ns: str, held: AddressState) -> Remedy:
    """The address again, without duplicate address detection (`nodad`)."""
    again = f"ip addr del {held.cidr} dev {held.dev} && ip addr add {held.cidr} dev {held.dev}"
    return Remedy(ns, f"{again} nodad", again, held.dev)


def disabled(ctx: obs.Context, ns: str, dev: str, address: str | None = None) -> obs.Finding | None:
    """IPv6 is disabled on *dev* in *ns* (or for the whole namespace), which removed the
    device's IPv6 addresses (*address*, where the lab's model says it was there)."""
    key = disabling(ctx.reads, ns, dev)
    if key is None:
        return None
    cidr = next((a.cidr for a in ctx.reads.view.topology.addresses if a.ns == ns and a.dev == dev and address and _same(a.cidr.split("/")[0], address)), None)
    text = f"{key}=1 in {ns}: IPv6 is disabled on {dev}, which removes its IPv6 addresses" + (f" ({cidr} among them)" if cidr else "")
    if address and not cidr:
        text = f"nobody holds {address} where it was asked for, and {text}"
    return obs.Finding(Cause.IPV6_DISABLED, Where(ns, dev), text, claims=(Claim(ns, f"sysctl {key}", "1", dev=dev, blames=True),), fixes=(ipv6_back(ctx.reads, ns, key, dev),))


def solicited_elsewhere(ctx: obs.Context) -> obs.Finding | None:
    """A solicitation for the probe's next hop, or for the answer's, reached a namespace that
    holds the address on another interface: IPv6 answers only for an address of the
    interface the solicitation came in on (IPv4's ARP answers for any), unless proxy NDP
    does. The soliciting side's route sent it there (`default dev eth0` works for ARP only)."""
    if not ctx.flow.v6:
        return None
    adverts = {frames.fields_of(s.frame)[1] for s in ctx.sightings if s.kind == "ndp-advert"}
    for s in ctx.sightings:
        if s.kind != "ndp-solicit" or s.direction != "in" or s.ns not in ctx.reads.view.spaces:
            continue
        port = ctx.reads.link(s.ns, s.dev)
        if port is not None and port.master is not None:
            continue  # a bridge port: the solicitation goes on up through the bridge, where it is seen again
        target = frames.fields_of(s.frame)[2]
        held = _held(ctx.reads, s.ns, target)
        if held is None or held.dev == s.dev or any(_same(a, target) for a in adverts):
            continue
        if "1" in (ctx.reads.sysctl(s.ns, "net.ipv6.conf.all.proxy_ndp"), ctx.reads.sysctl(s.ns, f"net.ipv6.conf.{s.dev}.proxy_ndp")):
            continue  # a proxy entry may still answer
        sent = next((o for o in ctx.sightings if o.kind == "ndp-solicit" and o.direction == "out" and frames.fields_of(o.frame)[2] == target and o.ns != s.ns), None)
        if sent is None:
            continue
        lost = next((a for a in ctx.reads.view.topology.addresses if a.ns == s.ns and a.dev == s.dev and _same(str(a.interface.ip), target)), None)
        if lost is not None:  # the lab puts it on the interface asked on too: what took it from there is the fault, not the asker's route
            why = absent(ctx.reads, s.ns, lost)
            text = (
                f"nobody answered NDP for {target}: the solicitation reached {s.ns} on {s.dev}, where the lab puts {lost.cidr}, which {s.ns} no longer holds there"
                + (f" ({why.words})" if why.words else "")
                + f"; it holds {target} on {held.dev} only, and IPv6 answers NDP only for an address of the interface asked on"
            )
            return obs.Finding(Cause.NO_ARP_ANSWER, Where(s.ns, s.dev), text, claims=why.claims, fixes=why.fixes)
        if port is not None and bridge_ports(ctx.reads.view.topology).get((s.ns, s.dev)) == (s.ns, held.dev):  # the lab makes the interface asked on a port of the bridge that holds it
            lead = f"the NDP request for {target} reached {s.dev} in {s.ns} and went no further: {s.ns} holds {target} on {held.dev}, and the lab makes {s.dev} a port of it, but {s.dev}"
            return off_bridge(s.ns, port, held.dev, lead)
        return _off_link(ctx, sent.ns, sent.dev, s.ns, s.dev, held)
    return None


def _off_link(ctx: obs.Context, asker: str, dev: str, ns: str, heard_on: str, held: AddressState) -> obs.Finding:
    route = next((r for r in _routes_to(ctx.reads, asker, held.ip) if r.via is None and r.dev == dev), None)
    near = next((a.ip for a in ctx.reads.kernel.addresses(ctx.reads.handle(ns), names=ctx.reads.names(ns)) if a.dev == heard_on and a.scope == "link"), None)
    what = f"{route.dst} dev {dev}" if route else f"a route to {held.ip} on {dev} without a gateway"
    text = (
        f"{asker} solicits {held.ip} on {dev} directly ({what}), but {ns} holds {held.ip} on {held.dev}, not on {heard_on} "
        f"where the solicitation arrived: IPv6 answers NDP only for an address of the interface asked on (proxy_ndp is off)"
    )
    claims = (
        Claim(asker, f"route {route.dst}" if route else f"route get {held.ip}", f"dev {dev}", dev=dev, blames=True),
        Claim(ns, f"address {held.cidr} dev {held.dev}", "present", dev=held.dev),
        Claim(ns, f"sysctl net.ipv6.conf.{heard_on}.proxy_ndp", "0", dev=heard_on),
    )
    to = route.dst if route else held.ip
    undo = f"ip -6 route replace {to} dev {dev}" if route else f"ip -6 route del {to} via {near} dev {dev}"
    fixes = (Remedy(asker, f"ip -6 route replace {to} via {near} dev {dev}", undo, dev),) if near else ()
    return obs.Finding(Cause.NO_ARP_ANSWER, Where(asker, dev), text, claims=claims, fixes=fixes)


def _routes_to(reads: Reads, ns: str, address: str) -> list[RouteState]:
    """*ns*'s IPv6 routes that hold *address*, longest prefix first."""
    ip = ipaddress.ip_address(address)
    routes = [r for r in reads.routes(ns, 6) if r.type == "unicast" and (r.dst == "default" or ip in ipaddress.ip_network(r.dst, strict=False))]
    return sorted(routes, key=lambda r: -1 if r.dst == "default" else ipaddress.ip_network(r.dst, strict=False).prefixlen, reverse=True)


# -- the sender's own refusals --------------------------------------------------------------------
def local_error(result: Result, ev: Evidence, ctx: obs.Context) -> obs.Finding | None:
    """The sender's kernel refused an IPv6 request at once: IPv6 disabled where the model has
    an address, or no usable source address because the sender's own are tentative or dadfailed."""
    if not ctx.flow.v6 or result.outcome is not Outcome.LOCAL_ERROR:
        return None
    if result.errno in (errno_mod.ENETUNREACH, errno_mod.EADDRNOTAVAIL, errno_mod.EHOSTUNREACH):
        found = disabled(ctx, ev.src, "lo") if _same(ctx.flow.dst, "::1") else None  # ::1 lives on lo
        if found is not None:
            return found
        for a in ctx.reads.view.topology.addresses:
            if a.ns == ev.src and ":" in a.cidr and _held(ctx.reads, ev.src, a.cidr.split("/")[0]) is None:
                found = disabled(ctx, ev.src, a.dev, a.cidr.split("/")[0])
                if found is not None:
                    return found
    if result.errno == errno_mod.EHOSTUNREACH:  # TCP hears an ICMPv6 error as this errno: who sent it?
        origin = next(((o.ns, o.dev) for o in ev.sightings if o.direction == "out" and o.packet and o.packet.quoted and o.packet.proto == packets.ICMPV6), None)
        if origin is not None and origin[0] != ev.src:
            return unready_neighbour(ctx) or obs.Finding(
                Cause.NO_ARP_ANSWER, Where(*origin), f"{origin[0]} could not resolve the next hop with NDP on {origin[1]}: its ICMPv6 address unreachable came back (EHOSTUNREACH)"
            )
        found = unready_neighbour(ctx)
        if found is not None:
            return found
    if result.errno == errno_mod.EADDRNOTAVAIL:  # no IPv6 source address at all: a device with IPv6 disabled says why
        for link in ctx.reads.links(ev.src):
            found = disabled(ctx, ev.src, link.name) if link.name != "lo" else None
            if found is not None:
                return found
    if result.errno == errno_mod.EADDRNOTAVAIL:
        own = [a for a in ctx.reads.kernel.addresses(ctx.reads.handle(ev.src), names=ctx.reads.names(ev.src)) if a.version == 6 and a.scope != "host"]
        unready = next((a for a in own if {"tentative", "dadfailed"} & set(a.flags)), None)
        if unready is not None:
            cause = Cause.DAD_FAILED if "dadfailed" in unready.flags else Cause.ADDRESS_TENTATIVE
            text = f"{ev.src} has no usable IPv6 source address for {ev.dst} (EADDRNOTAVAIL at once): {unready.cidr} on {unready.dev} is {' '.join(unready.flags)}"
            claim = Claim(ev.src, f"address {unready.cidr} dev {unready.dev}", " ".join(unready.flags), dev=unready.dev, blames=True)
            return obs.Finding(cause, Where(ev.src, unready.dev), text, claims=(claim,))
    return None


def tentative_source(ctx: obs.Context) -> obs.Finding | None:
    """The request left, from an address the sender holds tentative: the answer to it is not
    delivered (a tentative address is not yet the sender's own), so none comes."""
    if not ctx.flow.v6 or ctx.flow.resolves:
        return None
    sent = next((s.packet for s in ctx.sightings if s.ns == ctx.src and s.direction == "out" and s.packet and ctx.flow.is_request(s.packet)), None)
    held = _held(ctx.reads, ctx.src, sent.src) if sent is not None else None
    if held is None or "tentative" not in held.flags:
        return None
    text = f"the {ctx.what} left {ctx.src} from {held.ip}, which {ctx.src} holds on {held.dev} still tentative: no answer to it is taken until duplicate address detection ends"
    claim = Claim(ctx.src, f"address {held.cidr} dev {held.dev}", " ".join(held.flags), dev=held.dev, blames=True)
    return obs.Finding(Cause.ADDRESS_TENTATIVE, Where(ctx.src, held.dev), text, claims=(claim,), fixes=(_readdressed(ctx.src, held),))


# -- ICMPv6 errors ------------------------------------------------------------------------------------
def icmp_error(result: Result, ev: Evidence, ctx: obs.Context) -> obs.Finding | None:
    """An ICMPv6 error came back: Packet Too Big is its own message (IPv6 routers never
    fragment), address unreachable is a failed NDP resolution where it was sent from."""
    icmp = result.icmp
    if result.outcome is not Outcome.ICMP_ERROR or icmp is None or not icmp.v6:
        return None
    origin = next(((s.ns, s.dev) for s in ev.sightings if s.direction == "out" and s.packet and s.packet.quoted and s.packet.icmp_type == icmp.type), (ev.src, ev.sender_route.dev))
    where = Where(*origin)
    filtered = next((d for d in ev.drops if d.reason == "NETFILTER_DROP" and d.packet is not None), None)
    if icmp.type == packets.TOO_BIG6:
        return obs.Finding(Cause.TOO_BIG, where, f"{icmp} for the {ctx.what}: the next link from {origin[0]} is smaller, and IPv6 routers never fragment")
    if filtered is not None:
        found = _prohibited(ctx, filtered.ns, f"{icmp} for the {ctx.what}, and netfilter dropped a packet of it in {filtered.ns}")
        return dataclasses.replace(found, reason=filtered.reason)
    if icmp.type == packets.UNREACHABLE6 and (icmp.code in (1, 5) or (icmp.code == 4 and ctx.flow.probe == "ping")):
        return _prohibited(ctx, origin[0], f"{icmp} for the {ctx.what}")
    scoped = _beyond_scope(ev, ctx, f"{icmp} for the {ctx.what}", origin[0]) if icmp.type == packets.UNREACHABLE6 and icmp.code == 2 else None
    if scoped is not None:
        return scoped
    if icmp.type == packets.UNREACHABLE6 and icmp.code == 3:
        if origin[0] == ev.src:  # the sender's own NDP gave up (the error loops back on lo): it is about the way out
            where = Where(ev.src, ev.sender_route.dev)
        return unready_neighbour(ctx) or obs.Finding(Cause.NO_ARP_ANSWER, where, f"{where.ns} could not resolve the next hop with NDP on {where.dev} ({icmp})")
    return None  # no route, and the rest: the origin's route lookup and ruleset decide (explain's ICMP error)


def _beyond_scope(ev: Evidence, ctx: obs.Context, said: str, router: str) -> obs.Finding | None:
    """A router refused to forward the request off its link (beyond scope of source): it left from a
    link-local address, as the kernel picks when the sender holds no global one to send from; the
    lab's global address on the way out, where the model has one that the kernel no longer holds,
    and why it is gone (address.absent)."""
    src, dev = ev.request_src or "", ev.sender_route.dev
    if not src or not ipaddress.ip_address(src).is_link_local or dev is None:
        return None
    said = f"{said}: {router} forwards nothing from {src}, a link-local address, off its link, and {ev.src} sent it from there: it held no global IPv6 address to send from"
    lost = next(
        (a for a in ctx.reads.view.topology.addresses if a.ns == ev.src and a.dev == dev and a.interface.version == 6 and not a.interface.ip.is_link_local and _held(ctx.reads, ev.src, str(a.interface.ip)) is None),
        None,
    )
    if lost is None:
        return obs.Finding(Cause.ICMP_UNREACHABLE, Where(ev.src, dev), said, claims=(Claim(ev.src, f"addresses ipv6 dev {dev}", "link-local only", dev=dev, blames=True),))
    why = absent(ctx.reads, ev.src, lost)
    return obs.Finding(Cause.ICMP_UNREACHABLE, Where(ev.src, dev), f"{said}; the lab's {lost.cidr} on {dev} is gone" + (f": {why.words}" if why.words else ""), claims=why.claims, fixes=why.fixes)


def _prohibited(ctx: obs.Context, ns: str, said: str) -> obs.Finding:
    """A refusal (administratively prohibited, a failed source policy, a port unreachable for
    an echo) that a prohibit route or rule or a rejecting chain sends. The origin's route lookup
    for the request, as it came in, is asked first; then its ruleset; else what was read is
    said, and that the cause is unknown."""
    came = next((s for s in ctx.requests_in() if s.ns == ns and s.packet is not None), None)
    where = Where(ns, came.dev if came else None)
    packet = came.packet if came is not None else None
    if came is not None and packet is not None:
        at = At(ns, packet.src, packet.dst, came.dev, ctx.what)
        decision = routing.decide(ctx.reads, at)
        if isinstance(decision, obs.Finding) and decision.cause is Cause.ICMP_UNREACHABLE:  # a prohibit route or rule
            return obs.Finding(Cause.ICMP_UNREACHABLE, decision.where, f"{said}: {decision.text}", claims=decision.claims, fixes=decision.fixes)
        how = "local" if isinstance(decision, routing.Decision) and decision.local else "forwarded"
        found = netfilter.dropped(ctx.reads, at, how, reason=None, rejected=True)
        if found is not None:
            return obs.Finding(found.cause, found.where, f"{said}: {found.text}", claims=found.claims, fixes=found.fixes)
    return obs.Finding(
        Cause.ICMP_UNREACHABLE, where, f"{said} came from {ns}; neither a prohibit route or rule nor a rejecting nftables chain was read there: the cause is unknown"
    )


# -- ::1 with lo down ---------------------------------------------------------------------------------
def loopback_down(ctx: obs.Context) -> obs.Finding | None:
    """A probe to ::1 from a namespace whose lo is down, or has IPv6 disabled: ::1 went with it,
    so the namespace routes ::1 as any address it does not hold (out by a default route, say),
    and no other host takes a packet for ::1 from the wire: no answer can come."""
    if not ctx.flow.v6 or not _same(ctx.flow.dst, "::1"):
        return None
    lo = ctx.reads.link(ctx.src, "lo")
    if lo is None:
        return None
    out = ctx.sender_route.dev
    way = f"; its route lookup sends the {ctx.what} out of {out} instead, and no host takes ::1 from the wire" if out and out != "lo" else ""
    if lo.up:  # lo up without ::1: IPv6 disabled on it, or taken off it by a small MTU
        if not way:
            return None
        found = disabled(ctx, ctx.src, "lo", "::1")
        if found is not None:
            return dataclasses.replace(found, text=found.text + way)
        if lo.mtu < IPV6_MIN_MTU and _held(ctx.reads, ctx.src, "::1") is None:
            return obs.Finding(
                Cause.LOOPBACK_DOWN,
                Where(ctx.src, "lo"),
                f"lo's MTU in {ctx.src} is {lo.mtu}, below IPv6's minimum of {IPV6_MIN_MTU}, so the kernel took IPv6 off lo and ::1 with it{way}; "
                f"ip netns exec {ctx.src} ip link set dev lo mtu 65536 && ip netns exec {ctx.src} ip addr add ::1/128 dev lo (a larger MTU alone does not bring ::1 back)",
                claims=(Claim(ctx.src, "link lo", f"mtu {lo.mtu}", dev="lo", blames=True), Claim(ctx.src, "address ::1/128 dev lo", "absent", dev="lo")),
                fixes=(Remedy(ctx.src, "ip link set dev lo mtu 65536 && ip addr add ::1/128 dev lo", f"ip addr del ::1/128 dev lo && ip link set dev lo mtu {lo.mtu}", "lo"),),
            )
        return None
    return obs.Finding(
        Cause.LOOPBACK_DOWN,
        Where(ctx.src, "lo"),
        f"lo is down in {ctx.src}, so ::1 is not a local address there{way}; bring it up: ip netns exec {ctx.src} ip link set lo up",
        claims=(Claim(ctx.src, "link lo", "down", dev="lo", blames=True),),
        fixes=(link_up(ctx.reads, ctx.src, "lo"),),
    )


# -- a solicitation stopped on the way in ------------------------------------------------------------
def solicitation_filtered(ctx: obs.Context) -> obs.Finding | None:
    """A solicitation for the probe's next hop or destination reached the namespace holding
    it, on the device holding it, and that namespace's ICMPv6 counted no solicitation
    (Icmp6.InNeighborSolicits did not rise): it was stopped on the way in, before ICMPv6.
    The nftables chains on those hooks that can drop it are named; one alone is blamed."""
    if not ctx.flow.v6:
        return None
    adverts = [fields[1] for s in ctx.sightings if s.kind == "ndp-advert" and (fields := frames.neighbour_fields(s.frame))]
    for s in ctx.sightings:
        fields = frames.neighbour_fields(s.frame) if s.kind == "ndp-solicit" else None
        if fields is None or s.direction != "in" or s.ns not in ctx.reads.view.spaces:
            continue
        _, asker, target = fields
        if not any(_same(target, hop) for hop in ctx.flow.hops) or any(_same(target, a) for a in adverts):
            continue
        held = _held(ctx.reads, s.ns, target)
        if held is None or held.dev != s.dev or {"tentative", "dadfailed"} & set(held.flags) or ctx.deltas().get(s.ns, {}).get("Icmp6.InNeighborSolicits"):
            continue
        at = At(s.ns, asker, target, s.dev, f"neighbour solicitation for {held.ip}")
        chains = netfilter.stoppers(ctx.reads, at, "local")
        if not chains:
            return None
        said = (
            f"nobody answered NDP for {held.ip}: the solicitation from {asker} reached {s.ns} on {s.dev}, which holds {held.cidr}, "
            f"but {s.ns}'s ICMPv6 counted none (Icmp6.InNeighborSolicits did not rise): it was stopped on the way in"
        )
        names = "; ".join(f"table {c.family} {c.table}, chain {c.chain}: {c.text}" for c in chains)
        if len(chains) > 1:
            claims = tuple(Claim(s.ns, f"nft {c.family} {c.table} {c.chain}", c.text, dev=s.dev) for c in chains)
            return obs.Finding(Cause.FILTERED_BY_RULE, Where(s.ns, s.dev), f"{said}; these chains on its way in can drop it: {names}", claims=claims)
        c = chains[0]
        claim = Claim(s.ns, f"nft {c.family} {c.table} {c.chain}", c.text, dev=s.dev, blames=True)
        text = f"{said}, and the one chain there that can drop it is {names}; ip netns exec {s.ns} {c.undo}"
        return obs.Finding(Cause.FILTERED_BY_RULE, Where(s.ns, s.dev), text, claims=(claim,), fixes=(Remedy(s.ns, c.undo),))
    return None


RULES = (forwarding_dropped, forwarding_counted, unready_neighbour, solicited_elsewhere, solicitation_filtered, loopback_down)  # asked before IPv4's rules: observations.decisive(first=RULES)
