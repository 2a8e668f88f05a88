"""The model's checks of single values, each failing in one line that names the
field, the bad value and the fix (LabError): interface and namespace names,
CIDRs, destinations, sysctls, and what the kernel takes as a gateway."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, Mapping, Union

if TYPE_CHECKING:
    from nslab.model.topology import Address, Route

IFNAMSIZ = 15  # the kernel's IFNAMSIZ (16) less the trailing NUL
NSNAME_MAX = 255  # a file name under /run/netns

IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class LabError(ValueError):
    """Invalid lab input. `field` names where, the message says what and how to fix it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def check_ifname(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise LabError(where, f"interface name must be a non-empty string, got {value!r}")
    if len(value) > IFNAMSIZ:
        raise LabError(
            where,
            f"interface name {value!r} is {len(value)} characters; the kernel allows {IFNAMSIZ} "
            f"(shorten it, e.g. {value[:IFNAMSIZ]!r})",
        )
    if value in (".", "..") or re.search(r"[/:\s]", value):
        raise LabError(where, f"interface name {value!r} may not be '.' or '..' nor contain '/', ':' or white space")
    return value


def check_nsname(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise LabError(where, f"namespace name must be a non-empty string, got {value!r}")
    if len(value) > NSNAME_MAX or value in (".", "..") or "/" in value or re.search(r"\s", value):
        raise LabError(where, f"namespace name {value!r} must be a file name: no '/', no white space, not '.' or '..'")
    return value


def parse_interface(value: object, where: str) -> IPInterface:
    """An address with its prefix, as `ip addr add` takes it: '10.0.0.1/24'."""
    if not isinstance(value, str) or "/" not in value:
        raise LabError(where, f"{value!r} is not an address with a prefix length; write it like '10.0.0.1/24'")
    try:
        return ipaddress.ip_interface(value)
    except ValueError as exc:
        raise LabError(where, f"{value!r} is not a valid CIDR ({exc}); write it like '10.0.0.1/24'") from None


def parse_network(value: object, where: str) -> IPNetwork:
    """A route destination: 'default' or a network with no host bits set."""
    if value == "default":
        return ipaddress.ip_network("0.0.0.0/0")
    if not isinstance(value, str):
        raise LabError(where, f"route destination must be 'default' or a CIDR like '172.16.0.0/24', got {value!r}")
    try:
        return ipaddress.ip_network(value if "/" in value else value + ("/128" if ":" in value else "/32"))
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise LabError(where, f"{value!r} has host bits set; did you mean {str(fixed)!r}?") from None
        raise LabError(where, f"{value!r} is not a valid destination ({exc}); write 'default' or a CIDR like '172.16.0.0/24'") from None


def parse_address(value: object, where: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        raise LabError(where, f"{value!r} is not an IP address; write it like '10.0.0.1'") from None


_SYSCTL = re.compile(r"^net\.(ipv4|ipv6|core|bridge|netfilter|unix)(\.[A-Za-z0-9_\-]+)+$")


def frozen_sysctls(value: Mapping[str, Any] | None, where: str) -> tuple[tuple[str, str], ...]:
    items = []
    for key, val in dict(value or {}).items():
        if not isinstance(key, str) or not _SYSCTL.match(key):
            raise LabError(
                f"{where}[{key!r}]",
                "only per-namespace sysctls under net.* can be set (e.g. 'net.ipv4.ip_forward')",
            )
        if isinstance(val, bool) or not isinstance(val, (int, str)) or not str(val).strip():
            raise LabError(f"{where}[{key!r}]", f"value must be a number or a non-empty string, got {val!r}")
        items.append((key, str(val)))
    return tuple(sorted(items))


def check_gateway(route: Route, on_link: list[IPNetwork], where: str) -> None:
    """A gateway must be reachable without another gateway: in the subnet of an
    address on an up link, or behind a route without a gateway, in the route's
    namespace and on its device if it names one (ip(8) says 'Nexthop has invalid
    gateway' otherwise); `onlink` waives the check. *on_link* lists those networks."""
    if route.via is None:
        return
    gw = ipaddress.ip_address(route.via)
    if not any(gw in net for net in on_link):
        on = f" on {route.dev!r}" if route.dev else ""
        nets = ", ".join(str(n) for n in on_link) or "none"
        dev = route.dev or "DEV"
        raise LabError(
            where,
            f"gateway {route.via} is not on a link of {route.ns!r}{on} (reachable without a gateway: {nets}); "
            f"add an address in its subnet on an up link, or a route to it first ({route.via} dev {dev}), or mark the route onlink",
        )


def check_unicast_gateway(route: Route, addresses: list[Address], is_up: Any, where: str) -> None:
    """The kernel takes only a neighbour's unicast address as an IPv4 next hop ('Nexthop
    has invalid gateway'): not the broadcast address of a subnet on an up link (on the
    route's dev, when it names one and is not onlink), and, for an onlink route, not an
    address of the namespace itself. *addresses* are the namespace's; *is_up(dev)* says
    whether a link of it is up. (Measured on 6.18: a broadcast on a down link, the
    network address, and the namespace's own address without onlink are all accepted.)"""
    if route.via is None:
        return
    gw = ipaddress.ip_address(route.via)
    if gw.version != 4:
        return
    for a in addresses:
        net = a.interface.network
        if gw == net.broadcast_address and net.prefixlen < 31 and is_up(a.dev) and (route.onlink or route.dev in (None, a.dev)):
            raise LabError(where, f"gateway {route.via} is the broadcast address of {net} on {a.dev!r} in {route.ns!r}, and the kernel takes no broadcast address as a next hop; use a neighbour's address")
        if route.onlink and gw == a.interface.ip:
            raise LabError(where, f"gateway {route.via} is an address of {route.ns!r} itself (on {a.dev!r}), and the kernel refuses that for an onlink route; use a neighbour's address")


__all__ = [
    "IFNAMSIZ",
    "LabError",
    "check_gateway",
    "check_ifname",
    "check_nsname",
    "check_unicast_gateway",
    "frozen_sysctls",
    "parse_address",
    "parse_interface",
    "parse_network",
]
