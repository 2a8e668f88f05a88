"""The way out of a namespace: the device the route chose, the veth peer behind it and
the bridge that peer is a port of, and the device's MTU."""

from __future__ import annotations

from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, cmd, link_up, lost_addresses6
from nslab.probes.result import Cause, Claim, Remedy, Where


def way_out(reads: Reads, at: At, dev: str) -> Finding | None:
    """*dev* (or what its frames meet next: the veth peer, the bridge it is a port of) is down."""
    link = reads.link(at.ns, dev)
    if link is None:
        return None
    if not link.up:
        return down(reads, at.ns, dev, f"the {at.what} could not leave {at.ns}: its {dev} is down")
    peer = reads.peer(at.ns, dev)
    far = reads.link(*peer) if peer else None
    if peer is not None and far is not None and not far.up:
        return down(reads, peer[0], peer[1], f"the {at.what} could not get past {at.ns}'s {dev}: its peer {peer[1]} in {peer[0]} is down")
    if peer is not None and far is not None and far.master is not None:
        bridge = reads.link(peer[0], far.master)
        if bridge is not None and not bridge.up:
            return down(reads, peer[0], bridge.name, f"the {at.what} could not get through: {peer[1]}, the other end of {at.ns}'s {dev}, is a port of bridge {bridge.name} in {peer[0]}, which is down")
    return None


def down(reads: Reads, ns: str, dev: str, text: str) -> Finding:
    """*dev* in *ns* is down (as read): *text* says what that did to the packet, and which of
    the lab's IPv6 addresses on it the kernel no longer holds."""
    lost = [a.cidr for a in lost_addresses6(reads, ns, dev)]
    if lost:
        key = f"net.ipv6.conf.{dev}.keep_addr_on_down"
        text += f"; {ns} no longer holds {', '.join(lost)} on {dev} ({key}={reads.sysctl(ns, key)})"
    return Finding(
        Cause.LINK_DOWN,
        Where(ns, dev),
        f"{text}; {cmd(ns, 'ip link set', dev, 'up')}" + "".join(f" && {cmd(ns, 'ip addr add', cidr, 'dev', dev)}" for cidr in lost),
        claims=(Claim(ns, f"link {dev}", "down", dev=dev, blames=True),),
        fixes=(link_up(reads, ns, dev),),
    )


def too_big(reads: Reads, at: At, dev: str, size: int | None = None) -> Finding:
    """The packet does not fit *dev*'s MTU and may not be fragmented."""
    link = reads.link(at.ns, dev)
    mtu = link.mtu if link else None
    peer = reads.peer(at.ns, dev)
    far = reads.link(*peer) if peer else None
    claims = (Claim(at.ns, f"link {dev}", f"mtu {mtu}", dev=dev, blames=True),)
    fixes: tuple[Remedy, ...] = ()
    if far is not None and mtu is not None and far.mtu > mtu:
        fixes = (Remedy(at.ns, f"ip link set {dev} mtu {far.mtu}", f"ip link set {dev} mtu {mtu}", dev),)
    big = f" ({size} bytes)" if size else ""
    return Finding(
        Cause.TOO_BIG,
        Where(at.ns, dev),
        f"the {at.what}{big} is larger than {at.ns}'s {dev} allows (mtu {mtu}) and may not be fragmented (DF)",
        claims=claims,
        fixes=fixes,
    )
