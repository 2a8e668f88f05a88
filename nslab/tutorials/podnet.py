"""One pod network, described once: built by nslab's own builder or wired by CNI
plugins (nslab.tutorials.cni), and the state both leave, compared field by field.

    net = PodNetwork(("c1", "c2", "c3"))             # the tutorial's bridge node
    Lab(net.topology())                              # nslab builds it
    lab.build(net.nodes()); runtime.attach(net)      # or the bridge plugin wires it
    differences(lab_state(a, names), lab_state(b, names), ("builder", "cni"))
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from nslab.kernel.process import wait_until
from nslab.lab.live import Lab, Netns
from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth


@dataclass(frozen=True)
class PodNetwork:
    """A node ("host") whose containers get one address each from *subnet*, a
    gateway at its first address, a default route, and NAT to an "outside"
    namespace (203.0.113.1/24 behind the host's `uplink`; never a real uplink).

    plugin="bridge": containers on bridge *bridge*, gateway on the bridge (the
    tutorial's docker0/cni0). plugin="ptp": a veth per pod with the gateway on
    each host end and a /32 route per pod (kindnet's per-pod routing).
    """

    containers: tuple[str, ...] = ("c1", "c2", "c3")
    plugin: Literal["bridge", "ptp"] = "bridge"
    name: str = "labnet"
    subnet: str = "10.22.0.0/24"
    host: str = "host"
    bridge: str = "cni0"
    ifname: str = "eth0"
    outside: str = "outside"
    uplink: tuple[str, str] = ("203.0.113.2/24", "203.0.113.1/24")  # host end, outside end

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        if len(self.containers) > net.num_addresses - 3:
            raise LabError("PodNetwork.containers", f"{len(self.containers)} containers do not fit in {self.subnet}; widen the subnet")

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[1])

    def address(self, container: str) -> str:
        """host-local hands out addresses in order after the gateway: c1 .2, c2 .3, ..."""
        net = ipaddress.ip_network(self.subnet)
        return f"{net[self.containers.index(container) + 2]}/{net.prefixlen}"

    def nodes(self) -> Topology:
        """What exists before any CNI call: the node, its uplink to the outside, empty containers."""
        return Topology(
            [Namespace(self.host, lo_up=True, sysctls={"net.ipv4.ip_forward": 1}), Namespace(self.outside, lo_up=True)]
            + [Namespace(c) for c in self.containers],
            veths=[Veth(self.host, "uplink", self.outside, "eth0")],
            addresses=[Address(self.host, "uplink", self.uplink[0]), Address(self.outside, "eth0", self.uplink[1])],
        )

    def topology(self) -> Topology:
        """The bridge lab as nslab's own builder makes it (what the bridge plugin should make)."""
        if self.plugin != "bridge":
            raise LabError("PodNetwork.plugin", "nslab's builder has an equivalent of the bridge lab only (ptp needs 'scope host' routes the model lacks)")
        base = self.nodes()
        return base.replace(
            namespaces=tuple(Namespace(n.name, lo_up=True, sysctls=dict(n.sysctls)) for n in base.namespaces),
            bridges=(Bridge(self.host, self.bridge),),
            veths=base.veths + tuple(Veth(self.host, f"veth-{c}", c, self.ifname, master=self.bridge) for c in self.containers),
            addresses=base.addresses
            + (Address(self.host, self.bridge, f"{self.gateway}/{ipaddress.ip_network(self.subnet).prefixlen}"),)
            + tuple(Address(c, self.ifname, self.address(c)) for c in self.containers),
            routes=tuple(Route(c, "default", via=self.gateway, dev=self.ifname) for c in self.containers),
        )

    def nat_rule(self) -> list[str]:
        """The hand-built equivalent of ipMasq, as iptables arguments for the host."""
        return ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", self.subnet, "!", "-d", self.subnet, "-j", "MASQUERADE"]

    def conflist(self) -> dict[str, Any]:
        ipam = {"type": "host-local", "ranges": [[{"subnet": self.subnet, "gateway": self.gateway}]], "routes": [{"dst": "0.0.0.0/0"}]}
        main: dict[str, Any] = {"type": self.plugin, "ipMasq": True, "ipam": ipam}
        if self.plugin == "bridge":
            main.update(bridge=self.bridge, isGateway=True)
        return {"cniVersion": "1.0.0", "name": self.name, "plugins": [main]}


def lab_state(lab: Lab, namespaces: list[str] | tuple[str, ...], containers: tuple[str, ...] = ()) -> dict[str, dict[str, set[str]]]:
    """Per namespace, its links, addresses, IPv4 routes and ip_forward as `ip`-like lines.

    Normalised so two builds of one lab compare equal: MACs and ifindexes are
    dropped; a veth whose peer is in one of *containers* is named after that
    peer (`veth~c1`) since CNI names host ends at random; IPv6 link-local
    addresses (derived from the random MACs, and added by the kernel a moment
    later) are left out.
    """
    settled = {ns: _settled_routes(lab.ns(ns)) for ns in namespaces}
    links = {ns: settled[ns][0] for ns in namespaces}
    alias: dict[tuple[str, str], str] = {}
    for ns, mine in links.items():
        for link in mine:
            for peer_ns in containers:
                peer = next((p for p in links.get(peer_ns, []) if p.kind == "veth" and p.index == link.peer_index and p.peer_index == link.index), None)
                if link.kind == "veth" and peer_ns != ns and peer is not None:
                    alias[(ns, link.name)] = f"veth~{peer_ns}"
    out = {}
    for ns in namespaces:
        def name(dev: str | None, ns: str = ns) -> str | None:
            return alias.get((ns, dev), dev) if dev else dev

        out[ns] = {
            "links": {f"{name(k.name)} {k.kind} {k.state} mtu {k.mtu}" + (f" master {name(k.master)}" if k.master else "") for k in links[ns]},
            "addresses": {f"{name(a.dev)} {a.cidr} scope {a.scope}" for a in lab.ns(ns).addresses() if not a.cidr.startswith("fe80:")},
            "routes": {str(r).replace(f"dev {r.dev}", f"dev {name(r.dev)}") for r in settled[ns][1]},
            "sysctls": {f"net.ipv4.ip_forward={lab.ns(ns).sysctl('net.ipv4.ip_forward')}"},
        }
    return out


def _settled_routes(ns: Netns) -> tuple[list, list]:
    """Links and routes once the routes' `linkdown` flags agree with their links'
    carrier: the kernel sets a route's flag when linkwatch applies its link's change, a
    moment after the carrier itself, e.g. when a veth's peer comes up or a bridge loses
    its last port (up to a second later; Readback.settle asks for it now, where the kernel
    applies it when asked)."""

    def agreed():
        links, routes = ns.links(), ns.routes()
        carrier = {link.name: link.carrier for link in links}
        behind = {r.dev for r in routes if r.dev and r.linkdown == carrier.get(r.dev, True)}
        if behind:
            ns.readback.settle(behind & carrier.keys())
            return None
        return links, routes

    return wait_until(agreed, timeout=3.0, what=f"routes in {ns.name} to follow their links' carrier")


def differences(a: dict[str, dict[str, set[str]]], b: dict[str, dict[str, set[str]]], labels: tuple[str, str] = ("a", "b")) -> list[str]:
    """Field-by-field differences of two `lab_state`s, one readable line each."""
    out = []
    for ns in sorted(set(a) | set(b)):
        for part in sorted(set(a.get(ns, {})) | set(b.get(ns, {}))):
            left, right = a.get(ns, {}).get(part, set()), b.get(ns, {}).get(part, set())
            out += [f"{ns} {part}: only in {labels[0]}: {line}" for line in sorted(left - right)]
            out += [f"{ns} {part}: only in {labels[1]}: {line}" for line in sorted(right - left)]
    return out


__all__ = ["PodNetwork", "differences", "lab_state"]
