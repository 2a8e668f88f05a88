"""Edits: changes to a built lab, one record per ip(8) command, applied by `Lab.apply`.

Each record says two things: what the model is after it (`after`, which
validates against the model and raises LabError before the kernel is touched)
and how the kernel makes it (`make`). `Lab.apply(change)` asks the first,
does the second, then records the first: `lab.topology` is always the lab the
kernel holds, and nothing else writes it.

    lab.apply(AddrAdd("ns1", "veth1", "10.0.0.1/24"))   # ip -n ns1 addr add 10.0.0.1/24 dev veth1

A link the lab did not make (a CNI plugin's, a student's) is changed in the
kernel and left out of the model: the kernel decides what it is.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from typing import TYPE_CHECKING, Any, Protocol

from nslab.model.topology import Address, Bridge, Namespace, Route, Topology, Veth, check_gateway, check_ifname

if TYPE_CHECKING:
    from nslab.lab.live import Lab


class Edit(Protocol):
    """A change to a built lab (each record below is one)."""

    def after(self, lab: Lab) -> Topology:
        """The lab's model once the change is made; raises LabError if the change is not valid."""
        ...

    def make(self, lab: Lab) -> None:
        """Make the change in the kernel (and wait until it can be used)."""
        ...


@dataclasses.dataclass(frozen=True)
class LinkAddVeth:
    """`ip -n NS link add NAME type veth peer name PEER netns PEER_NS` (both ends down)."""

    ns: str
    name: str
    peer_ns: str
    peer: str

    def after(self, lab: Lab) -> Topology:
        veth = Veth(self.ns, self.name, self.peer_ns, self.peer)
        return lab.topology.replace(veths=lab.topology.veths + (veth,))

    def make(self, lab: Lab) -> None:
        lab.kernel.add_veth(lab.ns(self.ns).handle, self.name, lab.ns(self.peer_ns).handle, self.peer)


@dataclasses.dataclass(frozen=True)
class LinkAddBridge:
    """`ip -n NS link add NAME type bridge` (down)."""

    ns: str
    name: str

    def after(self, lab: Lab) -> Topology:
        return lab.topology.replace(bridges=lab.topology.bridges + (Bridge(self.ns, self.name, up=False),))

    def make(self, lab: Lab) -> None:
        lab.kernel.add_bridge(lab.ns(self.ns).handle, self.name)


@dataclasses.dataclass(frozen=True)
class LinkSet:
    """`ip -n NS link set DEV [netns NETNS] [name NAME] [master BR|nomaster] [up|down]`."""

    ns: str
    dev: str
    up: bool | None = None
    netns: str | None = None
    name: str | None = None
    master: str | None = None
    nomaster: bool = False

    def after(self, lab: Lab) -> Topology:
        check_ifname(self.dev, "dev")
        if self.name is not None:
            check_ifname(self.name, "name")
        topo = lab.topology
        if self.dev == "lo" or self.dev in topo.links_in(self.ns):
            topo = _relink(topo, self)
        if self.dev == "lo" and self.up is not None:
            topo = topo.replace(namespaces=tuple(dataclasses.replace(n, lo_up=self.up) if n.name == self.ns else n for n in topo.namespaces))
        return topo

    def make(self, lab: Lab) -> None:
        handle = lab.ns(self.ns).handle
        target = lab.ns(self.netns).handle if self.netns is not None else None
        lab.kernel.set_link(handle, self.dev, up=self.up, master=self.master, nomaster=self.nomaster, netns=target, name=self.name)
        peer = lab.topology.peer(self.ns, self.dev)  # the model before the change
        if self.up:
            lab.kernel.wait_ready(handle)
            if peer is not None and peer[0] != self.ns:
                lab.kernel.wait_ready(lab.ns(peer[0]).handle)
        elif self.up is False and peer is not None:
            # the peer loses carrier now; when it comes back, its queue waits for linkwatch
            lab.ns(peer[0]).handle.expect_activation(peer[1])


@dataclasses.dataclass(frozen=True)
class LinkDel:
    """`ip -n NS link del DEV` (a veth takes its peer with it, and the routes through both)."""

    ns: str
    dev: str

    def after(self, lab: Lab) -> Topology:
        topo = lab.topology
        veths = tuple(v for v in topo.veths if (self.ns, self.dev) not in {(v.ns, v.name), (v.peer_ns, v.peer)})
        gone = {(e[0], e[1]) for v in topo.veths if v not in veths for e in v.ends()} | {(self.ns, self.dev)}
        left = topo.replace(
            veths=veths,
            bridges=tuple(b for b in topo.bridges if (b.ns, b.name) != (self.ns, self.dev)),
            addresses=tuple(a for a in topo.addresses if (a.ns, a.dev) not in gone),
            routes=(),
        )
        return left.with_routes_that_survive(topo.routes)

    def make(self, lab: Lab) -> None:
        lab.kernel.delete_link(lab.ns(self.ns).handle, self.dev)


@dataclasses.dataclass(frozen=True)
class AddrAdd:
    """`ip -n NS addr add CIDR dev DEV`."""

    ns: str
    dev: str
    cidr: str

    def after(self, lab: Lab) -> Topology:
        addr, topo = Address(self.ns, self.dev, self.cidr), lab.topology
        return topo.replace(addresses=topo.addresses + (addr,)) if self.dev in topo.links_in(self.ns) else topo

    def make(self, lab: Lab) -> None:
        lab.kernel.add_address(lab.ns(self.ns).handle, self.dev, Address(self.ns, self.dev, self.cidr).cidr)


@dataclasses.dataclass(frozen=True)
class AddrDel:
    """`ip -n NS addr del CIDR dev DEV`."""

    ns: str
    dev: str
    cidr: str

    def after(self, lab: Lab) -> Topology:
        addr = Address(self.ns, self.dev, self.cidr)
        return lab.topology.replace(addresses=tuple(a for a in lab.topology.addresses if a != addr))

    def make(self, lab: Lab) -> None:
        lab.kernel.del_address(lab.ns(self.ns).handle, self.dev, Address(self.ns, self.dev, self.cidr).cidr)


@dataclasses.dataclass(frozen=True)
class RouteAdd:
    """`ip -n NS route add DST [via VIA] [dev DEV] [onlink]`; a gateway must be reachable
    on a link (a connected subnet, or a route without a gateway), as the kernel requires."""

    route: Route

    def after(self, lab: Lab) -> Topology:
        route, topo = self.route, lab.topology
        if route.via is not None and not route.onlink:
            check_gateway(route, _on_link(lab, route), "via")
        return topo.replace(routes=topo.routes + (route,)) if route.dev is None or route.dev in topo.links_in(route.ns) else topo

    def make(self, lab: Lab) -> None:
        lab.kernel.add_route(lab.ns(self.route.ns).handle, self.route)


@dataclasses.dataclass(frozen=True)
class RouteDel:
    """`ip -n NS route del DST [via VIA] [dev DEV]`."""

    route: Route

    def after(self, lab: Lab) -> Topology:
        route = self.route
        return lab.topology.replace(routes=tuple(r for r in lab.topology.routes if not (r.ns == route.ns and r.dst == route.dst)))

    def make(self, lab: Lab) -> None:
        lab.kernel.del_route(lab.ns(self.route.ns).handle, self.route)


@dataclasses.dataclass(frozen=True)
class Sysctl:
    """`ip netns exec NS sysctl -w KEY=VALUE`."""

    ns: str
    key: str
    value: Any

    def after(self, lab: Lab) -> Topology:
        spec = lab.topology.namespace(self.ns)
        updated = Namespace(self.ns, spec.lo_up, {**dict(spec.sysctls), self.key: self.value})
        return lab.topology.replace(namespaces=tuple(updated if n.name == self.ns else n for n in lab.topology.namespaces))

    def make(self, lab: Lab) -> None:
        lab.kernel.set_sysctl(lab.ns(self.ns).handle, self.key, str(self.value))


def _on_link(lab: Lab, route: Route) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Where a gateway may sit, as the kernel reports it: the networks of the
    main table's routes without a gateway (the connected subnets of up links,
    and device routes such as `169.254.1.1 dev eth0`) on the route's device if
    it names one, and this namespace's own addresses."""
    handle = lab.ns(route.ns).handle
    v6 = route.network.version == 6
    names = lab.kernel.names(handle)
    routes = lab.kernel.routes(handle, family=socket.AF_INET6 if v6 else socket.AF_INET, names=names)
    default = "::/0" if v6 else "0.0.0.0/0"
    nets = [ipaddress.ip_network(default if r.dst == "default" else r.dst) for r in routes if r.via is None and r.type == "unicast" and route.dev in (None, r.dev)]
    own = [ipaddress.ip_interface(a.cidr).ip for a in lab.kernel.addresses(handle, names=names) if route.dev in (None, a.dev)]
    return nets + [ipaddress.ip_network(ip) for ip in own]


def _relink(topo: Topology, change: LinkSet) -> Topology:
    """The model after `ip link set`: a move or rename carries the end along; a
    move drops the end's addresses and routes, as the kernel does."""
    ns, dev = change.ns, change.dev
    veths = []
    for v in topo.veths:
        ends: list[list[Any]] = [[v.ns, v.name, v.up, v.master], [v.peer_ns, v.peer, v.peer_up, v.peer_master]]
        for end in ends:
            if (end[0], end[1]) == (ns, dev):
                if change.up is not None:
                    end[2] = change.up
                if change.master is not None:
                    end[3] = change.master
                if change.nomaster:
                    end[3] = None
                if change.netns is not None:
                    end[0], end[2], end[3] = change.netns, False, None
                if change.name is not None:
                    end[1] = change.name
        veths.append(Veth(ends[0][0], ends[0][1], ends[1][0], ends[1][1], ends[0][2], ends[1][2], ends[0][3], ends[1][3]))
    bridges = tuple(dataclasses.replace(b, up=b.up if change.up is None else change.up) if (b.ns, b.name) == (ns, dev) else b for b in topo.bridges)
    addresses, routes = topo.addresses, topo.routes
    if change.netns is not None:
        addresses = tuple(a for a in addresses if (a.ns, a.dev) != (ns, dev))
        routes = tuple(r for r in routes if (r.ns, r.dev) != (ns, dev))
    elif change.name is not None:
        addresses = tuple(dataclasses.replace(a, dev=change.name) if (a.ns, a.dev) == (ns, dev) else a for a in addresses)
        routes = tuple(dataclasses.replace(r, dev=change.name) if (r.ns, r.dev) == (ns, dev) else r for r in routes)
    return topo.replace(veths=tuple(veths), bridges=bridges, addresses=addresses, routes=routes)
