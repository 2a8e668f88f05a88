"""The lab model of namespaces someone else built, as the kernel reports them.

nslab's explanations read the lab's model (which veth end faces which, which
namespace owns an address, which routes exist). A student's namespaces are
adopted, not built by nslab, so their model is read back: veth pairs matched
by peer ifindex and the netns id the kernel reports for the peer's namespace,
bridges, ports, IPv4 addresses and main-table routes. Netlink reads only.

Reading never refuses what the kernel accepted: the model is built with
`Topology.adopted`, so two default routes of different metrics or one address
on two links with two prefixes are taken as they are. What the model has no
words for (a multipath route, a macvlan) is left out of it, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from nslab.kernel.state import AddressState, LinkState, RouteState
from nslab.lab.live import Lab, Netns
from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth


@dataclass(frozen=True)
class Snapshot:
    """Links, addresses and routes of every namespace, read once: the script has
    ended and its processes are dead, so its setup no longer changes."""

    links: dict[str, list[LinkState]]
    addresses: dict[str, list[AddressState]]
    routes: dict[str, list[RouteState]]

    @classmethod
    def read(cls, lab: Lab) -> Snapshot:
        spaces = lab.namespaces
        return cls({ns.name: ns.links() for ns in spaces}, {ns.name: ns.addresses() for ns in spaces}, {ns.name: ns.routes() for ns in spaces})


def observe(lab: Lab, snap: Snapshot) -> Topology:
    """The topology the lab's namespaces really have (what cannot be modelled is left out)."""
    spaces = lab.namespaces
    links = snap.links
    namespaces = [Namespace(ns.name, lo_up=any(link.name == "lo" and link.up for link in links[ns.name])) for ns in spaces]
    bridges = [Bridge(ns, link.name, up=link.up) for ns, ls in links.items() for link in ls if link.kind == "bridge"]
    veths = _veths(spaces, links)
    modelled = {(b.ns, b.name) for b in bridges} | {(e[0], e[1]) for v in veths for e in v.ends()}
    addresses = []
    for ns in spaces:
        for a in snap.addresses[ns.name]:
            if a.version == 4 and (ns.name, a.dev) in modelled:
                addresses.append(Address(ns.name, a.dev, a.cidr))
    routes = []
    for ns in spaces:
        for r in snap.routes[ns.name]:
            if r.type != "unicast" or (r.dev is not None and (ns.name, r.dev) not in modelled):
                continue
            try:
                routes.append(Route(ns.name, r.dst, via=r.via, dev=r.dev, onlink=r.onlink))
            except LabError:
                continue  # no single next hop (a multipath route): the model has no words for it
    return Topology.adopted(namespaces, veths, bridges, addresses, routes)


def _veths(spaces: list[Netns], links: dict[str, list[LinkState]]) -> list[Veth]:
    by_index = {ns.name: {link.index: link for link in links[ns.name]} for ns in spaces}
    out, seen = [], set()
    for ns in spaces:
        for link in links[ns.name]:
            if link.kind != "veth" or link.peer_index is None or (ns.name, link.name) in seen:
                continue
            peer_ns = ns if link.peer_netnsid is None else _by_nsid(ns, spaces, link.peer_netnsid)
            peer = by_index[peer_ns.name].get(link.peer_index) if peer_ns is not None else None
            if peer_ns is None or peer is None or peer.kind != "veth":
                continue
            seen |= {(ns.name, link.name), (peer_ns.name, peer.name)}
            master = link.master if _is_bridge(links[ns.name], link.master) else None
            peer_master = peer.master if _is_bridge(links[peer_ns.name], peer.master) else None
            out.append(Veth(ns.name, link.name, peer_ns.name, peer.name, link.up, peer.up, master, peer_master))
    return out


def _by_nsid(ns: Netns, spaces: list[Netns], nsid: int) -> Netns | None:
    """The namespace that *ns* knows by *nsid* (RTM_GETNSID: asks, assigns nothing)."""
    for other in spaces:
        if other is ns:
            continue
        try:
            if ns.netnsid(other) == nsid:
                return other
        except Exception:  # noqa: BLE001, S112 - a namespace we cannot ask about is just not matched
            continue
    return None


def _is_bridge(links: list[LinkState], name: str | None) -> bool:
    return name is not None and any(link.name == name and link.kind == "bridge" for link in links)
