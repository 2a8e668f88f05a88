"""What the kernel reports about a lab namespace, read back (never assumed):
`ip link`, `ip addr`, `ip route`, `ip neigh`, `bridge fdb`, `ethtool -S`, `ss -lt`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterable

from nslab.kernel import ethtool, linux, listeners
from nslab.kernel.state import AddressState, FdbEntry, LinkState, NeighbourState, RouteLookup, RouteState
from nslab.model.topology import LabError, check_ifname

if TYPE_CHECKING:
    from nslab.lab.netns import Netns


class Readback:
    """A namespace's reads (`ns.readback`, and the flat `ns.links()`, ...): what the kernel reports, in ip(8)'s words."""

    def __init__(self, ns: Netns):
        self.ns = ns
        self.inode = os.fstat(ns.handle.fd).st_ino  # `ls -iL /run/netns/NAME`: how the kernel's drop reasons name it

    def links(self) -> list[LinkState]:
        """`ip link`"""
        return self.ns.lab.kernel.links(self.ns.handle)

    def link(self, name: str) -> LinkState:
        """`ip link show NAME`"""
        for link in self.links():
            if link.name == name:
                return link
        raise LabError("link", f"no interface {name!r} in {self.ns.name!r}")

    def settle(self, devs: Iterable[str]) -> None:
        """`ip link show dev DEV` for each of *devs*: a kernel that syncs linkwatch then applies
        what it holds for each (operstate, its routes' `linkdown`) at once, not up to a second
        later (Kernel.settle_links)."""
        self.ns.lab.kernel.settle_links(self.ns.handle, devs)

    def link_names(self) -> list[str]:
        return sorted(link.name for link in self.links())

    def addresses(self, dev: str | None = None, *, version: int | None = None) -> list[AddressState]:
        """`ip addr [show dev DEV]`; `version=4` is `ip -4 addr` (IPv4 only), `version=6` is `ip -6 addr`."""
        return [a for a in self.ns.lab.kernel.addresses(self.ns.handle) if dev in (None, a.dev) and version in (None, a.version)]

    def sysctl(self, key: str) -> str:
        """`sysctl -n KEY` inside this namespace."""
        return self.ns.lab.kernel.get_sysctl(self.ns.handle, key)

    def routes(self) -> list[RouteState]:
        """`ip route`"""
        return self.ns.lab.kernel.routes(self.ns.handle)

    def route_get(self, dst: str, src: str | None = None) -> RouteLookup:
        """`ip route get DST [from SRC]`"""
        return self.ns.lab.kernel.route_get(self.ns.handle, dst, src)

    def neighbours(self) -> list[NeighbourState]:
        """`ip neigh`"""
        return self.ns.lab.kernel.neighbours(self.ns.handle)

    def neighbour(self, dst: str) -> NeighbourState | None:
        """`ip neigh show DST`"""
        return next((n for n in self.neighbours() if n.dst == dst), None)

    def fdb(self, bridge: str | None = None) -> list[FdbEntry]:
        """`bridge fdb show [br BRIDGE]`: which port each bridge sends each MAC to."""
        return [e for e in self.ns.lab.kernel.fdb(self.ns.handle) if bridge is None or bridge in (e.master, e.dev)]

    def netnsid(self, other: Netns | str) -> int | None:
        """`ip netns list-id`: the id this namespace gives *other*, as `ip link` shows `link-netnsid N`."""
        return self.ns.lab.kernel.netnsid(self.ns.handle, self.ns.resolve(other).handle)

    def ethtool_stats(self, dev: str) -> dict[str, int]:
        """`ethtool -S DEV`: the driver's statistics (a veth's include `peer_ifindex`)."""
        check_ifname(dev, "dev")
        with linux.in_netns(self.ns.handle.fd):
            return ethtool.stats(dev)

    def listening(self, port: int) -> bool:
        """`ss -ltn sport = :PORT` has a line: a TCP listener on *port* here."""
        return listeners.listening(self.ns.handle.fd, port)
