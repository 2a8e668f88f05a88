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

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from nslab.diagnosis import frames
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, address, cmd, combined, netfilter, number, routing, set_sysctl, sysctl
from nslab.diagnosis.stages import link as links
from nslab.kernel.state import LinkState
from nslab.model.queries import owner_of
from nslab.probes.result import Cause, Claim, Remedy, Where


def holders(reads: Reads, hosts: Iterable[tuple[str, str]], address: str) -> list[tuple[str, str]]:
    """The hosts among *hosts* that hold *address* (a local route for it, or the address
    configured and not yet usable: an IPv6 address in DAD)."""
    return [(ns, dev) for ns, dev in sorted(hosts) if reads.holds(ns, address)]


@dataclass(frozen=True)
class Asked:
    """What the captures saw of one probe's neighbour solicitations (ARP requests and NDP
    solicitations), every namespace of the lab watched: who sent one for which address, by
    which device, and who heard it. The captures keep only those for *targets* (the probe's
    own next hop and destination); of any other address nothing is known."""

    targets: frozenset[str]
    sent: frozenset[tuple[str, str, str]]  # (namespace, device, target)
    heard: frozenset[tuple[str, str]]  # (namespace, target)

    @classmethod
    def of(cls, sightings: Iterable[Sighting], targets: Iterable[str]) -> "Asked":
        asks = [(s, _address(frames.fields_of(s.frame)[2])) for s in sightings if s.kind in frames.SOLICITS]
        return cls(
            frozenset(_address(t) for t in targets),
            frozenset((s.ns, s.dev, t) for s, t in asks if s.direction == "out"),
            frozenset((s.ns, t) for s, t in asks if s.direction == "in"),
        )

    def sent_by(self, ns: str, dev: str, target: str) -> bool | None:
        """Did *ns* send one for *target* by *dev*? None: the captures did not keep those."""
        return (ns, dev, _address(target)) in self.sent if _address(target) in self.targets else None

    def heard_by(self, target: str) -> set[str] | None:
        return {ns for ns, t in self.heard if t == _address(target)} if _address(target) in self.targets else None


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
    if asked is not None and asked.sent_by(at.ns, dev, hop) is False:
        return unsent(reads, at, dev, hop)
    heard = asked.heard_by(hop) if asked is not None else None
    for host in holders(reads, reached, hop):
        if heard is not None and host[0] not in heard:
            return Finding(
                Cause.NO_ARP_ANSWER,
                Where(*host),
                f"{base}: {host[0]} holds {hop} and the kernel wires {host[1]} to the segment, but no capture saw the request arrive there; the cause is unknown",
            )
        return silent(reads, at, dev, host, hop, base, sip, heard is not None)
    for end in sorted(cut):
        if reads.is_local(end[0], hop) or any(reads.is_local(n, hop) for n in _behind(reads, end)):
            return _cut(reads, at, end, hop, base)
    return _nobody(reads, at, dev, hop, reached, base)


def unsent(reads: Reads, at: At, dev: str, hop: str) -> Finding:
    """The captures saw *at*.ns send no solicitation for *hop* on *dev* while the probe ran
    (nobody can have answered one): what the kernel reads before it sends one. Its neighbour
    parameters (no multicast or application probes: the entry fails at once), the netfilter
    chains an ARP request leaves through, and for NDP the source address: the packet's own
    if *dev* holds it, else a link-local address of *dev* that has passed DAD (ndisc_send_ns)."""
    word = "NDP" if ":" in hop else "ARP"
    base = f"{at.ns} sent no {word} request for {hop} on {dev} while the probe ran"
    keys = [f"net.{at.v}.neigh.{dev}.mcast_solicit", f"net.{at.v}.neigh.{dev}.app_solicit"]
    if all(number(reads.sysctl(at.ns, key)) == 0 for key in keys):
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(at.ns, dev),
            f"{base}: {keys[0]}=0 and {keys[1]}=0 there, so its kernel sends none and fails the entry at once; {cmd(at.ns, 'sysctl -w', keys[0] + '=3')}",
            claims=tuple(sysctl(reads, at.ns, key, blames=True, dev=dev) for key in keys),
            fixes=(set_sysctl(reads, at.ns, keys[0], 3, dev),),
        )
    own = netfilter.arp_stoppers(reads, at.ns, dev, "request", "out") if word == "ARP" else []
    if own:
        return netfilter.arp_finding(Where(at.ns, dev), [(at.ns, s) for s in own], f"{base}, and {at.ns}'s own chains can drop it as it leaves")
    if word == "NDP":
        found = _no_ndp_source(reads, at, dev, base)
        if found is not None:
            return found
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
    who = f"{ns} holds {hop} and heard the request on {dev}" if seen else f"{ns} holds {hop} on {dev}, wired to that segment"
    if ":" in hop:  # IPv6's own reasons (tentative, disabled, another interface) are nslab/diagnosis/ipv6.py's
        return Finding(Cause.NO_ARP_ANSWER, Where(ns, dev), f"{base}: {who}, yet did not answer; the cause is unknown")
    link = reads.link(ns, dev)
    if link is not None and link.noarp:
        return Finding(
            Cause.NO_ARP_ANSWER,
            Where(ns, dev),
            f"{base}: {who}, but {dev} there does no ARP (arp off), so its kernel drops ARP requests on it; {cmd(ns, 'ip link set', dev, 'arp on')}",
            claims=(Claim(ns, f"link {dev}", "arp off", dev=dev, blames=True),),
            fixes=(Remedy(ns, f"ip link set {dev} arp on", f"ip link set {dev} arp off", dev),),
        )
    check = routing.decide(reads, At(ns, sip, hop, dev, "ARP request"))
    if isinstance(check, Finding):
        return Finding(Cause.NO_ARP_ANSWER if check.cause is Cause.UNKNOWN else check.cause, check.where, f"{base}: {who}, but {check.text}", claims=check.claims, fixes=check.fixes)
    ignore, keys = combined(reads, ns, dev, "arp_ignore", "max")
    on_dev = any(a.ip == hop for a in reads.addresses(ns) if a.dev == dev)
    if ignore >= 8 or (ignore in (1, 2, 3) and not on_dev):
        why = "never answers for its addresses" if ignore >= 8 else f"answers only for addresses on {dev}, and {hop} is on another interface"
        return _knob(reads, ns, dev, keys, f"{base}: {who}, but arp_ignore={ignore} there ({', '.join(keys)}) {why}; {cmd(ns, 'sysctl -w', keys[-1] + '=0')}")
    filtering, fkeys = combined(reads, ns, dev, "arp_filter", "or")
    back = reads.route_get(ns, sip)
    if filtering and back.found and back.dev != dev:
        return _knob(reads, ns, dev, fkeys, f"{base}: {who}, but arp_filter is on there ({', '.join(fkeys)}) and its route back to {sip} leaves by {back.dev}, not {dev}")
    chains = [(ns, x) for x in netfilter.arp_stoppers(reads, ns, dev, "request", "in") + netfilter.arp_stoppers(reads, ns, dev, "reply", "out")]
    chains += [(at.ns, x) for x in netfilter.arp_stoppers(reads, at.ns, dev_out, "reply", "in") + ([] if seen else netfilter.arp_stoppers(reads, at.ns, dev_out, "request", "out"))]
    if chains:
        return netfilter.arp_finding(Where(ns, dev), chains, f"{base}: {who}, but chains on the way of the request or its answer can drop it")
    return Finding(
        Cause.NO_ARP_ANSWER,
        Where(ns, dev),
        f"{base}: {who}, yet did not answer; read there: arp_ignore={ignore}, arp_filter={filtering}, no netfilter chain on the ARP exchange's way; the cause is unknown",
        claims=(sysctl(reads, ns, f"net.ipv4.conf.{dev}.arp_ignore", dev=dev), sysctl(reads, ns, f"net.ipv4.conf.{dev}.arp_filter", dev=dev)),
    )


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
    return _off_bridge(peer[0], far, bridges[0], lead)


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
    return _off_bridge(peer[0], end, bridge, lead)


def _off_bridge(ns: str, port: LinkState, bridge: str, lead: str) -> Finding:
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
