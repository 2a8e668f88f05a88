"""What the kernel reports about a namespace, as plain data in ip(8)'s words.

These are observations (read back over netlink), not the lab's intent: the
model says what should be, these say what is.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkState:
    name: str
    index: int
    kind: str  # 'veth', 'bridge', 'loopback', ...
    up: bool  # administratively up (IFF_UP), `ip link set DEV up`
    carrier: bool  # lower layer up: for a veth, the peer end is up too
    mac: str
    mtu: int
    master: str | None = None
    peer_index: int | None = None  # a veth's peer ifindex, as `ip link` shows `vethX@ifN`
    peer_netnsid: int | None = None
    noarp: bool = False  # `ip link set DEV arp off`: no ARP sent or answered on it
    operstate: str = ""  # RFC 2863 state, set by the kernel's linkwatch a moment after a change
    port: tuple[tuple[str, int], ...] = ()  # a bridge port's options as read (IFLA_INFO_SLAVE_DATA): state, bcast_flood, isolated, ...

    def port_option(self, name: str) -> int | None:
        """A bridge port's option as read (`bridge -d link show`); None: not a bridge port, or not reported."""
        return dict(self.port).get(name)

    @property
    def state(self) -> str:
        if not self.up:
            return "DOWN"
        return "UP" if self.carrier else "NO-CARRIER"


@dataclass(frozen=True)
class AddressState:
    dev: str
    cidr: str
    scope: str
    flags: tuple[str, ...] = ()  # IPv6 address states as `ip -6 addr` prints them: 'tentative', 'dadfailed', 'nodad', ...

    @property
    def version(self) -> int:
        """4 or 6: which `ip -4 addr` / `ip -6 addr` lists it."""
        return 6 if ":" in self.cidr else 4

    @property
    def ip(self) -> str:
        """The address without its prefix length."""
        return self.cidr.split("/", 1)[0]


@dataclass(frozen=True)
class RouteState:
    dst: str  # 'default' or a CIDR
    dev: str | None
    via: str | None = None
    proto: str = "boot"
    scope: str = "universe"
    src: str | None = None
    type: str = "unicast"
    onlink: bool = False
    linkdown: bool = False
    table: str = "main"  # 'main', 'local', 'default' or the table's number
    metric: int = 0

    def __str__(self) -> str:
        """The line `ip route` prints (`ip route show table all` adds the table)."""
        parts = [self.dst] if self.type == "unicast" else [self.type, self.dst]
        if self.via:
            parts += ["via", self.via]
        if self.dev:
            parts += ["dev", self.dev]
        if self.proto != "boot":
            parts += ["proto", self.proto]
        if self.scope != "universe":
            parts += ["scope", self.scope]
        if self.src:
            parts += ["src", self.src]
        if self.onlink:
            parts.append("onlink")
        if self.metric:
            parts += ["metric", str(self.metric)]
        if self.linkdown:
            parts.append("linkdown")
        if self.table != "main":
            parts += ["table", self.table]
        return " ".join(parts)

    def covers(self, address: str) -> bool:
        """Does this route's prefix hold *address* (of the same family)?"""
        net = ipaddress.ip_network("0.0.0.0/0" if self.dst == "default" and ":" not in address else "::/0" if self.dst == "default" else self.dst, strict=False)
        ip = ipaddress.ip_address(address)
        return ip.version == net.version and ip in net


@dataclass(frozen=True)
class RuleState:
    """One line of `ip rule`: which table (or verdict) a packet's lookup goes to."""

    priority: int
    action: str  # 'lookup', 'goto', 'nop', 'blackhole', 'unreachable', 'prohibit'
    table: str | None = None
    src: str | None = None  # 'from' prefix; None: all
    dst: str | None = None  # 'to' prefix
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int = 0
    plain: bool = True  # no selector beyond those above (not `not`, ipproto, ports, uidrange, ...)

    def __str__(self) -> str:
        """The line `ip rule` prints (without the priority's colon), for the selectors above."""
        parts = ["from", self.src or "all"]
        if self.dst:
            parts += ["to", self.dst]
        if self.tos:
            parts += ["tos", hex(self.tos)]
        if self.fwmark is not None:
            parts += ["fwmark", hex(self.fwmark) + (f"/{hex(self.fwmask)}" if self.fwmask not in (None, 0xFFFFFFFF) else "")]
        if self.iif:
            parts += ["iif", self.iif]
        if self.oif:
            parts += ["oif", self.oif]
        parts += [self.action, self.table] if self.action == "lookup" and self.table else [self.action]
        return " ".join(parts)


@dataclass(frozen=True)
class RouteLookup:
    """The answer of `ip route get DST`: a route, or the errno the kernel gave."""

    dst: str
    type: str | None = None  # 'unicast', 'local', 'unreachable', ...
    dev: str | None = None
    via: str | None = None
    src: str | None = None
    errno: int | None = None
    iif: str | None = None  # asked as a packet that came in on this interface (the input path)
    table: str | None = None  # the table of the route that matched, where the kernel says

    @property
    def found(self) -> bool:
        return self.errno is None and self.type in ("unicast", "local")


@dataclass(frozen=True)
class NeighbourState:
    dst: str
    dev: str
    mac: str | None
    state: str  # 'REACHABLE', 'STALE', 'INCOMPLETE', 'FAILED', ...


@dataclass(frozen=True)
class FdbEntry:
    """One line of `bridge fdb show`: frames for *mac* leave by port *dev*."""

    mac: str
    dev: str  # the bridge port
    master: str | None  # the bridge; None for the port's own `self` entries
    permanent: bool  # the port's own or a static address, not learned from traffic
