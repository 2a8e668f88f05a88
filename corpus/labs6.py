"""The IPv6 twins of the corpus' small labs (labs.py), on documentation and ULA prefixes.

Every namespace skips duplicate address detection for the links made after it
(`net.ipv6.conf.default.accept_dad=0`), so an address is usable at once; the
cases about DAD turn it back on for one device. A router forwards IPv6 with
`net.ipv6.conf.all.forwarding=1`, which Linux copies to every device.

    PAIR6     ns1 v1 2001:db8::1/64 ---- v2 2001:db8::2/64 ns2

    ROUTED6   h1 eth0 2001:db8:1::2/64 -- r0 2001:db8:1::1/64 [r, forwarding] r1 2001:db8:2::1/64 -- eth0 2001:db8:2::2/64 h2
              h1: default via 2001:db8:1::1;  h2: default via 2001:db8:2::1

    HOST6     lan eth0 2001:db8:0:10::1/64 -- enp0s8 2001:db8:0:10::10/64 [host] veth1 -- ceth1 fd00:172:16::2/64 container1
              host: fd00:172:16::/64 dev veth1; container1 has no route back to 2001:db8:0:10::/64

    BRIDGED6  c1 eth0 2001:db8::1/64 -- veth1 [host: br0] veth2 -- eth0 2001:db8::2/64 c2 (c3 eth0 on br0 too, when asked)
"""

from __future__ import annotations

import re
from typing import Any

from corpus.labs import Step, poll
from corpus.labs import node as node4
from nslab import Address, Bridge, Lab, Namespace, Route, Topology, Veth

NO_DAD = {"net.ipv6.conf.default.accept_dad": 0}


def node(name: str, *, forward: bool = False, lo_up: bool = True, **sysctls: Any) -> Namespace:
    return node4(name, lo_up=lo_up, **NO_DAD, **({"net.ipv6.conf.all.forwarding": 1} if forward else {}), **sysctls)


def pair(*, v1_up: bool = True, v2_up: bool = True, lo_up: bool = True, ns2_cidr: str = "2001:db8::2/64") -> Topology:
    return Topology(
        [node("ns1", lo_up=lo_up), node("ns2")],
        veths=[Veth("ns1", "v1", "ns2", "v2", up=v1_up, peer_up=v2_up)],
        addresses=[Address("ns1", "v1", "2001:db8::1/64"), Address("ns2", "v2", ns2_cidr)],
    )


PAIR = pair()


def routed(*, forward: bool = True) -> Topology:
    return Topology(
        [node("h1"), node("r", forward=forward), node("h2")],
        veths=[Veth("h1", "eth0", "r", "r0"), Veth("r", "r1", "h2", "eth0")],
        addresses=[
            Address("h1", "eth0", "2001:db8:1::2/64"),
            Address("r", "r0", "2001:db8:1::1/64"),
            Address("r", "r1", "2001:db8:2::1/64"),
            Address("h2", "eth0", "2001:db8:2::2/64"),
        ],
        routes=[Route("h1", "::/0", via="2001:db8:1::1"), Route("h2", "::/0", via="2001:db8:2::1")],
    )


ROUTED = routed()

HOST = Topology(
    [node("host"), node("container1"), node("lan")],
    veths=[Veth("host", "veth1", "container1", "ceth1"), Veth("host", "enp0s8", "lan", "eth0")],
    addresses=[
        Address("host", "enp0s8", "2001:db8:0:10::10/64"),
        Address("lan", "eth0", "2001:db8:0:10::1/64"),
        Address("container1", "ceth1", "fd00:172:16::2/64"),
    ],
    routes=[Route("host", "fd00:172:16::/64", dev="veth1")],
)


def bridged(*, attached: bool = True, bridge_up: bool = True, third: bool = False) -> Topology:
    """c1 and c2 (and, with *third*, c3 without an address) on br0 in host."""
    names = ["c1", "c2"] + (["c3"] if third else [])
    return Topology(
        [node("host"), *(node(n) for n in names)],
        veths=[Veth(n, "eth0", "host", f"veth{i}", peer_master="br0" if attached or n == "c1" else None) for i, n in enumerate(names, 1)],
        bridges=[Bridge("host", "br0", up=bridge_up)],
        addresses=[Address("c1", "eth0", "2001:db8::1/64"), Address("c2", "eth0", "2001:db8::2/64")],
    )


BRIDGED = bridged()


def until_address(ns: str, dev: str, cidr: str, flag: str, timeout: float = 3.0) -> Step:
    """Wait (bounded) until `ip -6 addr show dev DEV` in *ns* shows *cidr* with *flag*
    (`tentative`, `dadfailed`): duplicate address detection starts after a random delay up to a second."""
    shown = re.compile(rf"\binet6 {re.escape(cidr)} .*\b{flag}\b")

    def apply(lab: Lab) -> None:
        read = lambda: lab.ns(ns).run(["ip", "-6", "-o", "addr", "show", "dev", dev]).stdout.decode()  # noqa: E731
        poll(lambda: shown.search(read()) is not None, timeout, f"{cidr} {flag} on {dev} in {ns}")

    return apply
