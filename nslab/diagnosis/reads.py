"""What the kernel says about the lab during one probe, each question asked once.

Every fact an early verdict or an explanation relies on comes from here: a
link's state, a sysctl, a route lookup, a neighbour entry, who is at the other
end of a veth. The model only suggests where to look; the kernel answers.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from typing import Callable, Concatenate, Mapping, ParamSpec, TypeVar, cast

from nslab.diagnosis.capture import Capture
from nslab.kernel import listeners, nftables
from nslab.kernel.drops import DropMonitor
from nslab.kernel.listeners import Listener
from nslab.kernel.netlink import Kernel, NsHandle
from nslab.kernel.state import AddressState, LinkState, NeighbourState, RouteLookup, RouteState, RuleState
from nslab.model.topology import Topology


@dataclass(frozen=True)
class Space:
    """One lab namespace as the diagnosis sees it: read-only handles."""

    name: str
    handle: NsHandle
    capture: Capture
    inode: int  # the namespace's inode, as the kernel's drop reasons name it


@dataclass(frozen=True)
class View:
    """The narrow, read-only view of a lab that a probe's diagnosis gets."""

    topology: Topology  # where to look first, never the answer
    kernel: Kernel
    spaces: Mapping[str, Space]
    settle_early: bool = True
    drop_reasons: bool = True  # False: no bpftrace (about a second to attach); captures and counters decide
    drops: DropMonitor | None = None  # the lab's drop monitor; None: this process's own (nslab.kernel.drops.monitor())


P = ParamSpec("P")
R = TypeVar("R")


def _asked_once(method: Callable[Concatenate[Reads, P], R]) -> Callable[Concatenate[Reads, P], R]:
    """Per probe, each question is asked once: the answer is kept on the instance."""

    @functools.wraps(method)
    def wrapper(self: Reads, *args: P.args, **kwargs: P.kwargs) -> R:
        key = (method.__name__, *args, *sorted(kwargs.items()))
        if key not in self._answers:
            self._answers[key] = method(self, *args, **kwargs)
        return cast(R, self._answers[key])

    return wrapper


class Reads:
    """The kernel's answers for one probe; a new one per probe (answers age)."""

    def __init__(self, view: View):
        self.view = view
        self.kernel = view.kernel
        self._links: dict[str, list[LinkState]] = {}
        self._answers: dict[tuple[object, ...], object] = {}

    def handle(self, ns: str) -> NsHandle:
        return self.view.spaces[ns].handle

    def links(self, ns: str, *, fresh: bool = False) -> list[LinkState]:
        if fresh or ns not in self._links:
            self._links[ns] = self.kernel.links(self.handle(ns))
        return self._links[ns]

    def namespaces_read(self) -> list[str]:
        """The namespaces whose links this probe read: the ones its evidence is about."""
        return list(self._links)

    def link(self, ns: str, dev: str | None) -> LinkState | None:
        return next((link for link in self.links(ns) if link.name == dev), None)

    def names(self, ns: str) -> dict[int, str]:
        return {link.index: link.name for link in self.links(ns)}

    @_asked_once
    def sysctl(self, ns: str, key: str) -> str | None:
        try:
            return self.kernel.get_sysctl(self.handle(ns), key)
        except OSError:
            return None

    def conf(self, ns: str, dev: str, name: str) -> tuple[int, int]:
        """(net.ipv4.conf.all.NAME, net.ipv4.conf.DEV.NAME) as integers (-1 if unreadable)."""
        values = (self.sysctl(ns, f"net.ipv4.conf.all.{name}"), self.sysctl(ns, f"net.ipv4.conf.{dev}.{name}"))
        return tuple(int(v) if v is not None and v.lstrip("-").isdigit() else -1 for v in values)  # type: ignore[return-value]

    def forwarding6(self, ns: str, dev: str) -> tuple[bool, str, str]:
        """(*ns* does not forward IPv6 that comes in on *dev*, the sysctl that says so as read,
        the command that turns it on): IPv6 forwards by net.ipv6.conf.all.forwarding, or (Linux
        6.17 on) the device's force_forwarding; the device's own `forwarding` does not."""
        on = self.sysctl(ns, "net.ipv6.conf.all.forwarding")
        forced = self.sysctl(ns, f"net.ipv6.conf.{dev}.force_forwarding")  # None before 6.17
        return on != "1" and forced != "1", f"net.ipv6.conf.all.forwarding={on}", "sysctl -w net.ipv6.conf.all.forwarding=1"

    @_asked_once
    def route_get(self, ns: str, dst: str, src: str | None = None) -> RouteLookup:
        return self.kernel.route_get(self.handle(ns), dst, src, names=self.names(ns))

    @_asked_once
    def route_in(self, ns: str, dst: str, src: str, iif: str) -> RouteLookup:
        """The input path's decision for a packet from *src* to *dst* that came in on *iif*."""
        return self.kernel.route_get(self.handle(ns), dst, src, names=self.names(ns), iif=iif)

    @_asked_once
    def all_routes(self, ns: str, family: int) -> list[RouteState]:
        """`ip route show table all` for *family* (socket.AF_INET or AF_INET6)."""
        return self.kernel.all_routes(self.handle(ns), family, names=self.names(ns))

    @_asked_once
    def rules(self, ns: str, family: int) -> list[RuleState]:
        return self.kernel.rules(self.handle(ns), family)

    @_asked_once
    def addresses(self, ns: str) -> list[AddressState]:
        return self.kernel.addresses(self.handle(ns), names=self.names(ns))

    @_asked_once
    def listeners(self, ns: str) -> list[Listener]:
        return listeners.listeners(self.handle(ns).fd)

    @_asked_once
    def ruleset(self, ns: str) -> nftables.Ruleset | None:
        return nftables.read(self.handle(ns).fd)

    def routes(self, ns: str, version: int = 4) -> list[RouteState]:
        """`ip route` (`ip -6 route` for *version* 6): the main table."""
        return self.kernel.routes(self.handle(ns), socket.AF_INET6 if version == 6 else socket.AF_INET, names=self.names(ns))

    def is_local(self, ns: str, address: str) -> bool:
        return self.route_get(ns, address).type == "local"

    def holds(self, ns: str, address: str) -> bool:
        """Is *address* configured in *ns*, even if not yet usable (IPv6 DAD: tentative, or failed)?"""
        return self.is_local(ns, address) or any(a.ip == address for a in self.addresses(ns))

    def neighbour(self, ns: str, dst: str) -> NeighbourState | None:
        return next((n for n in self.neighbours(ns, 6 if ":" in dst else 4) if n.dst == dst), None)  # its family's table only

    def neighbours(self, ns: str, version: int) -> list[NeighbourState]:
        """`ip neigh` (`ip -6 neigh` for *version* 6)."""
        return self.kernel.neighbours(self.handle(ns), names=self.names(ns), version=version)

    @_asked_once
    def proxies(self, ns: str) -> frozenset[tuple[str, str]]:
        """(dev, address) of each `ip neigh add proxy` entry."""
        names = self.names(ns)
        return frozenset((names.get(index, "?"), addr) for index, addr in self.kernel.proxy_neighbours(self.handle(ns)))

    def peer(self, ns: str, dev: str) -> tuple[str, str] | None:
        """The lab namespace and interface at the other end of veth *dev*, as the
        kernel links them (ifindex and link-netnsid); None if it is no veth or
        the other end is outside the lab."""
        link = self.link(ns, dev)
        if link is None or link.kind != "veth" or link.peer_index is None:
            return None
        hint = self.view.topology.peer(ns, dev)
        candidates = [hint[0]] if hint and hint[0] in self.view.spaces else []
        candidates += [name for name in self.view.spaces if name not in candidates] if len(self.view.spaces) <= 64 else []
        for other in candidates:
            if link.peer_netnsid is None and other != ns:
                continue
            if link.peer_netnsid is not None and self._nsid(ns, other) != link.peer_netnsid:
                continue
            far = next((x for x in self.links(other) if x.index == link.peer_index and x.kind == "veth"), None)
            if far is not None:
                return other, far.name
        return None

    @_asked_once
    def _nsid(self, ns: str, other: str) -> int | None:
        return self.kernel.netnsid(self.handle(ns), self.handle(other))

    def hosts_on(self, ns: str, dev: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]] | None:
        """Who receives a broadcast sent on *dev*, as the kernel has wired it:
        (hosts reached, ends cut off by a link that is down). A host is a
        (namespace, interface) that can answer: a veth end, or a bridge itself.
        None when the segment leaves the lab or holds a device nslab cannot follow."""
        reached: set[tuple[str, str]] = set()
        cut: set[tuple[str, str]] = set()
        todo: list[tuple[str, str]] = []
        first = self.link(ns, dev)
        if first is None:
            return None
        if first.kind == "bridge":
            todo += [(ns, port.name) for port in self.links(ns) if port.master == dev]
        else:
            todo.append((ns, dev))
        visited: set[tuple[str, str]] = set()
        while todo:
            here = todo.pop()
            if here in visited:
                continue
            visited.add(here)
            near = self.link(*here)
            if near is None or near.kind != "veth":
                return None
            far = self.peer(*here)
            if far is None:
                return None
            visited.add(far)
            far_link = self.link(*far)
            if far_link is None or not (near.up and far_link.up):
                cut.add(far)
                continue
            if far_link.master is None:
                reached.add(far)
                continue
            bridge = self.link(far[0], far_link.master)
            if bridge is None or not bridge.up:
                cut.add((far[0], far_link.master))
                continue
            reached.add((far[0], far_link.master))
            todo += [(far[0], port.name) for port in self.links(far[0]) if port.master == far_link.master and port.name != far[1]]
        return reached, cut
