"""The generated cases' IPv6 share: each catalog lab made dual stack by one rule, so a
seed alone still says what a case is.

Every IPv4 address a.b.c.d gets the ULA twin fd00:a:b:c::d on the same device
(the octets written as they read: 10.244.1.5 -> fd00:10:244:1::5); a /32 stays
a host (/128), a /24 or longer becomes a /64, a /16 a /48, a /8 a /32. Every
route gets its twin (default -> ::/0, the gateway's twin as gateway); a
namespace that forwards IPv4 forwards IPv6 (`net.ipv6.conf.all.forwarding`),
and every namespace skips DAD for its links, as the hand-made IPv6 labs do.
"""

from __future__ import annotations

import ipaddress

from nslab.model.topology import Address, Namespace, Route, Topology
from nslab.tutorials.catalog import LABS

# Catalog labs whose checks the twin does not pass as they are, and why: they get no IPv6 cases.
WITHOUT_TWIN = {
    "host-to-container": "container1's gateway is its own address (the tutorial's step 11), which an IPv6 route refuses",
}


def address(ip: str) -> str:
    """The twin of an IPv4 address (127.0.0.1 -> ::1)."""
    if ip == "127.0.0.1":
        return "::1"
    a, b, c, d = ip.split(".")
    return str(ipaddress.ip_address(f"fd00:{a}:{b}:{c}::{d}"))


def prefixlen(length: int) -> int:
    return 128 if length == 32 else 64 if length >= 24 else 48 if length >= 16 else 32 if length >= 8 else 16


def network(dst: str) -> str:
    if dst == "default":
        return "::/0"
    net = ipaddress.ip_network(dst)
    return str(ipaddress.ip_network(f"{address(str(net.network_address))}/{prefixlen(net.prefixlen)}", strict=False))


def dual(topo: Topology) -> Topology:
    """*topo* with the IPv6 twin of each address and route, forwarding and no DAD (see the module)."""
    namespaces = []
    for ns in topo.namespaces:
        sysctls = {**dict(ns.sysctls), "net.ipv6.conf.default.accept_dad": 0}
        if "net.ipv4.ip_forward" in sysctls:
            sysctls["net.ipv6.conf.all.forwarding"] = sysctls["net.ipv4.ip_forward"]
        namespaces.append(Namespace(ns.name, ns.lo_up, sysctls))
    addresses = [Address(a.ns, a.dev, f"{address(str(a.interface.ip))}/{prefixlen(a.interface.network.prefixlen)}") for a in topo.addresses]
    routes = [Route(r.ns, network(r.dst), via=address(r.via) if r.via else None, dev=r.dev, onlink=r.onlink) for r in topo.routes]
    return topo.replace(namespaces=tuple(namespaces), addresses=(*topo.addresses, *addresses), routes=(*topo.routes, *routes))


TWINS = {name: dual(lab.topology) for name, lab in LABS.items() if name not in WITHOUT_TWIN}


def topology(lab: str, family: str) -> Topology:
    """The lab a case of *family* runs in: the catalog's, or its dual-stack twin."""
    return TWINS[lab] if family == "ipv6" else LABS[lab].topology


def destination(lab: str, family: str, dst: str) -> str:
    """A check's destination in *family*."""
    return address(dst) if family == "ipv6" else dst
