"""Neighbour resolution: who on the segment holds the next hop, as the kernel wires the
segment, and why that host's kernel stays silent when it does.

The segment is followed through veth peers and bridges (`Reads.hosts_on`). A host
that holds the address answers an ARP request unless a knob of its own says not to:
arp_ignore and arp_filter (combined with `all` as the kernel combines them), the
source validation ARP goes through (rp_filter), `arp off` on its device, or a netfilter
chain on the ARP exchange's way (the asker's and the holder's `arp` family chains, the
holder's netdev ingress).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Iterable

from nslab.diagnosis import frames
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.evidence import DropSeen
from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, address, bridge, cmd, combined, netfilter, number, queue, routing, set_sysctl, sysctl
from nslab.diagnosis.stages import link as links
from nslab.kernel.state import LinkState
from nslab.model.queries import owner_of
from nslab.probes.result import Cause, Claim, Remedy, Where

ETH_HEADER, VLAN_HEADER = 14, 4  # a device's MTU counts what follows the Ethernet header


def holders(reads: Reads, hosts: Iterable[tuple[str, str]], address: str) -> list[tuple[str, str]]:
    """The hosts among *hosts* that hold *address* (a local route for it, or the address
    configured and not yet usable: an IPv6 address in DAD)."""
    return [(ns, dev) for ns, dev in sorted(hosts) if reads.holds(ns, address)]


@dataclass(frozen=True)
class Asked:
    """What the captures saw of one probe's neighbour resolution (ARP requests and replies,
    NDP solicitations and advertisements), every namespace of the lab watched: who asked for
    which address by which device, who heard it, who answered. The captures keep only those
    about *targets* (the probe's own next hop and destination); of others nothing is known."""

    targets: frozenset[str]
    seen: tuple[tuple[Sighting, str], ...]  # each solicitation or answer, and the address it is about
    resolving: frozenset[tuple[str, str]] = frozenset()  # (namespace, address) whose resolution was under way when the probe began
    dropped: tuple[DropSeen, ...] = ()  # solicitations for targets the kernel dropped, with its reason

    @classmethod
    def of(cls, sightings: Iterable[Sighting], targets: Iterable[str], resolving: Iterable[tuple[str, str]] = (), drops: Iterable[DropSeen] = ()) -> "Asked":
        about = [(s, _address(_about(s))) for s in sightings if s.kind in frames.SOLICITS + frames.ADVERTS]
        asks = tuple(d for d in drops if d.asks is not None)
        return cls(frozenset(_address(t) for t in targets), tuple(about), frozenset((ns, _address(a)) for ns, a in resolving), asks)

    def drop_of(self, ns: str, target: str) -> DropSeen | None:
        """The kernel's drop of *ns*'s solicitation for *target*, if one was read."""
        return next((d for d in self.dropped if d.ns == ns and d.asks is not None and _address(d.asks) == _address(target)), None)

    def _of(self, target: str, kinds: tuple[str, ...], direction: str) -> list[Sighting] | None:
        address = _address(target)
        return [s for s, t in self.seen if t == address and s.kind in kinds and s.direction == direction] if address in self.targets else None

    def sent_by(self, ns: str, dev: str, target: str) -> bool | None:
        """Did *ns* send one for *target* by *dev*? None: the captures did not keep those."""
        sent = self._of(target, frames.SOLICITS, "out")
        return None if sent is None else any((s.ns, s.dev) == (ns, dev) for s in sent)

    def heard_by(self, target: str) -> set[str] | None:
        heard = self._of(target, frames.SOLICITS, "in")
        return None if heard is None else {s.ns for s in heard}

    def request_of(self, ns: str, dev: str, target: str) -> Sighting | None:
        """*ns*'s solicitation for *target* as it left by *dev* (None: none seen, or not kept)."""
        return next((s for s in self._of(target, frames.SOLICITS, "out") or [] if (s.ns, s.dev) == (ns, dev)), None)

    def answer_of(self, ns: str, target: str) -> Sighting | None:
        """*ns*'s answer for *target* as it left (None: none seen, or not kept)."""
        return next((s for s in self._of(target, frames.ADVERTS, "out") or [] if s.ns == ns), None)

    def answer_at(self, ns: str, dev: str, target: str) -> Sighting | None:
        """An answer for *target* as it arrived at *ns* on *dev* (None: none seen, or not kept)."""
        return next((s for s in self._of(target, frames.ADVERTS, "in") or [] if (s.ns, s.dev) == (ns, dev)), None)


def _about(s: Sighting) -> str:
    """The address a solicitation asks for, or an answer advertises."""
    _, sender, target = frames.fields_of(s.frame)
    return target if s.kind in frames.SOLICITS else sender


def _address(text: str) -> str:
    """One spelling per address (IPv6 has many)."""
    return ipaddress.ip_address(text).compressed


def unanswered(reads: Reads, at: At, dev: str, hop: str, asked: Asked | None) -> Finding:
    """Nobody answered *at*.ns's ARP request for *hop* on *dev*: why, from what is read.
    *asked*: the solicitations the captures saw (None: not every namespace was watched)."""
    base = f"nobody answered {'NDP' if ':' in hop else 'ARP'} for {hop} on {at.ns}'s {dev}"
    sip = reads.route_get(at.ns, hop).src or at.src
    segment = reads.hosts_on(at.ns, dev)
    if segment is None:
        return Finding(Cause.NO_ARP_ANSWER, Where(at.ns, dev), f"{base}; its segment leaves the lab or holds a device nslab cannot follow")
    reached, cut = segment
    earlier = False
    if asked is not None and asked.sent_by(at.ns, dev, hop) is False:
        drop = asked.drop_of(at.ns, hop)  # also the kernel's own retransmit of an earlier request's, dropped while this probe ran
        if drop is not None or (at.ns, _address(hop)) not in asked.resolving:
            return unsent(reads, at, dev, hop, drop)
        # The probe met an earlier request's resolution (the entry was INCOMPLETE when it began): its packet
        # waits for the retransmit timer, and is dropped with the entry when the last solicitation goes unanswered.
        entry = reads.neighbour(at.ns, hop)
        state = entry.state if entry is not None else "gone"
        key = f"net.{at.v}.neigh.{dev}.retrans_time_ms"
        base += f" (this probe sent none: it met an earlier request's resolution, its entry for {hop} now {state}, and its kernel asks again only when the retransmit timer fires, {key}={reads.sysctl(at.ns, key)})"
        asked, earlier = None, True  # the captures saw nothing of that earlier request
    heard = asked.heard_by(hop) if asked is not None else None
    for host in holders(reads, reached, hop):
        if earlier:  # what kept that earlier request unanswered is not known from now: the state may have changed since
            return Finding(Cause.NO_ARP_ANSWER, Where(at.ns, dev), f"{base}; {host[0]} holds {hop} on {host[1]}, wired to that segment now: probe again once its kernel asks anew")
        if heard is not None and host[0] not in heard:
            sent = asked.request_of(at.ns, dev, hop) if asked is not None else None
            lead = f"{base}: {host[0]} holds {hop} and the kernel wires {host[1]} to the segment, but no capture saw the request arrive there"
            if sent is not None:
                return lost_on_the_way(reads, (at.ns, dev), host, sent, ":" in hop, "request", f"{lead}: it left {dev} ({len(sent.frame)} bytes)")
            return Finding(Cause.NO_ARP_ANSWER, Where(*host), f"{lead}; the cause is unknown")
        answer = asked.answer_of(host[0], hop) if asked is not None else None
        if answer is not None:
            arrived = asked.answer_at(at.ns, dev, hop) if asked is not None else None
            return answer_refused(reads, at, dev, host, hop, base, arrived) if arrived is not None else answer_lost(reads, at, dev, host, hop, base, answer)
        return silent(reads, at, dev, host, hop, base, sip, heard is not None)
    for end in sorted(cut):
        if reads.is_local(end[0], hop) or any(reads.is_local(n, hop) for n in _behind(reads, end)):
            return _cut(reads, at, end, hop, base)
    return _nobody(reads, at, dev, hop, reached, base)


def unsent(reads: Reads, at: At, dev: str, hop: str, drop: DropSeen | None = None) -> Finding:
    """The captures saw *at*.ns send no solicitation for *hop* on *dev* while the probe ran
    (nobody can have answered one). The kernel's own drop of it where one was read (*drop*);
    else what the kernel reads before it sends one: its neighbour parameters (no multicast or
    application probes: the entry fails at once), the netfilter chains a request leaves
    through, and for NDP the source address: the packet's own if *dev* holds it, else a
    link-local address of *dev* that has passed DAD (ndisc_send_ns)."""
    word = "NDP" if ":" in hop else "ARP"
    base = f"{at.ns} sent no {word} request for {hop} on {dev} while the probe ran"
    if drop is not None:
        base = f"{at.ns}'s {word} request for {hop} never left {dev}: the kernel dropped it in {drop.ns}" + (f" on {drop.dev}" if drop.dev else "") + f" ({drop.reason})"
        if drop.reason == "NETFILTER_DROP":
            chains = netfilter.neighbour_stoppers(reads, at.ns, dev, word == "NDP", "request", "out")
            if chains:
                return dataclasses.replace(netfilter.neighbour_finding(Where(at.ns, dev), [(at.ns, s) for s in chains], f"{base}, and these chains on its way out can do it"), reason=drop.reason)
        link = reads.link(drop.ns, drop.dev) if drop.dev else None
        if link is not None and not link.up:
            return dataclasses.replace(links.down(reads, drop.ns, link.name, base), reason=drop.reason)
        if drop.reason in queue.REASONS:
            return queue.dropped(drop.ns, drop.dev, drop.reason, base, 6 if word == "NDP" else 4)
        return Finding(Cause.NO_ARP_ANSWER, Where(drop.ns, drop.dev), f"{base}; what was read there does not say why", drop.reason, claims=(Claim(drop.ns, "drop reason", drop.reason, dev=drop.dev),))
    keys = [f"net.{at.v}.neigh.{dev}.mcast_solicit", f"net.{at.v}.neigh.{dev}.app_solicit"]
    if all(number(reads.sysctl(at.ns, key)) == 0 for key in keys):
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(at.ns, dev),
            f"{base}: {keys[0]}=0 and {keys[1]}=0 there, so its kernel sends none and fails the entry at once; {cmd(at.ns, 'sysctl -w', keys[0] + '=3')}",
            claims=tuple(sysctl(reads, at.ns, key, blames=True, dev=dev) for key in keys),
            fixes=(set_sysctl(reads, at.ns, keys[0], 3, dev),),
        )
    if word == "NDP":
        found = _no_ndp_source(reads, at, dev, base)
        if found is not None:
            return found
    own = netfilter.neighbour_stoppers(reads, at.ns, dev, word == "NDP", "request", "out")
    if own:
        return netfilter.neighbour_finding(Where(at.ns, dev), [(at.ns, s) for s in own], f"{base}, and {at.ns}'s own chains can drop it as it leaves")
    return Finding(Cause.NO_ARP_ANSWER, Where(at.ns, dev), f"{base}; the cause is unknown")


def _no_ndp_source(reads: Reads, at: At, dev: str, base: str) -> Finding | None:
    """NDP needs a source: the packet's own if *dev* holds it usable, else a link-local address
    of *dev* that is neither tentative nor optimistic; without one the kernel sends nothing."""
    held = [a for a in reads.addresses(at.ns) if a.dev == dev and a.version == 6]
    if any(_address(a.ip) == _address(at.src) and not {"tentative", "optimistic"} & set(a.flags) for a in held):
        return None
    local = [a for a in held if a.scope == "link"]
    if any(not {"tentative", "optimistic", "dadfailed"} & set(a.flags) for a in local):
        return None
    source = f"the {at.what}'s source {at.src} is not {at.ns}'s own on {dev}, so a solicitation must come from a link-local address of {dev}"
    if not local:
        mode = reads.sysctl(at.ns, f"net.ipv6.conf.{dev}.addr_gen_mode")
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(at.ns, dev),
            f"{base}: {source}, and {dev} has none (net.ipv6.conf.{dev}.addr_gen_mode={mode}); {cmd(at.ns, 'ip -6 addr add', 'fe80::1/64', 'dev', dev)}",
            claims=(Claim(at.ns, f"address fe80::/64 dev {dev}", "absent", dev=dev, blames=True), sysctl(reads, at.ns, f"net.ipv6.conf.{dev}.addr_gen_mode", dev=dev)),
            fixes=(Remedy(at.ns, f"ip -6 addr add fe80::1/64 dev {dev} nodad", f"ip -6 addr del fe80::1/64 dev {dev}", dev),),
        )
    first = local[0]
    state = " ".join(f for f in first.flags if f in ("tentative", "optimistic", "dadfailed"))
    if "dadfailed" in first.flags:
        return Finding(
            Cause.DAD_FAILED,
            Where(at.ns, dev),
            f"{base}: {source}, and its {first.cidr} failed duplicate address detection (another host holds it)",
            claims=(Claim(at.ns, f"address {first.cidr} dev {dev}", state, dev=dev, blames=True),),
        )
    key = f"net.ipv6.conf.{dev}.dad_transmits"
    return Finding(
        Cause.ADDRESS_TENTATIVE,
        Where(at.ns, dev),
        f"{base}: {source}, and its {first.cidr} is still {state}: duplicate address detection sends {key}={reads.sysctl(at.ns, key)} "
        "solicitations first, a retransmit interval (a second) apart, and the kernel solicits once it ends",
        claims=(Claim(at.ns, f"address {first.cidr} dev {dev}", state, dev=dev, blames=True), sysctl(reads, at.ns, key, dev=dev)),
    )


def silent(reads: Reads, at: At, dev_out: str, host: tuple[str, str], hop: str, base: str, sip: str, seen: bool) -> Finding:
    """*host* holds *hop* and is wired to the segment *at*.ns sent its request on (by *dev_out*;
    *seen*: a capture saw the request arrive): which of its knobs keeps it silent, or which
    chain on the exchange's way can stop it."""
    ns, dev = host
    v6 = ":" in hop
    who = f"{ns} holds {hop} and heard the request on {dev}" if seen else f"{ns} holds {hop} on {dev}, wired to that segment"
    if not seen:  # a bridge between them may take the request in from no port, or send it out to none
        request = b"\x33\x33\xff\x00\x00\x00" if v6 else b"\xff" * 6  # its destination: NDP's solicited-node multicast, ARP's broadcast
        bridged = bridge.stop(reads, reads.peer(at.ns, dev_out) or (at.ns, dev_out), reads.peer(ns, dev), request)
        if bridged is not None:
            words, claim, fix = bridged
            return Finding(Cause.NO_ARP_ANSWER, Where(claim.ns, claim.dev), f"{base}: {who}, but {words}", claims=(claim,), fixes=(fix,))
    chains = [(ns, x) for x in netfilter.neighbour_stoppers(reads, ns, dev, v6, "request", "in") + netfilter.neighbour_stoppers(reads, ns, dev, v6, "reply", "out")]
    chains += [(at.ns, x) for x in netfilter.neighbour_stoppers(reads, at.ns, dev_out, v6, "reply", "in") + ([] if seen else netfilter.neighbour_stoppers(reads, at.ns, dev_out, v6, "request", "out"))]
    chains += [(b, x) for b in _bridging(reads, [(ns, dev), (at.ns, dev_out)]) for op in ("reply",) + (() if seen else ("request",)) for x in netfilter.bridge_stoppers(reads, b, v6, op)]
    chains = list(dict.fromkeys(chains))
    link = reads.link(ns, dev)
    if link is not None and link.noarp:
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(ns, dev),
            f"{base}: {who}, but {dev} there does no ARP (arp off), so its kernel answers no {'solicitation' if v6 else 'ARP request'} on it; {cmd(ns, 'ip link set', dev, 'arp on')} && {cmd(ns, 'ip neigh flush dev', dev, 'nud noarp')}",
            claims=(Claim(ns, f"link {dev}", "arp off", dev=dev, blames=True),),
            fixes=(_arp_on(ns, dev),),
        )
    if v6:  # IPv6's own reasons (tentative, disabled, another interface) are nslab/diagnosis/ipv6.py's
        if chains:
            return netfilter.neighbour_finding(Where(ns, dev), chains, f"{base}: {who}, but chains on the way of the solicitation or its answer can drop it")
        return Finding(Cause.NO_ARP_ANSWER, Where(ns, dev), f"{base}: {who}, yet did not answer; no netfilter chain on the NDP exchange's way; the cause is unknown")
    check = routing.decide(reads, At(ns, sip, hop, dev, "ARP request"))
    if isinstance(check, Finding):
        return Finding(Cause.NO_ARP_ANSWER if check.cause is Cause.UNKNOWN else check.cause, check.where, f"{base}: {who}, but {check.text}", claims=check.claims, fixes=check.fixes)
    ignore, keys = combined(reads, ns, dev, "arp_ignore", "max")
    on_dev = [a for a in reads.addresses(ns) if a.dev == dev and a.ip == hop]
    same_subnet = any(routing.within(sip, a.cidr, network=True) for a in on_dev)
    if ignore >= 8 or (ignore in (1, 2, 3) and not on_dev) or (ignore == 2 and not same_subnet):
        why = (
            "never answers for its addresses"
            if ignore >= 8
            else f"answers only for addresses on {dev}, and {hop} is on another interface"
            if not on_dev
            else f"answers only a sender in the subnet of {hop} on {dev}, and the request came from {sip}"
        )
        return _knob(reads, ns, dev, keys, f"{base}: {who}, but arp_ignore={ignore} there ({', '.join(keys)}) {why}; {cmd(ns, 'sysctl -w', keys[-1] + '=0')}")
    filtering, fkeys = combined(reads, ns, dev, "arp_filter", "or")
    back = reads.route_get(ns, sip)
    if filtering and back.found and back.dev != dev:
        return _knob(reads, ns, dev, fkeys, f"{base}: {who}, but arp_filter is on there ({', '.join(fkeys)}) and its route back to {sip} leaves by {back.dev}, not {dev}")
    if chains:
        return netfilter.neighbour_finding(Where(ns, dev), chains, f"{base}: {who}, but chains on the way of the request or its answer can drop it")
    return Finding(
        Cause.NO_ARP_ANSWER,
        Where(ns, dev),
        f"{base}: {who}, yet did not answer; read there: arp_ignore={ignore}, arp_filter={filtering}, no netfilter chain on the ARP exchange's way; the cause is unknown",
        claims=(sysctl(reads, ns, f"net.ipv4.conf.{dev}.arp_ignore", dev=dev), sysctl(reads, ns, f"net.ipv4.conf.{dev}.arp_filter", dev=dev)),
    )


def _bridging(reads: Reads, ends: list[tuple[str, str]]) -> list[str]:
    """The namespaces that bridge frames between *ends*: where the veth peer of an end is a bridge's port."""
    peers = [reads.peer(*end) for end in ends]
    return list(dict.fromkeys(p[0] for p in peers if p is not None and (link := reads.link(*p)) is not None and link.master is not None))


def answer_lost(reads: Reads, at: At, dev_out: str, host: tuple[str, str], hop: str, base: str, answer: Sighting) -> Finding:
    """*host* answered (*answer*: its reply, seen leaving it) and the answer never reached *at*.ns:
    who addressed it elsewhere, or what on its way can drop it (lost_on_the_way)."""
    ns, dev = host
    word = "NDP advertisement" if ":" in hop else "ARP reply"
    left = f"{base}: {ns} holds {hop} and answered: its {word} left {dev} ({len(answer.frame)} bytes)"
    wrong = _misaddressed_answer(reads, at, dev_out, host, answer, left, "so it could not reach there")
    return wrong or lost_on_the_way(reads, host, (at.ns, dev_out), answer, ":" in hop, "reply", left)


def lost_on_the_way(reads: Reads, sender: tuple[str, str], receiver: tuple[str, str], frame: Sighting, v6: bool, op: str, lead: str) -> Finding:
    """*frame* (an ARP or NDP *op*, seen leaving *sender*) never reached *receiver*: what on its way
    can drop it. A device it passes after the capture saw it (the sender's veth peer, a bridge
    port it is bridged out of, the receiver's own end) that is too small for it; the chains of
    the bridge family where it is bridged, the netdev chains of the devices it enters and leaves
    by on the way (a bridge's ports); the receiver's ingress chains. In the kernel's order:
    the port it enters the bridge by, the bridge's decision (port states and flags), then the
    port it leaves by and the receiver."""
    ingress, egress = reads.peer(*sender), reads.peer(*receiver)
    found = _too_small_on_the_way(reads, ingress, frame, v6, False, lead)
    if found is not None:
        return found
    bridged = bridge.stop(reads, ingress or sender, egress, frame.frame)
    if bridged is not None:
        words, claim, fix = bridged
        return Finding(Cause.NO_ARP_ANSWER, Where(claim.ns, claim.dev), f"{lead}, but {words}", claims=(claim,), fixes=(fix,))
    found = _too_small_on_the_way(reads, egress, frame, v6, True, lead) or _too_small_on_the_way(reads, receiver, frame, v6, False, lead)
    if found is not None:
        return found
    chains = [(end[0], x) for end, hook in ((ingress, "ingress"), (egress, "egress")) if end is not None for x in netfilter.device_stoppers(reads, *end, v6, op, hook)]
    chains += [(b, x) for b in _bridging(reads, [sender, receiver]) for x in netfilter.bridge_stoppers(reads, b, v6, op)]
    chains += [(receiver[0], x) for x in netfilter.neighbour_stoppers(reads, *receiver, v6, op, "in")]
    if chains:
        return netfilter.neighbour_finding(Where(*receiver), chains, f"{lead}, but chains on its way to {receiver[0]} can drop it")
    return Finding(Cause.NO_ARP_ANSWER, Where(*receiver), f"{lead}, and it did not reach {receiver[0]}; no MTU or netfilter chain read on its way stops it; the cause is unknown")


def _too_small_on_the_way(reads: Reads, end: tuple[str, str] | None, frame: Sighting, v6: bool, out: bool, lead: str) -> Finding | None:
    """*end*, a device *frame* passes (*out*: leaves by), too small for it (_too_small)."""
    small = _too_small(reads, end, len(frame.frame), v6, out) if end is not None else None
    if end is None or small is None:
        return None
    mtu, why, claims = small
    return Finding(
        Cause.NO_ARP_ANSWER,
        Where(*end),
        f"{lead}, but {end[1]} in {end[0]} on its way has MTU {mtu}: {why}; {cmd(end[0], 'ip link set dev', end[1], 'mtu 1500')}",
        claims=(Claim(end[0], f"link {end[1]}", f"mtu {mtu}", dev=end[1], blames=True), *claims),
        fixes=(Remedy(end[0], f"ip link set dev {end[1]} mtu 1500", f"ip link set dev {end[1]} mtu {mtu}", end[1]),),
    )


def answer_refused(reads: Reads, at: At, dev_out: str, host: tuple[str, str], hop: str, base: str, arrived: Sighting) -> Finding:
    """*host*'s answer reached *at*.ns on *dev_out* (*arrived*, as captured) and was not taken.
    A frame addressed to another host's MAC is dropped on arrival: who chose that address (a
    holder's device without ARP addresses every neighbour with its own MAC; else its neighbour
    entry for the asker)."""
    ns, dev = host
    word = "NDP advertisement" if ":" in hop else "ARP reply"
    came = f"{ns} holds {hop} and answered, and its {word} reached {at.ns} on {dev_out}"
    wrong = _misaddressed_answer(reads, at, dev_out, host, arrived, f"{base}: {came}", f"so {at.ns}'s kernel dropped it as another host's")
    if wrong is not None:
        return wrong
    chains = [(at.ns, x) for x in netfilter.neighbour_stoppers(reads, at.ns, dev_out, ":" in hop, "reply", "in")]
    if chains:
        return netfilter.neighbour_finding(Where(at.ns, dev_out), chains, f"{base}: {came}, but chains on its way in there can drop it")
    return Finding(Cause.NO_ARP_ANSWER, Where(at.ns, dev_out), f"{base}: {came}, and {at.ns} did not take it; the cause is unknown")


def _misaddressed_answer(reads: Reads, at: At, dev_out: str, host: tuple[str, str], answer: Sighting, lead: str, then: str) -> Finding | None:
    """*host*'s answer (*answer*, as captured) is addressed to a MAC that is not *dev_out*'s: who
    chose that address (a holder's device without ARP addresses every neighbour with its own
    MAC; else its neighbour entry for the asker). None where it is addressed to *dev_out*."""
    ns, dev = host
    to = frames.destination(answer.frame)
    mine = reads.link(at.ns, dev_out)
    if mine is None or to == mine.mac.lower() or answer.frame[0] & 1:
        return None
    lead = f"{lead} addressed to {to}, not to {at.ns}'s {dev_out} ({mine.mac}), {then}"
    theirs = reads.link(ns, dev)
    if theirs is not None and theirs.noarp and to == theirs.mac.lower():
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(ns, dev),
            f"{lead}: {dev} in {ns} does no ARP (arp off), so its kernel addresses every neighbour with {dev}'s own MAC; {cmd(ns, 'ip link set', dev, 'arp on')} && {cmd(ns, 'ip neigh flush dev', dev, 'nud noarp')}",
            claims=(Claim(ns, f"link {dev}", "arp off", dev=dev, blames=True), Claim(at.ns, f"link {dev_out}", f"mac {mine.mac}", dev=dev_out)),
            fixes=(_arp_on(ns, dev),),
        )
    asker = frames.fields_of(answer.frame)[2]
    entry = reads.neighbour(ns, asker)
    if entry is not None and entry.mac is not None and entry.mac.lower() == to:
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(ns, dev),
            f"{lead}: {ns}'s neighbour entry for {asker} holds {entry.mac} ({entry.state}); {cmd(ns, 'ip neigh del', asker, 'dev', entry.dev)}",
            claims=(Claim(ns, f"neigh {asker} dev {entry.dev}", f"lladdr {entry.mac} {entry.state}", dev=entry.dev, blames=True),),
            fixes=(Remedy(ns, f"ip neigh del {asker} dev {entry.dev}", f"ip neigh replace {asker} lladdr {entry.mac} dev {entry.dev} nud {entry.state.lower()}", entry.dev),),
        )
    return Finding(Cause.NO_ARP_ANSWER, Where(at.ns, dev_out), f"{lead}; what made {ns} choose {to} was not read")


def _too_small(reads: Reads, end: tuple[str, str], size: int, v6: bool, bridged_out: bool) -> tuple[int, str, tuple[Claim, ...]] | None:
    """Is *end* too small for a frame of *size* bytes, as the kernel measures it there? A device
    takes a frame up to its MTU, the Ethernet header and a VLAN tag (is_skb_forwardable: a veth
    receiving, a bridge port sending); where br_netfilter hands a bridged IPv6 frame to the ip6
    hooks, the packet itself must fit the port it is bridged out of (br_nf_dev_queue_xmit)."""
    link = reads.link(*end)
    if link is None:
        return None
    key = "net.bridge.bridge-nf-call-ip6tables"
    if bridged_out and v6 and link.master is not None and reads.sysctl(end[0], key) == "1":
        if size - ETH_HEADER > link.mtu:
            why = f"bridged out of it, its {size - ETH_HEADER}-byte packet does not fit, and with {key}=1 there the bridge drops an IPv6 packet it cannot send whole"
            return link.mtu, why, (sysctl(reads, end[0], key),)
        return None
    if size > link.mtu + ETH_HEADER + VLAN_HEADER:
        return link.mtu, f"the {size}-byte frame is larger than it takes (its MTU, the Ethernet header and a VLAN tag), and the kernel drops it", ()
    return None


def _arp_on(ns: str, dev: str) -> Remedy:
    """ARP back on *dev*, and the entries made without it flushed: an entry in state NOARP (the
    device's own MAC for every neighbour) is not updated by what arrives, and a route may keep it."""
    return Remedy(ns, f"ip link set {dev} arp on && ip neigh flush dev {dev} nud noarp", f"ip link set {dev} arp off", dev)


def _knob(reads: Reads, ns: str, dev: str, keys: list[str], text: str) -> Finding:
    """The holder's sysctls *keys* (as the kernel combines them) keep it from answering."""
    return Finding(
        Cause.NO_ARP_ANSWER,
        Where(ns, dev),
        text,
        claims=tuple(sysctl(reads, ns, key, blames=True, dev=dev) for key in keys),
        fixes=tuple(set_sysctl(reads, ns, key, 0, dev) for key in keys),
    )


def _behind(reads: Reads, end: tuple[str, str]) -> list[str]:
    """The namespace at the other end of a cut veth end."""
    peer = reads.peer(*end)
    return [peer[0]] if peer else []


def _cut(reads: Reads, at: At, end: tuple[str, str], hop: str, base: str) -> Finding:
    """The host holding *hop* is cut off: a veth end (or a bridge) on the way is down."""
    peer = reads.peer(*end)
    holder = next(((n, d) for n, d in [end] + ([peer] if peer else []) if reads.is_local(n, hop)), None)
    held = f"{hop} is on {holder[0]}'s {holder[1]}" if holder else f"{hop} is behind {end[1]} in {end[0]}"
    for ns, dev in [end] + ([peer] if peer else []):
        link = reads.link(ns, dev)
        if link is not None and not link.up:
            return links.down(reads, ns, dev, f"{base}: {held}, and the way to it goes through {dev} in {ns}, which is down")
    return Finding(Cause.LINK_DOWN, Where(*end), f"{base}: the way to {hop} is cut at {end[1]} in {end[0]}")


def _nobody(reads: Reads, at: At, dev: str, hop: str, reached: set[tuple[str, str]], base: str) -> Finding:
    """No host the segment reaches holds *hop*: where the model says it should be, what is there."""
    hosts = ", ".join(f"{n} ({d})" for n, d in sorted(reached)) or "no other host"
    owner = owner_of(reads.view.topology, hop)
    expected = next((a for a in reads.view.topology.addresses if a.ns == owner and str(a.interface.ip) == hop), None)
    if owner is not None and owner in reads.view.spaces and expected is not None:
        if not reads.is_local(owner, hop):
            why = address.absent(reads, owner, expected)
            return Finding(
                Cause.NO_ARP_ANSWER,
                Where(owner, expected.dev),
                f"{base}: the segment reaches {hosts}, and none holds {hop}; {owner}'s {expected.dev}, where the lab puts it, has no address {hop}"
                + (f": {why.words}" if why.words else ""),
                claims=why.claims,
                fixes=why.fixes,
            )
        found = _not_reached(reads, owner, hop, reached)
        if found is not None:
            return found
    return Finding(
        Cause.NO_ARP_ANSWER,
        Where(at.ns, dev),
        f"{base}: the segment, as the kernel wires it, reaches {hosts}, and none of them holds {hop}",
        claims=tuple(Claim(n, f"address {hop}", "not held", dev=d) for n, d in sorted(reached)),
    )


def _not_reached(reads: Reads, owner: str, hop: str, reached: set[tuple[str, str]]) -> Finding | None:
    """*owner* holds *hop* but the segment does not reach it: the veth end facing it is no port of
    the bridge the others are on."""
    dev = next((a.dev for a in reads.addresses(owner) if a.ip == hop), None)
    peer = reads.peer(owner, dev) if dev else None
    if peer is None:
        return None
    far = reads.link(*peer)
    bridges = sorted({d for n, d in reached if n == peer[0] and ((link := reads.link(n, d)) is not None and link.kind == "bridge")})
    if far is not None and not bridges and far.master and dev:
        return _outside(reads, owner, hop, dev, peer, far.master, reached)
    if far is None or not bridges or far.master in bridges:
        return None
    word = "NDP" if ":" in hop else "ARP"
    lead = f"the {word} request for {hop} was flooded through {bridges[0]} in {peer[0]} but never reached {owner}: {hop} is on {owner}'s {dev}, wired to {peer[1]} in {peer[0]}, which"
    return off_bridge(peer[0], far, bridges[0], lead)


def _outside(reads: Reads, owner: str, hop: str, dev: str, peer: tuple[str, str], bridge: str, reached: set[tuple[str, str]]) -> Finding | None:
    """*owner*'s side is a port of *bridge*, but the asker's segment ends at a veth end in the same
    namespace that is not: the asker's side is the one off the bridge."""
    ends = sorted(d for n, d in reached if n == peer[0] and (link := reads.link(n, d)) is not None and link.kind == "veth" and link.master != bridge)
    if len(ends) != 1:
        return None
    end = reads.link(peer[0], ends[0])
    assert end is not None
    word = "NDP" if ":" in hop else "ARP"
    lead = f"the {word} request for {hop} reached {end.name} in {peer[0]} and went no further: {hop} is on {owner}'s {dev}, wired to {peer[1]}, a port of {bridge}, but {end.name}"
    return off_bridge(peer[0], end, bridge, lead)


def off_bridge(ns: str, port: LinkState, bridge: str, lead: str) -> Finding:
    """*port* in *ns* is no port of *bridge* (*lead* says why that matters): the link blamed, and
    putting it back on the bridge as the fix."""
    also = f" (it is a port of {port.master})" if port.master else ""
    was = f"master {port.master}" if port.master else "nomaster"
    return Finding(
        Cause.NOT_ON_BRIDGE,
        Where(ns, port.name),
        f"{lead} is not a port of {bridge}{also}; {cmd(ns, 'ip link set', port.name, 'master', bridge)}",
        claims=(Claim(ns, f"link {port.name}", was, dev=port.name, blames=True),),
        fixes=(Remedy(ns, f"ip link set {port.name} master {bridge}", f"ip link set {port.name} {was}", port.name),),
    )
