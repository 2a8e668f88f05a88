"""Findings: what the kernel showed for one probe's packet, and what it means.

Each rule here reads an observation (a link's state, a drop with the kernel's
reason, a counter that only this packet can have moved, the kernel's own route
lookup, the hosts an ARP request reached) and names the cause, the namespace
and interface, and one sentence built only from what was read. `decisive`
asks them in order of cost; the first finding settles the verdict.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Callable

from nslab.diagnosis import frames
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.evidence import DropSeen
from nslab.diagnosis.frames import Flow
from nslab.diagnosis.reads import Reads
from nslab.kernel.state import LinkState, RouteLookup
from nslab.model.queries import owner_of
from nslab.probes import packets
from nslab.probes.result import Cause, Claim, Remedy, Where

REQUEST = {"ping": "echo request", "tcp": "TCP SYN", "http": "TCP SYN", "arp": "ARP request", "ndp": "neighbour solicitation"}
REPLY = {"ping": "echo reply", "tcp": "TCP answer", "http": "TCP answer"}
TCP_SYN_RTO = 1.0  # seconds: the kernel's first SYN retransmission (TCP_TIMEOUT_INIT)
ANSWER = {"ping": ("Icmp.InEchos", "Icmp.OutEchoReps"), "tcp": ("Tcp.InSegs", "Tcp.OutSegs"), "http": ("Tcp.InSegs", "Tcp.OutSegs")}
ANSWER6 = {**ANSWER, "ping": ("Icmp6.InEchos", "Icmp6.OutEchoReplies")}  # TCP's counters count both families
# Drop counters that only an incoming packet moves, and the drop reason each stands for.
COUNTED_DROPS = {"Ip.InAddrErrors": "IP_INADDRERRORS", "TcpExt.IPReversePathFilter": "IP_RPFILTER"}
# Drop reasons after which no answer follows (others, e.g. NEIGH_FAILED or
# NO_SOCKET, are followed by an ICMP error or a reset: the probe waits for it).
FINAL_REASONS = ("IP_INADDRERRORS", "IP_RPFILTER", "NETFILTER_DROP", "OTHERHOST")
# Drop reasons that explain a silence at the deadline, though an answer could have followed them.
TELLING_REASONS = FINAL_REASONS + ("PKT_TOO_BIG", "NEIGH_FAILED", "IP_INNOROUTES", "IP_OUTNOROUTES")
# Drop reasons whose kernel path sends its ICMP error about the packet (when its rate limits allow)
# before it frees it: ip_error (no route), arp_error_report and ndisc_error_report (no neighbour),
# ip_forward and ip6_forward (too big). Sending one counts it at once in that namespace's out counters
# of its ICMP type as the error is made; so once such a drop is read, an unchanged count there
# says that no error left and none will: the request is gone, and its answer with it.
ERROR_FIRST_REASONS = ("IP_INNOROUTES", "NEIGH_FAILED", "PKT_TOO_BIG")
ERROR_COUNTERS = ("Icmp.OutDestUnreachs",)  # type 3: net and host unreachable, fragmentation needed
ERROR_COUNTERS6 = ("Icmp6.OutDestUnreachs", "Icmp6.OutPktTooBigs")  # types 1 and 2 (not NDP's, nor MLD's)


@dataclass(frozen=True)
class Finding:
    """Where and why the packet stopped: the cause, one sentence, the claims it
    rests on (each with its read), and the changes that would let it pass."""

    cause: Cause
    where: Where
    text: str
    reason: str | None = None  # the kernel's drop reason, where one was read
    claims: tuple[Claim, ...] = ()
    fixes: tuple[Remedy, ...] = ()  # changes that would let it pass, to verify on a copy


@dataclass
class Context:
    reads: Reads
    src: str
    flow: Flow
    sender_route: RouteLookup
    out_link: LinkState | None
    sightings: list[Sighting]
    drops: list[DropSeen]
    others_in: dict[str, int]
    deltas: Callable[[], dict[str, dict[str, int]]]
    timeout: float = 1.0  # the probe's deadline, in seconds from its start
    counted: frozenset[str] = frozenset()  # the namespaces whose counters `deltas` holds (unchanged ones omitted)

    @property
    def what(self) -> str:
        return REQUEST.get(self.flow.probe, "request")

    def packet_name(self, packet: packets.Packet | None) -> str:
        return REPLY.get(self.flow.probe, "answer") if packet is not None and self.flow.is_answer(packet) else self.what

    @property
    def retransmits(self) -> bool:
        """TCP sends the SYN again before the deadline: that packet's fate is not yet seen."""
        return self.flow.probe in ("tcp", "http") and self.timeout > TCP_SYN_RTO

    def requests_in(self) -> list[Sighting]:
        return [s for s in self.sightings if s.direction == "in" and s.dev != "lo" and s.packet and self.flow.is_request(s.packet)]

    def request_left(self, ns: str) -> bool:
        """Did the captures see the request leave *ns* (sent or forwarded by it)?"""
        return any(s.ns == ns and s.direction == "out" and s.packet and self.flow.is_request(s.packet) for s in self.sightings)


def decisive(ctx: Context, *, final: bool = False, first: tuple[Callable[[Context], Finding | None], ...] = ()) -> Finding | None:
    """The first rule whose observation proves that no answer can come (*first*: asked before these)."""
    if ctx.retransmits and not final:
        return None
    for rule in (*first, way_out_down, bridge_down_on_the_way, dropped, counted_drop, no_route_back, unresolvable, stopped_where_seen):
        found = rule(ctx)
        if found is not None:
            return found
    return None


# -- the way out ------------------------------------------------------------------
def way_out_down(ctx: Context) -> Finding | None:
    out = ctx.out_link
    if out is None or (out.up and out.carrier):
        return None
    peer = ctx.reads.peer(ctx.src, out.name) if out.up else None
    where = f"{ctx.src}'s {out.name} is {out.state}" + (f": its peer {peer[1]} in {peer[0]} is down" if peer else "")
    return Finding(Cause.LINK_DOWN, Where(*peer) if peer else Where(ctx.src, out.name), f"the {ctx.what} could not leave: {where}")


def bridge_down_on_the_way(ctx: Context) -> Finding | None:
    out = ctx.out_link
    if out is None:
        return None
    far = ctx.reads.peer(ctx.src, out.name)
    far_link = ctx.reads.link(*far) if far else None
    if far is None or far_link is None or far_link.master is None:
        return None
    bridge = ctx.reads.link(far[0], far_link.master)
    if bridge is None or bridge.up:
        return None
    text = (
        f"the {ctx.what} could not get through: {far[1]}, the other end of {ctx.src}'s {out.name}, is a port of bridge "
        f"{bridge.name} in {far[0]}, which is down (ip -n {far[0]} link set {bridge.name} up)"
    )
    return Finding(Cause.LINK_DOWN, Where(far[0], bridge.name), text)


# -- drops ----------------------------------------------------------------------------
def dropped(ctx: Context) -> Finding | None:
    """The kernel freed this packet, and said why (skb:kfree_skb). An answer dropped on its way
    back is final whatever the routing reason (an ICMP error about it goes to the answerer)."""
    for drop in ctx.drops:
        if drop.packet is None:
            continue
        final = drop.reason in FINAL_REASONS and (ctx.flow.is_request(drop.packet) or ctx.flow.is_answer(drop.packet))
        if final or (drop.reason in TELLING_REASONS and ctx.flow.is_answer(drop.packet) and not ctx.retransmits):
            return explain_drop(ctx, drop.ns, drop.dev, drop.reason, drop.packet)
        if drop.reason in ERROR_FIRST_REASONS and ctx.flow.is_request(drop.packet) and not ctx.retransmits:
            silent = no_error_sent(ctx, drop.ns)
            if silent is not None:
                found = explain_drop(ctx, drop.ns, drop.dev, drop.reason, drop.packet)
                return dataclasses.replace(found, text=f"{found.text}, and {drop.ns} sent no ICMP error about it ({silent})")
    return None


def no_error_sent(ctx: Context, ns: str) -> str | None:
    """What shows that *ns* sent no ICMP error of the kinds these drops send since the probe began
    (its out counts, unchanged), or None where it may have (a count rose: another packet's error,
    or this one's) or they were not read."""
    if ns not in ctx.counted:
        return None
    counters = ERROR_COUNTERS6 if ctx.flow.v6 else ERROR_COUNTERS
    got = ctx.deltas().get(ns, {})
    return None if any(got.get(c, 0) for c in counters) else " and ".join(counters) + " unchanged"


def counted_drop(ctx: Context) -> Finding | None:
    """Without drop reasons: a drop counter rose in a namespace that this packet
    entered, and no other IPv4 packet entered it meanwhile."""
    if not ctx.requests_in():
        return None
    deltas = ctx.deltas()
    last_in = {s.ns: s for s in ctx.requests_in()}  # a bridge port, then the bridge: the IP layer's device is the last
    for s in last_in.values():
        if s.ns == ctx.src or ctx.others_in.get(s.ns, 0):
            continue
        for counter, reason in COUNTED_DROPS.items():
            if deltas.get(s.ns, {}).get(counter, 0) > 0 and not ctx.request_left(s.ns):
                return dataclasses.replace(explain_drop(ctx, s.ns, s.dev, reason, s.packet, counter=counter), reason=None)  # counted, not read
    return None


def forwarding(ctx: Context, ns: str, dev: str) -> tuple[bool, str, str]:
    """(*ns* does not forward what comes in on *dev*, the sysctl that says so as read, the
    command that turns it on): net.ipv4.ip_forward, else the device's own forwarding.
    IPv6 forwards by net.ipv6.conf.all.forwarding, or the device's force_forwarding."""
    if ctx.flow.v6:
        return ctx.reads.forwarding6(ns, dev)
    ipf, (_, dev_fwd) = ctx.reads.sysctl(ns, "net.ipv4.ip_forward"), ctx.reads.conf(ns, dev, "forwarding")
    if ipf == "0":
        return True, "net.ipv4.ip_forward=0", "sysctl -w net.ipv4.ip_forward=1"
    return dev_fwd == 0, f"net.ipv4.conf.{dev}.forwarding={dev_fwd}", f"sysctl -w net.ipv4.conf.{dev}.forwarding=1"


def explain_drop(ctx: Context, ns: str, dev: str | None, reason: str, packet: packets.Packet | None, *, counter: str | None = None) -> Finding:
    seen = f"{reason}" if counter is None else f"{counter} counted, no other packet arrived"
    at = f"{ns} on {dev}" if dev else ns
    where = Where(ns, dev)
    what = ctx.packet_name(packet)
    if reason == "IP_INADDRERRORS" and dev:
        _, off, fix = forwarding(ctx, ns, dev)
        onward = ctx.reads.route_get(ns, packet.dst) if packet else None
        if onward is not None and onward.type == "unicast":
            return Finding(Cause.FORWARDING_OFF, where, f"the {what} was dropped in {at}: {seen} ({off}: {ns} does not forward; ip netns exec {ns} {fix})", reason)
        text = f"the {what} left {ctx.src} by the default route" if left_by_default(ctx) else f"the {what} from {ctx.src}"
        return Finding(
            Cause.LOST_VIA_DEFAULT_ROUTE if left_by_default(ctx) else Cause.FORWARDING_OFF,
            where,
            f"{text}{_via(ctx)} and was dropped in {at}: {seen} ({ns} has no route to {packet.dst if packet else ctx.flow.dst} and {off})",
            reason,
        )
    if reason == "IP_RPFILTER" and dev and packet is not None:
        modes = ctx.reads.conf(ns, dev, "rp_filter")
        mode = max(modes)
        back = ctx.reads.route_get(ns, packet.src)
        why = f"there is no route back to {packet.src}" if not back.found else f"the route back to {packet.src} leaves by {back.dev}, not {dev}"
        kind = {1: "strict", 2: "loose"}.get(mode, str(mode))
        return Finding(Cause.RP_FILTER, where, f"the {what} was dropped in {at} by the reverse-path filter ({seen}; rp_filter={mode}, {kind}): {why}", reason)
    if reason == "NETFILTER_DROP":
        return Finding(Cause.FILTERED_BY_RULE, where, f"the {what} was dropped by a firewall rule in {at} ({seen}); list them: ip netns exec {ns} nft list ruleset", reason)
    if reason == "OTHERHOST":
        return Finding(Cause.WRONG_NEIGHBOUR, *_wrong_mac(ctx, ns, dev), reason)
    if reason == "PKT_TOO_BIG" and packet is not None:
        out = ctx.reads.route_get(ns, packet.dst)
        link = ctx.reads.link(ns, out.dev)
        mtu = f" (mtu {link.mtu})" if link else ""
        return Finding(Cause.TOO_BIG, Where(ns, out.dev), f"the {what} was too big for {ns}'s {out.dev}{mtu} and may not be fragmented (DF): dropped in {at} ({seen})", reason)
    if "VLAN" in reason:
        return Finding(Cause.BRIDGE_VLAN, where, f"the {what} was dropped by the bridge's VLAN filter in {at} ({seen})", reason)
    return Finding(Cause.NO_ANSWER, where, f"the {what} was dropped in {at} ({seen})", reason)


def _wrong_mac(ctx: Context, ns: str, dev: str | None) -> tuple[Where, str]:
    """Who addressed the frame to a MAC that is not the receiver's, and what its neighbour entry says."""
    hop, out = ctx.flow.hops[0], ctx.sender_route.dev
    entry = ctx.reads.neighbour(ctx.src, hop)
    link = ctx.reads.link(ns, dev) if dev else None
    mac = link.mac if link else "?"
    said = f"{entry.mac} ({entry.state})" if entry else "an unknown MAC"
    return Where(ctx.src, out), (
        f"{ns}{' on ' + dev if dev else ''} dropped the {ctx.what} as addressed to another host: {ctx.src}'s neighbour entry for {hop} "
        f"on {out} says {said}, but {dev} has {mac} (ip -n {ctx.src} neigh replace {hop} lladdr {mac} dev {out}, or delete the entry)"
    )


# -- arrived, and the answer cannot be routed ------------------------------------------
def delivered_to(reads: Reads, flow: Flow, sightings: list[Sighting]) -> tuple[str, str, packets.Packet] | None:
    """Where the request entered a namespace that holds its destination address
    (as it arrived, after any NAT), per the kernel: (namespace, interface, packet)."""
    for s in sightings:
        p = s.packet
        if s.direction == "in" and s.dev != "lo" and p is not None and flow.is_request(p) and s.ns in reads.view.spaces and reads.is_local(s.ns, p.dst):
            return s.ns, s.dev, p
    return None


def no_route_back(ctx: Context) -> Finding | None:
    if ctx.flow.probe not in ANSWER:
        return None
    target = delivered_to(ctx.reads, ctx.flow, ctx.sightings)
    if target is None:
        return None
    ns, dev, packet = target
    arrived, answered = (ANSWER6 if ctx.flow.v6 else ANSWER)[ctx.flow.probe]
    got = ctx.deltas().get(ns, {})
    if ns == ctx.src or ctx.others_in.get(ns, 0) or not got.get(arrived) or got.get(answered) or _answer_left(ctx, ns):
        return None
    back = ctx.reads.route_get(ns, packet.src, packet.dst)
    if back.found:
        return None
    if ctx.deltas().get(ns, {}).get(answered):  # answered meanwhile, after all
        return None
    text = f"the {ctx.what} reached {ns} on {dev}, but {ns} has no route back to {packet.src}"
    if any(d.ns == ns and d.reason == "IP_RPFILTER" and d.packet is not None for d in ctx.drops):
        text = f"the {ctx.what} reached {ns} on {dev} and the reverse-path filter dropped it, but {ns} has no route back to {packet.src}"
    return Finding(Cause.NO_RETURN_ROUTE, Where(ns, dev), text)


def _answer_left(ctx: Context, ns: str) -> bool:
    return any(s.ns == ns and s.direction == "out" and s.packet and ctx.flow.is_answer(s.packet) for s in ctx.sightings)


# -- the next hop cannot be resolved ---------------------------------------------------
def unresolvable(ctx: Context) -> Finding | None:
    """The who-has for the next hop reached every host on the sender's segment
    (or, sent before this probe, is still unanswered: the sender's entry is
    INCOMPLETE or FAILED), and the kernel of none of those hosts will answer
    it: the address is not theirs and no proxy ARP may answer for it."""
    hop, dev = ctx.flow.hops[0], ctx.sender_route.dev
    if dev is None:
        return None
    asked = [s for s in ctx.sightings if s.kind in frames.SOLICITS and frames.fields_of(s.frame)[2] == hop]
    if any(s.kind in frames.ADVERTS and frames.fields_of(s.frame)[1] == hop for s in ctx.sightings):
        return None
    sent = ctx.flow.resolves or any(s.ns == ctx.src and s.direction == "out" for s in asked)
    if not sent:  # no who-has yet in this probe: is the kernel still resolving from an earlier one?
        entry = ctx.reads.neighbour(ctx.src, hop)
        if entry is None or not ("INCOMPLETE" in entry.state or "FAILED" in entry.state):
            return None
    segment = ctx.reads.hosts_on(ctx.src, dev)
    if segment is None:
        return None
    reached, cut = segment
    heard = {(s.ns, s.dev) for s in asked if s.direction == "in"}
    if sent and not reached <= heard:
        return None
    for ns, d in reached:
        if ctx.reads.holds(ns, hop) or max(ctx.reads.conf(ns, d, "proxy_arp")) > 0 or any(a == hop for _, a in ctx.reads.proxies(ns)):
            return None  # it may still answer: wait
    return cut_off(ctx, hop, cut) or Finding(
        Cause.NO_ARP_ANSWER,
        Where(ctx.src, dev),
        f"nobody answered {frames.resolver(hop)} for {hop} on {ctx.src}'s {dev}; "
        + (f"the request reached {_names(reached)}, where nobody has {hop}" if reached else "no other namespace heard the request"),
    )


def cut_off(ctx: Context, hop: str, cut: set[tuple[str, str]]) -> Finding | None:
    """Why the namespace that holds *hop* never heard the request: the other end of
    its veth is down, or is no port of the bridge the request was flooded through."""
    owner = _holder(ctx.reads, hop)
    if owner is None:
        return None
    ns, dev = owner
    peer = ctx.reads.peer(ns, dev)
    far = ctx.reads.link(*peer) if peer else None
    if peer is None or far is None:
        return None
    wired = f"{hop} is on {ns}'s {dev}, wired to {peer[1]} in {peer[0]}"
    near = ctx.reads.link(ns, dev)
    for end, link in ((peer, far), ((ns, dev), near)):
        if link is not None and not link.up:
            return Finding(Cause.LINK_DOWN, Where(*end), f"the {frames.resolver(hop)} request for {hop} never reached {ns}: {wired}, and {end[1]} in {end[0]} is down; ip -n {end[0]} link set {end[1]} up")
    bridges = {link.name for link in ctx.reads.links(peer[0]) if link.kind == "bridge"}
    flooded = sorted({s.dev for s in ctx.sightings if s.ns == peer[0] and s.dev in bridges and s.kind in frames.SOLICITS} - {far.master})
    if flooded:
        also = f" (it is a port of {far.master})" if far.master else ""
        return Finding(
            Cause.NOT_ON_BRIDGE,
            Where(*peer),
            f"the {frames.resolver(hop)} request for {hop} was flooded through {flooded[0]} in {peer[0]} but never reached {ns}: {wired}, "
            f"which is not a port of {flooded[0]}{also}; ip -n {peer[0]} link set {peer[1]} master {flooded[0]}",
        )
    return None


def _holder(reads: Reads, address: str) -> tuple[str, str] | None:
    """The lab namespace and interface holding *address*, per the kernel (the model says where to look first)."""
    hint = owner_of(reads.view.topology, address)
    names = [hint] if hint is not None and hint in reads.view.spaces else []
    names += [n for n in reads.view.spaces if n != hint] if len(reads.view.spaces) <= 64 else []
    for ns in names:
        if reads.is_local(ns, address):
            dev = next((a.dev for a in reads.kernel.addresses(reads.handle(ns), names=reads.names(ns)) if a.cidr.split("/")[0] == address), None)
            return (ns, dev) if dev and dev != "lo" else None
    return None


# -- stopped where it was last seen ---------------------------------------------------------
def stopped_where_seen(ctx: Context) -> Finding | None:
    """The request entered a namespace and was not seen leaving it, and the kernel's decisions
    there (asked now: its route lookup for this packet on the way in, its way out, its delivery)
    stop it without a word back: a blackhole, a ping it ignores by sysctl; and, while no ICMP
    error can follow within the deadline (neighbour resolution gives up later), a link down on
    its way out or a holder of the next hop whose knobs forbid an answer."""
    from nslab.diagnosis.stages import At
    from nslab.diagnosis.walk import walk

    for s in reversed(ctx.requests_in()):
        p = s.packet
        assert p is not None, "requests_in() holds sightings of the request's packet"
        if s.ns == ctx.src or ctx.request_left(s.ns):
            continue
        at = At(s.ns, p.src, p.dst, s.dev, ctx.what, "tcp" if p.proto == packets.TCP else "icmp", p.dport if p.proto == packets.TCP else None)
        stop = walk(ctx.reads, at, hops=1, deliver=ctx.flow.probe == "ping").stop
        if stop is not None and _silent(ctx, stop, s.ns):
            return stop
        return None
    return None


def _silent(ctx: Context, stop: Finding, ns: str) -> bool:
    blamed = [c for c in stop.claims if c.blames]
    if not blamed:
        return False
    if all(c.value == "blackhole" or c.obj.startswith(("sysctl net.ipv4.icmp_echo_ignore", "sysctl net.ipv6.icmp.echo_ignore")) for c in blamed):
        return True
    if stop.cause in (Cause.LINK_DOWN, Cause.NO_ARP_ANSWER, Cause.FILTERED_BY_RULE, Cause.RP_FILTER):
        return ctx.timeout < _resolution_gives_up(ctx, ns, ctx.reads.route_get(ns, ctx.flow.hops[-1]).dev)
    return False


def _resolution_gives_up(ctx: Context, ns: str, dev: str | None) -> float:
    """Seconds until *ns*'s kernel gives up resolving a neighbour on *dev* and answers with an
    ICMP error: mcast_solicit tries, retrans_time_ms apart, as read for that device."""
    if dev is None:
        return 0.0
    tries, ms = ctx.reads.sysctl(ns, f"net.ipv4.neigh.{dev}.mcast_solicit"), ctx.reads.sysctl(ns, f"net.ipv4.neigh.{dev}.retrans_time_ms")
    try:
        return int(tries or 0) * int(ms or 0) / 1000
    except ValueError:
        return 0.0


# -- helpers ------------------------------------------------------------------------------
def left_by_default(ctx: Context) -> bool:
    """The kernel sent it by a gateway, and the sender's main table holds no route for it but the default."""
    if ctx.sender_route.via is None:
        return False
    dst = ipaddress.ip_address(ctx.flow.dst)
    routes = ctx.reads.routes(ctx.src, 6 if ctx.flow.v6 else 4)
    return not any(r.dst != "default" and dst in ipaddress.ip_network(r.dst, strict=False) for r in routes if r.type == "unicast")


def _via(ctx: Context) -> str:
    return f" via {ctx.sender_route.via}" if ctx.sender_route.via else ""


def _names(hosts: set[tuple[str, str]]) -> str:
    return ", ".join(sorted(f"{ns} ({dev})" for ns, dev in hosts))
