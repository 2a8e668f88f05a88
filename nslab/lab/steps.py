"""The ip(8)-like steps of a lab namespace: each validated by the model, applied
to the kernel, and recorded, so that `lab.topology` is the lab really built."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from typing import TYPE_CHECKING, Any, Callable

from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth, check_gateway, check_ifname, parse_network

if TYPE_CHECKING:
    from nslab.kernel.handle import NsHandle
    from nslab.lab.live import Lab, Netns


class Steps:
    """Mixed into Netns: `ip link add/set/del`, `ip addr add/del`, `ip route add/del`, `sysctl -w`."""

    lab: Lab
    name: str
    handle: NsHandle
    _arp: dict
    _resolve: Callable[[Netns | str], Netns]

    def add_veth(self, name: str, peer: str, *, peer_ns: Netns | str | None = None, up: bool = False) -> None:
        """`ip link add NAME type veth peer name PEER [netns PEER_NS]`; both ends start down."""
        other = self._resolve(peer_ns) if peer_ns is not None else self
        veth = Veth(self.name, name, other.name, peer, up=up, peer_up=up)
        topo = self.lab.topology.replace(veths=self.lab.topology.veths + (veth,))
        self.lab.kernel.add_veth(self.handle, name, other.handle, peer)
        self.lab._record(topo)
        if up:
            self.set_link(name, up=True)
            other.set_link(peer, up=True)

    def add_bridge(self, name: str) -> None:
        """`ip link add NAME type bridge` (down until `set_link(NAME, up=True)`)."""
        topo = self.lab.topology.replace(bridges=self.lab.topology.bridges + (Bridge(self.name, name, up=False),))
        self.lab.kernel.add_bridge(self.handle, name)
        self.lab._record(topo)

    def set_link(
        self,
        dev: str,
        *,
        up: bool | None = None,
        netns: Netns | str | None = None,
        name: str | None = None,
        master: str | None = None,
        nomaster: bool = False,
    ) -> None:
        """`ip link set DEV [netns NS] [name NEW] [master BR|nomaster] [up|down]`."""
        check_ifname(dev, "dev")
        target = self._resolve(netns) if netns is not None else None
        if name is not None:
            check_ifname(name, "name")
        topo = _relink(self.lab.topology, self.name, dev, up=up, netns=target.name if target else None, name=name, master=master, nomaster=nomaster)
        if dev != "lo" and dev not in self.lab.topology.links_in(self.name):
            # Not made by the lab (e.g. by a CNI plugin or a student's script): the kernel decides.
            topo = self.lab.topology
        self.lab.kernel.set_link(self.handle, dev, up=up, master=master, nomaster=nomaster, netns=target.handle if target else None, name=name)
        peer = self.lab.topology.peer(self.name, dev)
        if up:
            self.lab.kernel.wait_ready(self.handle)
            if peer is not None and peer[0] != self.name:
                self.lab.kernel.wait_ready(self.lab.ns(peer[0]).handle)
        elif up is False and peer is not None:
            # the peer loses carrier now; when it comes back, its queue waits for linkwatch
            self.lab.ns(peer[0]).handle.expect_activation(peer[1])
        if dev == "lo" and up is not None:
            topo = topo.replace(namespaces=tuple(dataclasses.replace(n, lo_up=up) if n.name == self.name else n for n in topo.namespaces))
        self.lab._record(topo)
        self._arp.pop(dev, None)

    def del_link(self, dev: str) -> None:
        """`ip link del DEV` (a veth takes its peer with it)."""
        topo = self.lab.topology
        veths = tuple(v for v in topo.veths if (self.name, dev) not in {(v.ns, v.name), (v.peer_ns, v.peer)})
        gone = {(e[0], e[1]) for v in topo.veths if v not in veths for e in v.ends()} | {(self.name, dev)}
        left = topo.replace(
            veths=veths,
            bridges=tuple(b for b in topo.bridges if (b.ns, b.name) != (self.name, dev)),
            addresses=tuple(a for a in topo.addresses if (a.ns, a.dev) not in gone),
            routes=(),
        )
        topo = left.with_routes_that_survive(topo.routes)
        self.lab.kernel.delete_link(self.handle, dev)
        self.lab._record(topo)

    def add_address(self, cidr: str, dev: str) -> None:
        """`ip addr add CIDR dev DEV`."""
        addr = Address(self.name, dev, cidr)
        topo = self.lab.topology
        if dev in topo.links_in(self.name):
            topo = topo.replace(addresses=topo.addresses + (addr,))
        self.lab.kernel.add_address(self.handle, dev, addr.cidr)
        self.lab._record(topo)

    def del_address(self, cidr: str, dev: str) -> None:
        """`ip addr del CIDR dev DEV`."""
        addr = Address(self.name, dev, cidr)
        self.lab.kernel.del_address(self.handle, dev, addr.cidr)
        self.lab._record(self.lab.topology.replace(addresses=tuple(a for a in self.lab.topology.addresses if a != addr)))

    def add_route(self, dst: str, *, via: str | None = None, dev: str | None = None, onlink: bool = False) -> None:
        """`ip route add DST [via VIA] [dev DEV] [onlink]`; a gateway must be reachable
        on a link (a connected subnet, or a route without a gateway), as the kernel requires."""
        route = Route(self.name, dst, via=via, dev=dev, onlink=onlink)
        if via is not None and not onlink:
            check_gateway(route, self._on_link(route), "via")
        self.lab.kernel.add_route(self.handle, route)
        topo = self.lab.topology
        if dev is None or dev in topo.links_in(self.name):
            self.lab._record(topo.replace(routes=topo.routes + (route,)))

    def del_route(self, dst: str, *, via: str | None = None, dev: str | None = None) -> None:
        """`ip route del DST [via VIA] [dev DEV]` (without either: the route to DST the table holds)."""
        if via is None and dev is None:
            net = parse_network(dst, "dst")
            held = self.lab.kernel.routes(self.handle, family=socket.AF_INET6 if net.version == 6 else socket.AF_INET)
            match = next((r for r in held if r.type == "unicast" and (r.dst == "default" and net.prefixlen == 0 or r.dst == str(net))), None)
            if match is None:
                raise LabError("dst", f"{self.name!r} has no route to {dst!r} to delete; its routes: {[str(r) for r in held]}")
            via, dev = match.via, match.dev
        route = Route(self.name, dst, via=via, dev=dev)
        self.lab.kernel.del_route(self.handle, route)
        keep = tuple(r for r in self.lab.topology.routes if not (r.ns == self.name and r.dst == route.dst))
        self.lab._record(self.lab.topology.replace(routes=keep))

    def set_sysctl(self, key: str, value: Any) -> None:
        """`sysctl -w KEY=VALUE` inside this namespace (e.g. net.ipv4.ip_forward=1)."""
        spec = self.lab.topology.namespace(self.name)
        updated = Namespace(self.name, spec.lo_up, {**dict(spec.sysctls), key: value})
        self.lab.kernel.set_sysctl(self.handle, key, str(value))
        self.lab._record(self.lab.topology.replace(namespaces=tuple(updated if n.name == self.name else n for n in self.lab.topology.namespaces)))

    def flush_neighbours(self) -> None:
        """`ip neigh flush all`"""
        self.lab.kernel.flush_neighbours(self.handle)

    def _on_link(self, route: Route) -> list:
        """Where a gateway may sit, as the kernel reports it: the networks of the
        main table's routes without a gateway (the connected subnets of up links,
        and device routes such as `169.254.1.1 dev eth0`) on the route's device if
        it names one, and this namespace's own addresses."""
        v6 = route.network.version == 6
        names = self.lab.kernel.names(self.handle)
        routes = self.lab.kernel.routes(self.handle, family=socket.AF_INET6 if v6 else socket.AF_INET, names=names)
        default = "::/0" if v6 else "0.0.0.0/0"
        nets = [ipaddress.ip_network(default if r.dst == "default" else r.dst) for r in routes if r.via is None and r.type == "unicast" and route.dev in (None, r.dev)]
        own = [ipaddress.ip_interface(a.cidr).ip for a in self.lab.kernel.addresses(self.handle, names=names) if route.dev in (None, a.dev)]
        return nets + [ipaddress.ip_network(ip) for ip in own]


def _relink(topo: Topology, ns: str, dev: str, *, up, netns, name, master, nomaster) -> Topology:
    """The model after `ip link set`: a move or rename carries the end along; a
    move drops the end's addresses and routes, as the kernel does."""
    veths = []
    for v in topo.veths:
        ends = [[v.ns, v.name, v.up, v.master], [v.peer_ns, v.peer, v.peer_up, v.peer_master]]
        for end in ends:
            if (end[0], end[1]) == (ns, dev):
                if up is not None:
                    end[2] = up
                if master is not None:
                    end[3] = master
                if nomaster:
                    end[3] = None
                if netns is not None:
                    end[0], end[2], end[3] = netns, False, None
                if name is not None:
                    end[1] = name
        veths.append(Veth(ends[0][0], ends[0][1], ends[1][0], ends[1][1], ends[0][2], ends[1][2], ends[0][3], ends[1][3]))
    bridges = tuple(dataclasses.replace(b, up=b.up if up is None else up) if (b.ns, b.name) == (ns, dev) else b for b in topo.bridges)
    addresses, routes = topo.addresses, topo.routes
    if netns is not None:
        addresses = tuple(a for a in addresses if (a.ns, a.dev) != (ns, dev))
        routes = tuple(r for r in routes if (r.ns, r.dev) != (ns, dev))
    elif name is not None:
        addresses = tuple(dataclasses.replace(a, dev=name) if (a.ns, a.dev) == (ns, dev) else a for a in addresses)
        routes = tuple(dataclasses.replace(r, dev=name) if (r.ns, r.dev) == (ns, dev) else r for r in routes)
    return topo.replace(veths=tuple(veths), bridges=bridges, addresses=addresses, routes=routes)
