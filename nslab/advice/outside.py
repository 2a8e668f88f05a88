"""Stand-ins for what lies beyond an uplink, so fixes that need the outside can be verified.

A namespace's link that the copy cannot rebuild (a physical NIC, a veth whose
other end is in a namespace nslab was not given) but that carries addresses
and routes is an *uplink*: the way to the internet, a LAN, another
container. In the copy it becomes a veth to a stand-in namespace that holds
the uplink's gateways and the probe's target, and that knows the way back to
the uplink's own addresses only: like the internet, it answers a private
source only once it is masqueraded.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from nslab.lab.live import Lab

STANDIN_END = "eth0"


@dataclass(frozen=True)
class Uplink:
    ns: str
    dev: str
    cidrs: tuple[str, ...]  # the namespace's IPv4 addresses on it
    gateways: tuple[str, ...]  # the gateways of its routes through it
    targets: tuple[str, ...] = ()  # probe targets reached through it


def uplinks(snap, modelled: dict[str, dict[str, str]], creatable: tuple[str, ...] = ()) -> list[Uplink]:
    """The uplinks among *snap*'s links: not in the model (*modelled*: ns -> links_in), with an
    IPv4 address, and of no kind among *creatable* (those the copy makes itself)."""
    out = []
    for ns, links in modelled.items():
        for link in snap.links[ns]:
            if link.name in links or link.kind == "loopback" or link.kind in creatable:
                continue
            cidrs = tuple(a.cidr for a in snap.addresses[ns] if a.dev == link.name and ":" not in a.cidr)
            if not cidrs:
                continue
            gateways = tuple(dict.fromkeys(r.via for r in snap.routes[ns] if r.dev == link.name and r.via and ":" not in r.via))
            out.append(Uplink(ns, link.name, cidrs, gateways))
    return out


def aim(found: list[Uplink], lab: Lab, target: str) -> list[Uplink]:
    """*found*, with *target* given to the uplink its sender's kernel would send it through (first one that does)."""
    for i, u in enumerate(found):
        if lab.ns(u.ns).route_get(target).dev == u.dev:
            return found[:i] + [dataclasses.replace(u, targets=u.targets + (target,))] + found[i + 1 :]
    return found


def attach(lab: Lab, found: list[Uplink]) -> list[str]:
    """Build a stand-in behind each uplink in the copy *lab*; returns the stand-ins' names."""
    names = []
    for i, u in enumerate(found):
        name = _free_name(lab, f"outside{i or ''}")
        lab.add_namespace(name, lo_up=True, sysctls={"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.default.rp_filter": 0})
        near, far = lab.ns(u.ns), lab.ns(name)
        near.add_veth(u.dev, STANDIN_END, peer_ns=name, up=True)
        for cidr in u.cidrs:
            near.add_address(cidr, u.dev)
        nets = [ipaddress.ip_interface(c).network for c in u.cidrs]
        for ip in dict.fromkeys(u.gateways + u.targets):
            net = next((n for n in nets if ipaddress.ip_address(ip) in n and n.prefixlen < 32), None)
            far.add_address(f"{ip}/{net.prefixlen}" if net else f"{ip}/32", STANDIN_END if net else "lo")
        for cidr in u.cidrs:  # the way back to the uplink's own addresses, and only those
            ip = str(ipaddress.ip_interface(cidr).ip)
            if not any(ipaddress.ip_address(ip) in ipaddress.ip_interface(a.cidr).network for a in far.addresses(STANDIN_END, version=4)):
                far.add_route(f"{ip}/32", dev=STANDIN_END)
        names.append(name)
    return names


def _free_name(lab: Lab, want: str) -> str:
    taken = {ns.name for ns in lab.namespaces}
    n, name = 1, want
    while name in taken:
        n, name = n + 1, f"{want}-{n}"
    return name
