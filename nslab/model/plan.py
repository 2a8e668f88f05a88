"""The order a topology is built in: one plan, read by `Lab.build` and by `nslab show`.

    for phase in plan(topology):
        print(phase.title)
        for step in phase.steps:
            ...   # Lab.build applies it to the kernel; nslab show prints its ip command

The order is the one the kernel needs: a namespace's own sysctls before its
links (so `net.ipv6.conf.default.*` applies to them), a link before it is
enslaved, addressed or named by a per-interface sysctl, and links up before
routes (the connected route that makes a gateway reachable appears only when
its link is up).
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence, Union

from nslab.model.topology import Route, Topology


class AddNamespace(NamedTuple):
    """`ip netns add NS`"""

    ns: str


class SetSysctl(NamedTuple):
    """`ip netns exec NS sysctl -w KEY=VALUE`"""

    ns: str
    key: str
    value: str


class AddBridge(NamedTuple):
    """`ip -n NS link add NAME type bridge`"""

    ns: str
    name: str


class AddVeth(NamedTuple):
    """`ip -n NS link add NAME type veth peer name PEER netns PEER_NS`"""

    ns: str
    name: str
    peer_ns: str
    peer: str


class SetMaster(NamedTuple):
    """`ip -n NS link set DEV master BRIDGE`"""

    ns: str
    dev: str
    master: str


class AddAddress(NamedTuple):
    """`ip -n NS addr add CIDR dev DEV`"""

    ns: str
    dev: str
    cidr: str


class LinkUp(NamedTuple):
    """`ip -n NS link set DEV up`"""

    ns: str
    dev: str


class AddRoute(NamedTuple):
    """`ip -n NS route add DST [via VIA] [dev DEV] [onlink]`"""

    route: Route


Step = Union[AddNamespace, SetSysctl, AddBridge, AddVeth, SetMaster, AddAddress, LinkUp, AddRoute]


class Phase(NamedTuple):
    """Steps that can run in any order among themselves, titled for a reader."""

    name: str
    title: str
    steps: tuple[Step, ...]


# net.ipv4.conf.DEV.x, net.ipv6.neigh.DEV.x: settable only once DEV exists
_PER_DEVICE = re.compile(r"^net\.ipv[46]\.(conf|neigh)\.([^.]+)\.")


def device_of(key: str) -> str | None:
    """The interface a sysctl key names (None for 'all', 'default' and namespace-wide keys)."""
    m = _PER_DEVICE.match(key)
    return m.group(2) if m and m.group(2) not in ("all", "default") else None


def plan(topo: Topology) -> list[Phase]:
    """Every step that builds *topo*, phase by phase (empty phases included)."""
    links = {ns.name: topo.links_in(ns.name) for ns in topo.namespaces}

    def later(ns: str, key: str) -> bool:  # a sysctl of a link the lab has yet to create
        dev = device_of(key)
        return dev is not None and dev != "lo" and dev in links[ns]

    ports = [SetMaster(ns, name, master) for v in topo.veths for ns, name, master in v.ends() if master is not None]
    ups = [LinkUp(br.ns, br.name) for br in topo.bridges if br.up]
    for v in topo.veths:
        ups += [LinkUp(ns, name) for (ns, name, _), up in zip(v.ends(), (v.up, v.peer_up)) if up]
    phases: list[tuple[str, str, Sequence[Step]]] = [
        ("namespaces", "namespaces (each starts with lo down)", [AddNamespace(ns.name) for ns in topo.namespaces]),
        ("sysctls", "sysctls", [SetSysctl(ns.name, k, v) for ns in topo.namespaces for k, v in ns.sysctls if not later(ns.name, k)]),
        ("loopback", "loopback", [LinkUp(ns.name, "lo") for ns in topo.namespaces if ns.lo_up]),
        ("bridges", "bridges", [AddBridge(br.ns, br.name) for br in topo.bridges]),
        ("veths", "veth pairs (one end in each namespace)", [AddVeth(v.ns, v.name, v.peer_ns, v.peer) for v in topo.veths]),
        ("ports", "bridge ports", ports),
        ("link-sysctls", "per-interface sysctls", [SetSysctl(ns.name, k, v) for ns in topo.namespaces for k, v in ns.sysctls if later(ns.name, k)]),
        ("addresses", "addresses", [AddAddress(a.ns, a.dev, a.cidr) for a in topo.addresses]),
        ("up", "links up", ups),
        ("routes", "routes", [AddRoute(r) for r in topo.routes]),
    ]
    return [Phase(name, title, tuple(steps)) for name, title, steps in phases]


def steps(topo: Topology) -> list[Step]:
    """The plan as one ordered list."""
    return [step for phase in plan(topo) for step in phase.steps]


__all__ = ["AddAddress", "AddBridge", "AddNamespace", "AddRoute", "AddVeth", "LinkUp", "Phase", "SetMaster", "SetSysctl", "Step", "device_of", "plan", "steps"]
