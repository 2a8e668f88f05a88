"""What the kernel reports about a namespace, as plain data in ip(8)'s words.

These are observations (read back over netlink), not the lab's intent: the
model says what should be, these say what is.
"""

from __future__ import annotations

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
    operstate: str = ""  # RFC 2863 state, set by the kernel's linkwatch a moment after a change

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

    def __str__(self) -> str:
        """The line `ip route` prints."""
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
        if self.linkdown:
            parts.append("linkdown")
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
