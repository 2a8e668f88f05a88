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

from typing import Iterable

from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, cmd, combined, netfilter, routing, set_sysctl, sysctl, with_lost_routes
from nslab.diagnosis.stages import link as links
from nslab.kernel.state import LinkState
from nslab.model.queries import owner_of
from nslab.probes.result import Cause, Claim, Remedy, Where


def holders(reads: Reads, hosts: Iterable[tuple[str, str]], address: str) -> list[tuple[str, str]]:
    """The hosts among *hosts* that hold *address* (a local route for it, or the address
    configured and not yet usable: an IPv6 address in DAD)."""
    return [(ns, dev) for ns, dev in sorted(hosts) if reads.holds(ns, address)]


def unanswered(reads: Reads, at: At, dev: str, hop: str, heard: set[str] | None) -> Finding:
    """Nobody answered *at*.ns's ARP request for *hop* on *dev*: why, from what is read.
    *heard*: the namespaces a capture saw the request reach (None: not all were watched)."""
    base = f"nobody answered {'NDP' if ':' in hop else 'ARP'} for {hop} on {at.ns}'s {dev}"
    sip = reads.route_get(at.ns, hop).src or at.src
    segment = reads.hosts_on(at.ns, dev)
    if segment is None:
        return Finding(Cause.NO_ARP_ANSWER, Where(at.ns, dev), f"{base}; its segment leaves the lab or holds a device nslab cannot follow")
    reached, cut = segment
    if heard is not None and not heard - {at.ns}:
        own = netfilter.arp_stoppers(reads, at.ns, dev, "request", "out")
        if own:
            return netfilter.arp_finding(Where(at.ns, dev), [(at.ns, s) for s in own], f"{base}: no namespace heard the request, and {at.ns}'s own chains can drop it as it leaves")
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
            return Finding(
                Cause.NO_ARP_ANSWER,
                Where(owner, expected.dev),
                f"{base}: the segment reaches {hosts}, and none holds {hop}; {owner}'s {expected.dev}, where the lab puts it, has no address {hop}",
                claims=(Claim(owner, f"address {expected.cidr} dev {expected.dev}", "absent", dev=expected.dev, blames=True),),
                fixes=(_readdress(reads, owner, expected),),
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


def _readdress(reads: Reads, ns: str, address) -> Remedy:
    """Put the address back, and the lab's routes through it that the kernel dropped with it."""
    return with_lost_routes(reads, ns, address.dev, f"ip addr add {address.cidr} dev {address.dev}", f"ip addr del {address.cidr} dev {address.dev}", [address.interface.network])


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
