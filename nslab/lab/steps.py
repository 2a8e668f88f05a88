"""The ip(8)-like steps of a lab namespace: each is a change (nslab/lab/edits.py)
that `Lab.apply` validates against the model, makes in the kernel and records,
so that `lab.topology` is the lab really built."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from nslab.lab import edits
from nslab.model.checks import parse_network
from nslab.model.topology import LabError, Route, check_nsname

if TYPE_CHECKING:
    from nslab.kernel.handle import NsHandle
    from nslab.lab.live import Lab
    from nslab.lab.netns import Netns
    from nslab.lab.probing import Probing


class Steps:
    """Netns's own steps: `ip link add/set/del`, `ip addr add/del`, `ip route add/del`, `sysctl -w`.
    Each goes through `Lab.apply`; the namespace holds no state of its own for them."""

    lab: Lab
    name: str
    handle: NsHandle
    probing: Probing

    def resolve(self, ns: Netns | str) -> Netns:
        """Another namespace of this lab, by name (or the one given)."""
        return self.lab.ns(check_nsname(ns, "netns")) if isinstance(ns, str) else ns

    def add_veth(self, name: str, peer: str, *, peer_ns: Netns | str | None = None, up: bool = False) -> None:
        """`ip link add NAME type veth peer name PEER [netns PEER_NS]`; both ends start down."""
        other = self.resolve(peer_ns) if peer_ns is not None else self
        self.lab.apply(edits.LinkAddVeth(self.name, name, other.name, peer))
        if up:
            self.set_link(name, up=True)
            other.set_link(peer, up=True)

    def add_bridge(self, name: str) -> None:
        """`ip link add NAME type bridge` (down until `set_link(NAME, up=True)`)."""
        self.lab.apply(edits.LinkAddBridge(self.name, name))

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
        target = self.resolve(netns).name if netns is not None else None
        self.lab.apply(edits.LinkSet(self.name, dev, up=up, netns=target, name=name, master=master, nomaster=nomaster))
        self.probing.forget(dev)

    def del_link(self, dev: str) -> None:
        """`ip link del DEV` (a veth takes its peer with it)."""
        self.lab.apply(edits.LinkDel(self.name, dev))

    def add_address(self, cidr: str, dev: str) -> None:
        """`ip addr add CIDR dev DEV`."""
        self.lab.apply(edits.AddrAdd(self.name, dev, cidr))

    def del_address(self, cidr: str, dev: str) -> None:
        """`ip addr del CIDR dev DEV`."""
        self.lab.apply(edits.AddrDel(self.name, dev, cidr))

    def add_route(self, dst: str, *, via: str | None = None, dev: str | None = None, onlink: bool = False) -> None:
        """`ip route add DST [via VIA] [dev DEV] [onlink]`; a gateway must be reachable
        on a link (a connected subnet, or a route without a gateway), as the kernel requires."""
        self.lab.apply(edits.RouteAdd(Route(self.name, dst, via=via, dev=dev, onlink=onlink)))

    def del_route(self, dst: str, *, via: str | None = None, dev: str | None = None) -> None:
        """`ip route del DST [via VIA] [dev DEV]` (without either: the route to DST the table holds)."""
        if via is None and dev is None:
            net = parse_network(dst, "dst")
            held = self.lab.kernel.routes(self.handle, family=socket.AF_INET6 if net.version == 6 else socket.AF_INET)
            match = next((r for r in held if r.type == "unicast" and (r.dst == "default" and net.prefixlen == 0 or r.dst == str(net))), None)
            if match is None:
                raise LabError("dst", f"{self.name!r} has no route to {dst!r} to delete; its routes: {[str(r) for r in held]}")
            via, dev = match.via, match.dev
        self.lab.apply(edits.RouteDel(Route(self.name, dst, via=via, dev=dev)))

    def set_sysctl(self, key: str, value: Any) -> None:
        """`sysctl -w KEY=VALUE` inside this namespace (e.g. net.ipv4.ip_forward=1)."""
        self.lab.apply(edits.Sysctl(self.name, key, value))

    def flush_neighbours(self) -> None:
        """`ip neigh flush all`"""
        self.lab.kernel.flush_neighbours(self.handle)
