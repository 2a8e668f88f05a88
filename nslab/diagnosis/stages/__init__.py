"""The kernel's path, one decision per module, in the order a packet meets them.

Each stage takes a packet at one namespace (`At`) and what can be read there
(`Reads`), and returns a `Finding` when that decision stops the packet, or
None. A finding's sentence is made of `Claim`s, each naming what was read
(`sysctl KEY`, `route DST table T`, `nft FAMILY TABLE CHAIN`, ...) and the
value read; a claim that `blames` is the decision that stopped the packet.

- link.py: the way out: a device down, its peer or bridge down, too small an MTU
- neighbour.py: who holds the next hop on the segment, and why it stays silent
- routing.py: the kernel's route lookup, input path included (rp_filter,
  forwarding, martians, policy rules, route types), asked of the kernel
- netfilter.py: the nftables (and iptables-nft) chains on the packet's hooks
- local.py: delivery: ICMP sysctls, a socket bound to the address and port
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nslab.diagnosis.reads import Reads
from nslab.model.checks import IPNetwork
from nslab.model.topology import Address, Route
from nslab.probes.result import Claim, Remedy


@dataclass(frozen=True)
class At:
    """A packet at one namespace, about to meet the kernel's decisions there."""

    ns: str
    src: str  # its source address
    dst: str  # its destination address
    iif: str | None  # the interface it came in on; None where it was made
    what: str  # 'echo request', 'TCP SYN', 'echo reply', ...
    proto: str = "icmp"  # 'icmp' or 'tcp'
    dport: int | None = None  # TCP: the port it is for

    @property
    def family(self) -> int:
        return 10 if ":" in self.dst else 2  # AF_INET6, AF_INET

    @property
    def v(self) -> str:
        return "ipv6" if ":" in self.dst else "ipv4"


def sysctl(reads: Reads, ns: str, key: str, *, blames: bool = False, dev: str | None = None) -> Claim:
    return Claim(ns, f"sysctl {key}", str(reads.sysctl(ns, key)), dev=dev, blames=blames)


def combined(reads: Reads, at_ns: str, dev: str, name: str, how: str = "max", v: str = "ipv4") -> tuple[int, list[str]]:
    """A per-device knob as the kernel combines `all` and the device's own value
    (`max`: IN_DEV_MAXCONF, `or`: IN_DEV_ORCONF, `dev`: the device's alone): the
    effective value and the keys that set it."""
    keys = [f"net.{v}.conf.all.{name}", f"net.{v}.conf.{dev}.{name}"]
    values = [number(reads.sysctl(at_ns, key)) for key in keys]
    if how == "dev":
        return values[1], [keys[1]]
    if how == "or":
        on = [k for k, val in zip(keys, values) if val > 0]
        return (1 if on else 0), on
    top = max(values)
    return top, [k for k, val in zip(keys, values) if val == top and top > 0]


def number(value: str | None) -> int:
    """A sysctl read as a number; -1 where it could not be read."""
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1


def cmd(ns: str, *words: str) -> str:
    """The command a learner types, run in *ns*."""
    return f"ip netns exec {ns} " + " ".join(words)


def set_sysctl(reads: Reads, ns: str, key: str, value: int, dev: str | None = None) -> Remedy:
    """`sysctl -w KEY=VALUE`, undone by writing back the value read."""
    return Remedy(ns, f"sysctl -w {key}={value}", f"sysctl -w {key}={reads.sysctl(ns, key)}", dev)


def link_up(reads: Reads, ns: str, dev: str) -> Remedy:
    """`ip link set DEV up`, with the lab's IPv6 addresses on DEV and its routes through DEV that
    the kernel dropped when it went down."""
    up = " && ".join([f"ip link set {dev} up", *(f"ip addr add {a.cidr} dev {dev}" for a in lost_addresses6(reads, ns, dev))])
    return with_lost_routes(reads, ns, dev, up, f"ip link set {dev} down", [a.interface.network for a in reads.view.topology.addresses if a.ns == ns and a.dev == dev])


def lost_addresses6(reads: Reads, ns: str, dev: str) -> list[Address]:
    """The lab's IPv6 addresses on *dev* that the kernel does not hold (it removes them when the device goes down)."""
    held = {ipaddress.ip_interface(a.cidr) for a in reads.addresses(ns) if a.dev == dev}
    return [a for a in reads.view.topology.addresses if a.ns == ns and a.dev == dev and a.interface.version == 6 and a.interface not in held]


def route_words(route: Route) -> str:
    """The lab's *route* as `ip route add` takes it: `DST [via VIA] [dev DEV] [onlink]`."""
    return route.dst + (f" via {route.via}" if route.via else "") + (f" dev {route.dev}" if route.dev else "") + (" onlink" if route.onlink else "")


def route_name(dst: str) -> str:
    """A destination as `ip route` prints it: a host route as the bare address, either
    family's /0 as `default` (the model writes IPv6's as `::/0`)."""
    if dst == "default":
        return dst
    net = ipaddress.ip_network(dst, strict=False)
    if net.prefixlen == 0:
        return "default"
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def with_lost_routes(reads: Reads, ns: str, dev: str, do: str, undo: str, nets: list[IPNetwork]) -> Remedy:
    """*do*, then the lab's routes in *ns* by *dev* or through a gateway in *nets* that the kernel
    does not hold (it drops a device's routes with its address, or when it goes down)."""
    # by ip's name in each family: the kernel says 'default' where the lab says '::/0' (and IPv6's
    # routes were not read at all: a remedy re-added an IPv6 default route the kernel still held,
    # and failed on it, `./run soundness --generated 120 --seed 40`, case 92)
    have = {(version, route_name(r.dst)) for version in (4, 6) for r in reads.routes(ns, version)}
    missing = [r for r in reads.view.topology.routes if r.ns == ns and (r.network.version, route_name(r.dst)) not in have]
    nets = list(nets)
    lost: list[Route] = []
    while True:  # a route through a gateway that a lost route reaches (kindnet's /32 pod: default via a gateway routed by dev) goes too
        more = [r for r in missing if r not in lost and (r.dev == dev or (r.via and any(ipaddress.ip_address(r.via) in n for n in nets)))]
        if not more:
            break
        lost += more
        nets += [ipaddress.ip_network(r.dst) for r in more if r.dst != "default"]
    adds = [f"ip route add {route_words(r)}" for r in lost]
    dels = [f"ip route del {r.dst}" for r in lost]
    return Remedy(ns, " && ".join([do, *adds]), " && ".join([*dels, undo]), dev)
