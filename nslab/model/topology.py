"""A lab as plain, validated data: namespaces, veths, bridges, addresses, routes.

Everything here is checked before anything touches the kernel, and every error
names the field, the bad value and the fix, in one line:

    >>> Veth("ns1", "veth_root_namespace", "ns2", "v2")
    Traceback (most recent call last):
    nslab.model.checks.LabError: Veth.name: interface name 'veth_root_namespace' is 19 characters; the kernel allows 15

The vocabulary is ip(8)'s: `dev`, `via`, `onlink`, `master`, a CIDR like
`10.0.0.1/24`. Netlink's names stay in nslab/kernel/. The checks of single
values are in checks.py; this module checks how the parts fit together.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

from nslab.model.checks import (
    IPInterface,
    IPNetwork,
    LabError,
    check_gateway,
    check_ifname,
    check_nsname,
    check_unicast_gateway,
    frozen_sysctls,
    parse_address,
    parse_interface,
    parse_network,
)


@dataclass(frozen=True)
class Namespace:
    """A network namespace. `ip netns add` leaves lo down; so does the default here."""

    name: str
    lo_up: bool = False
    sysctls: tuple[tuple[str, str], ...] = ()

    def __init__(self, name: str, lo_up: bool = False, sysctls: Mapping[str, Any] | None = None):
        object.__setattr__(self, "name", check_nsname(name, "Namespace.name"))
        object.__setattr__(self, "lo_up", bool(lo_up))
        object.__setattr__(self, "sysctls", frozen_sysctls(sysctls, "Namespace.sysctls"))


@dataclass(frozen=True)
class Veth:
    """A veth pair: `ip link add NAME netns NS type veth peer name PEER netns PEER_NS`.

    `up`/`peer_up` and `master`/`peer_master` are per end, as each end is set
    up (and enslaved to a bridge) in its own namespace."""

    ns: str
    name: str
    peer_ns: str
    peer: str
    up: bool = True
    peer_up: bool = True
    master: str | None = None
    peer_master: str | None = None

    def __post_init__(self) -> None:
        check_nsname(self.ns, "Veth.ns")
        check_ifname(self.name, "Veth.name")
        check_nsname(self.peer_ns, "Veth.peer_ns")
        check_ifname(self.peer, "Veth.peer")
        if (self.ns, self.name) == (self.peer_ns, self.peer):
            raise LabError("Veth.peer", f"both ends are {self.name!r} in {self.ns!r}; give the peer another name")
        for attr in ("master", "peer_master"):
            if getattr(self, attr) is not None:
                check_ifname(getattr(self, attr), f"Veth.{attr}")

    def ends(self) -> tuple[tuple[str, str, str | None], tuple[str, str, str | None]]:
        return (self.ns, self.name, self.master), (self.peer_ns, self.peer, self.peer_master)


@dataclass(frozen=True)
class Bridge:
    """A Linux bridge: `ip link add NAME type bridge` in NS."""

    ns: str
    name: str
    up: bool = True

    def __post_init__(self) -> None:
        check_nsname(self.ns, "Bridge.ns")
        check_ifname(self.name, "Bridge.name")


@dataclass(frozen=True)
class Address:
    """`ip addr add CIDR dev DEV` in NS."""

    ns: str
    dev: str
    cidr: str

    def __post_init__(self) -> None:
        check_nsname(self.ns, "Address.ns")
        check_ifname(self.dev, "Address.dev")
        object.__setattr__(self, "cidr", str(parse_interface(self.cidr, "Address.cidr")))

    @property
    def interface(self) -> IPInterface:
        return ipaddress.ip_interface(self.cidr)


@dataclass(frozen=True)
class Route:
    """`ip route add DST [via VIA] [dev DEV] [onlink]` in NS."""

    ns: str
    dst: str
    via: str | None = None
    dev: str | None = None
    onlink: bool = False

    def __post_init__(self) -> None:
        check_nsname(self.ns, "Route.ns")
        net = parse_network(self.dst, "Route.dst")
        object.__setattr__(self, "dst", "default" if net.prefixlen == 0 and net.version == 4 else str(net))
        if self.via is not None:
            gw = parse_address(self.via, "Route.via")
            if gw.version != net.version:
                raise LabError("Route.via", f"gateway {self.via!r} is IPv{gw.version} but {self.dst!r} is IPv{net.version}")
            object.__setattr__(self, "via", str(gw))
        if self.dev is not None:
            check_ifname(self.dev, "Route.dev")
        if self.via is None and self.dev is None:
            raise LabError("Route", f"route to {self.dst!r} needs 'via' or 'dev' (or both)")
        if self.onlink and self.dev is None:
            raise LabError("Route.onlink", "an onlink route needs 'dev' (the link the gateway is on)")

    @property
    def network(self) -> IPNetwork:
        return parse_network(self.dst, "Route.dst")


def _tuple(items: Iterable[Any] | None, kind: type, where: str) -> tuple[Any, ...]:
    out = tuple(items or ())
    for i, item in enumerate(out):
        if not isinstance(item, kind):
            raise LabError(f"{where}[{i}]", f"expected a {kind.__name__}, got {type(item).__name__} {item!r}")
    return out


class _Index:
    """A topology's parts by name: namespaces, each namespace's links (kind, up),
    veth peers, addresses per namespace. The first definition of a name wins, as
    a scan in order would find it (validation reports the duplicates)."""

    def __init__(self, topo: "Topology"):
        self.namespaces: dict[str, Namespace] = {}
        for ns in topo.namespaces:
            self.namespaces.setdefault(ns.name, ns)
        self.links: dict[str, dict[str, tuple[str, bool]]] = {}
        for br in topo.bridges:
            self.links.setdefault(br.ns, {}).setdefault(br.name, ("bridge", br.up))
        self.peers: dict[tuple[str, str], tuple[str, str]] = {}
        for v in topo.veths:
            for (end_ns, name, _), up in zip(v.ends(), (v.up, v.peer_up)):
                links = self.links.setdefault(end_ns, {})
                links[name] = ("veth", links[name][1] if name in links and links[name][0] == "veth" else up)
            self.peers.setdefault((v.ns, v.name), (v.peer_ns, v.peer))
            self.peers.setdefault((v.peer_ns, v.peer), (v.ns, v.name))
        self.addresses: dict[str, list[Address]] = {}
        for a in topo.addresses:
            self.addresses.setdefault(a.ns, []).append(a)


@dataclass(frozen=True)
class Topology:
    """A whole lab. Cross-checks the parts: names unique, references resolve,
    every gateway reachable on a link: a connected subnet or an earlier route
    without a gateway (unless `onlink`)."""

    namespaces: tuple[Namespace, ...] = ()
    veths: tuple[Veth, ...] = ()
    bridges: tuple[Bridge, ...] = ()
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] = ()

    def __init__(
        self,
        namespaces: Iterable[Namespace | str] = (),
        veths: Iterable[Veth] = (),
        bridges: Iterable[Bridge] = (),
        addresses: Iterable[Address] = (),
        routes: Iterable[Route] = (),
    ):
        nss = tuple(Namespace(n) if isinstance(n, str) else n for n in namespaces)
        object.__setattr__(self, "namespaces", _tuple(nss, Namespace, "namespaces"))
        object.__setattr__(self, "veths", _tuple(veths, Veth, "veths"))
        object.__setattr__(self, "bridges", _tuple(bridges, Bridge, "bridges"))
        object.__setattr__(self, "addresses", _tuple(addresses, Address, "addresses"))
        object.__setattr__(self, "routes", _tuple(routes, Route, "routes"))
        self._validate()

    @classmethod
    def adopted(
        cls,
        namespaces: Iterable[Namespace] = (),
        veths: Iterable[Veth] = (),
        bridges: Iterable[Bridge] = (),
        addresses: Iterable[Address] = (),
        routes: Iterable[Route] = (),
    ) -> "Topology":
        """What a kernel holds, read back, taken as it is: the cross-checks guard what nslab
        builds, and the kernel has already accepted this (two default routes of different
        metrics, one address on two links with two prefixes). Its `replace` keeps it so."""
        topo = object.__new__(cls)
        for name, kind, items in (("namespaces", Namespace, namespaces), ("veths", Veth, veths), ("bridges", Bridge, bridges), ("addresses", Address, addresses), ("routes", Route, routes)):
            object.__setattr__(topo, name, _tuple(items, kind, name))
        object.__setattr__(topo, "_adopted", True)
        return topo

    # -- queries -----------------------------------------------------------
    def _index(self) -> _Index:
        """Lookups by name, built once per topology (a lab of a thousand namespaces
        asks them thousands of times: a scan each would make validation quadratic)."""
        index = self.__dict__.get("_lookup")
        if index is None:
            index = _Index(self)
            object.__setattr__(self, "_lookup", index)
        return index

    def namespace(self, name: str) -> Namespace:
        return self._index().namespaces[name]

    def links_in(self, ns: str) -> dict[str, str]:
        """Interface name -> kind ('veth', 'bridge', 'loopback') in one namespace."""
        return {"lo": "loopback", **{name: kind for name, (kind, _) in self._index().links.get(ns, {}).items()}}

    def peer(self, ns: str, dev: str) -> tuple[str, str] | None:
        """(namespace, name) of the other end of the veth *dev* in *ns*, if it is one."""
        return self._index().peers.get((ns, dev))

    def is_up(self, ns: str, dev: str) -> bool:
        if dev == "lo":
            return self.namespace(ns).lo_up
        return self._index().links.get(ns, {}).get(dev, ("", False))[1]

    def connected(self, ns: str, dev: str | None = None) -> list[IPNetwork]:
        return [a.interface.network for a in self.addresses if a.ns == ns and (dev is None or a.dev == dev)]

    def on_link(self, ns: str, dev: str | None = None, *, before: int | None = None) -> list[IPNetwork]:
        """What a gateway in *ns* (on *dev*, if given) may sit in, as the kernel checks
        it: the subnets of addresses on up links, and the destinations of routes
        without a gateway (`ip route add 169.254.1.1 dev eth0`, as Calico wires a
        pod) among the first *before* routes, which the build adds first."""
        subnets = [a.interface.network for a in self._index().addresses.get(ns, ()) if dev in (None, a.dev) and self.is_up(a.ns, a.dev)]
        routes = self.routes if before is None else self.routes[:before]
        return subnets + [r.network for r in routes if r.ns == ns and r.via is None and dev in (None, r.dev)]

    def with_routes_that_survive(self, routes: Iterable[Route]) -> "Topology":
        """This topology with those of *routes* the kernel keeps once links are gone:
        a route needs its device, and a gateway route a link to its gateway (the
        kernel drops a route with the device its next hop went out of)."""
        kept: list[Route] = []
        topo = self.replace(routes=())
        for r in routes:
            if r.dev is not None and (r.dev not in topo.links_in(r.ns) or not topo.is_up(r.ns, r.dev)):
                continue
            if r.via is not None and not r.onlink and not any(ipaddress.ip_address(r.via) in net for net in topo.on_link(r.ns, r.dev)):
                continue
            kept.append(r)
            topo = topo.replace(routes=tuple(kept))
        return topo

    # -- validation --------------------------------------------------------
    def _validate(self) -> None:
        self._validate_names()
        self._validate_links()
        self._validate_addresses()
        self._validate_routes()

    def _need_ns(self, name: str, where: str) -> None:
        if name not in self._index().namespaces:
            raise LabError(where, f"namespace {name!r} is not in this lab; add Namespace({name!r}) to namespaces")

    def _validate_names(self) -> None:
        names: set[str] = set()
        for i, ns in enumerate(self.namespaces):
            if ns.name in names:
                raise LabError(f"namespaces[{i}].name", f"namespace {ns.name!r} is defined twice; names must be unique")
            names.add(ns.name)

    def _validate_links(self) -> None:
        seen: dict[tuple[str, str], str] = {}

        def claim(ns: str, name: str, where: str) -> None:
            if name == "lo":
                raise LabError(where, "'lo' already exists in every namespace; pick another name")
            if (ns, name) in seen:
                raise LabError(where, f"interface {name!r} in {ns!r} is already used by {seen[(ns, name)]}; each veth end and bridge needs its own name")
            seen[(ns, name)] = where

        for i, br in enumerate(self.bridges):
            self._need_ns(br.ns, f"bridges[{i}].ns")
            claim(br.ns, br.name, f"bridges[{i}]")
        for i, v in enumerate(self.veths):
            for (ns, name, _), (ns_attr, name_attr) in zip(v.ends(), (("ns", "name"), ("peer_ns", "peer"))):
                self._need_ns(ns, f"veths[{i}].{ns_attr}")
                claim(ns, name, f"veths[{i}].{name_attr}")
        for i, v in enumerate(self.veths):
            for (ns, _, master), attr in zip(v.ends(), ("master", "peer_master")):
                if master is not None and self.links_in(ns).get(master) != "bridge":
                    raise LabError(f"veths[{i}].{attr}", f"{master!r} is not a bridge in {ns!r}; add Bridge({ns!r}, {master!r})")

    def _validate_addresses(self) -> None:
        for i, a in enumerate(self.addresses):
            self._need_ns(a.ns, f"addresses[{i}].ns")
            if a.dev not in self.links_in(a.ns):
                raise LabError(f"addresses[{i}].dev", f"no interface {a.dev!r} in {a.ns!r}; known: {sorted(self.links_in(a.ns))}")
        addrs: dict[tuple[str, str], int] = {}
        for i, a in enumerate(self.addresses):
            key = (a.ns, str(a.interface.ip))
            # The same address with the same prefix on several interfaces is a
            # real pattern (kindnet puts the node's 10.244.3.1/32 on every pod's
            # veth); a repeat with another prefix, or on the same interface, is a slip.
            if key in addrs and (self.addresses[addrs[key]].cidr != a.cidr or self.addresses[addrs[key]].dev == a.dev):
                raise LabError(f"addresses[{i}].cidr", f"{a.interface.ip} is already on {self.addresses[addrs[key]].dev!r} in {a.ns!r} (addresses[{addrs[key]}]); an address goes on one interface of a namespace")
            addrs[key] = i

    def _validate_routes(self) -> None:
        dsts: dict[tuple[str, str], int] = {}
        for i, r in enumerate(self.routes):
            if (r.ns, r.dst) in dsts:
                raise LabError(f"routes[{i}].dst", f"{r.ns!r} already has a route to {r.dst} (routes[{dsts[(r.ns, r.dst)]}]); the kernel keeps one per destination")
            dsts[(r.ns, r.dst)] = i
        for i, r in enumerate(self.routes):
            self._need_ns(r.ns, f"routes[{i}].ns")
            if r.dev is not None and r.dev not in self.links_in(r.ns):
                raise LabError(f"routes[{i}].dev", f"no interface {r.dev!r} in {r.ns!r}; known: {sorted(self.links_in(r.ns))}")
            if r.via is not None and not r.onlink:
                check_gateway(r, self.on_link(r.ns, r.dev, before=i), f"routes[{i}].via")
            if r.via is not None:
                check_unicast_gateway(r, list(self._index().addresses.get(r.ns, ())), lambda dev, ns=r.ns: self.is_up(ns, dev), f"routes[{i}].via")
            if r.dev is not None and not self.is_up(r.ns, r.dev):
                raise LabError(f"routes[{i}].dev", f"{r.dev!r} in {r.ns!r} is down, and the kernel adds no route over a down link; set it up first")

    # -- change ------------------------------------------------------------
    def replace(self, **changes: Any) -> "Topology":
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Topology.adopted(**current) if self.__dict__.get("_adopted") else Topology(**current)

    def to_dict(self) -> dict[str, Any]:
        def row(obj: Any) -> dict[str, Any]:
            d = {f.name: getattr(obj, f.name) for f in fields(obj)}
            if isinstance(obj, Namespace):
                d["sysctls"] = dict(obj.sysctls)
            return d

        return {f.name: [row(x) for x in getattr(self, f.name)] for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Topology":
        """Build from JSON-like data (exercise files), with errors naming the entry."""
        kinds = {"namespaces": Namespace, "veths": Veth, "bridges": Bridge, "addresses": Address, "routes": Route}
        if not isinstance(data, Mapping):
            raise LabError("topology", f"expected a mapping with keys {sorted(kinds)}, got {type(data).__name__}")
        unknown = set(data) - set(kinds)
        if unknown:
            raise LabError("topology", f"unknown keys {sorted(unknown)}; allowed: {sorted(kinds)}")
        parts: dict[str, list[Any]] = {}
        for key, kind in kinds.items():
            rows = data.get(key) or []
            if not isinstance(rows, list):
                raise LabError(key, f"expected a list, got {type(rows).__name__}")
            parts[key] = []
            for i, row in enumerate(rows):
                if isinstance(row, str) and kind is Namespace:
                    row = {"name": row}
                if not isinstance(row, Mapping):
                    raise LabError(f"{key}[{i}]", f"expected a mapping, got {row!r}")
                try:
                    parts[key].append(kind(**row))
                except TypeError as exc:
                    raise LabError(f"{key}[{i}]", str(exc).replace("__init__() ", "")) from None
                except LabError as exc:
                    raise LabError(f"{key}[{i}].{exc.field.split('.', 1)[-1]}", str(exc).split(": ", 1)[1]) from None
        return cls(**parts)


__all__ = [
    "Address",
    "Bridge",
    "LabError",
    "Namespace",
    "Route",
    "Topology",
    "Veth",
    "check_gateway",
    "check_unicast_gateway",
    "check_ifname",
    "check_nsname",
]
