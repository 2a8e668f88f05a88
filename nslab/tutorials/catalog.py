"""The tutorials' final topologies, by name, each with the pings that must work there.

    nslab show bridge-three-containers       # its ip commands
    LABS["veth-two-namespaces"].topology     # a Topology for Lab.build

The tutorials' "root namespace" or "host" is a lab namespace (`host`); the
VM's own network card (`enp0s8`) is one end of a veth whose other end sits
in `lan`, the network the card is plugged into, as in the scenarios/
modules whose final state each lab is.
"""

from __future__ import annotations

from dataclasses import dataclass

from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth
from nslab.tutorials import cluster


@dataclass(frozen=True)
class Check:
    """`ip netns exec SRC ping -c1 DST` must get a reply."""

    src: str
    dst: str

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}"


@dataclass(frozen=True)
class CatalogLab:
    name: str
    title: str
    tutorial: str
    topology: Topology
    checks: tuple[Check, ...]
    scenario: str | None = None  # the module in scenarios/ that walks up to this state
    final: str | None = None  # its function that builds the state, step by step (tests/test_render.py compares)

    def __post_init__(self) -> None:
        names = {ns.name for ns in self.topology.namespaces}
        for i, check in enumerate(self.checks):
            if check.src not in names:
                raise LabError(f"{self.name}.checks[{i}].src", f"namespace {check.src!r} is not in this lab; it has {sorted(names)}")


def _veth_two_namespaces() -> CatalogLab:
    topo = Topology(
        ["ns1", "ns2"],
        veths=[Veth("ns1", "v1", "ns2", "v2")],
        addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")],
    )
    return CatalogLab(
        "veth-two-namespaces",
        "two namespaces wired by a veth",
        "000 Container Networking - Veth",
        topo,
        (Check("ns1", "10.0.0.2"), Check("ns2", "10.0.0.1")),
        scenario="test_veth_two_namespaces",
        final="configure",
    )


def _root_to_blue() -> CatalogLab:
    topo = Topology(
        [Namespace("host", lo_up=True), Namespace("blue_ns", lo_up=True), Namespace("lan", lo_up=True)],
        veths=[Veth("host", "veth_root_ns", "blue_ns", "veth_blue_ns"), Veth("host", "enp0s8", "lan", "eth0")],
        addresses=[
            Address("host", "veth_root_ns", "10.0.0.1/24"),
            Address("blue_ns", "veth_blue_ns", "10.0.0.2/24"),
            Address("host", "enp0s8", "192.168.0.194/24"),
            Address("lan", "eth0", "192.168.0.1/24"),
        ],
        routes=[Route("blue_ns", "default", via="10.0.0.1")],
    )
    return CatalogLab(
        "root-to-blue",
        "the root namespace (host) and blue_ns over a veth; blue_ns reaches the host's other address by its default route",
        "001 network namespaces, sections 4-5",
        topo,
        (Check("blue_ns", "127.0.0.1"), Check("host", "10.0.0.2"), Check("blue_ns", "10.0.0.1"), Check("blue_ns", "192.168.0.194")),
        scenario="test_root_to_blue_ns",
        final="default_route",
    )


def _host_to_container() -> CatalogLab:
    topo = Topology(
        [Namespace("host", lo_up=True), Namespace("lan", lo_up=True, sysctls={"net.ipv4.ip_forward": 0}), "container1"],
        veths=[Veth("host", "enp0s8", "lan", "eth0"), Veth("host", "veth1", "container1", "ceth1")],
        addresses=[Address("host", "enp0s8", "10.0.0.10/24"), Address("lan", "eth0", "10.0.0.1/24"), Address("container1", "ceth1", "172.16.0.2/24")],
        routes=[
            Route("host", "default", via="10.0.0.1"),
            Route("host", "172.16.0.0/24", dev="veth1"),
            # The tutorial's own step 11: the container's own address as its gateway.
            Route("container1", "default", via="172.16.0.2", dev="ceth1"),
        ],
    )
    return CatalogLab(
        "host-to-container",
        "a host (its uplink to a lan gateway) and one container over a veth, routed both ways",
        "002 Container Networking Deep Dive, part 1",
        topo,
        (Check("host", "172.16.0.2"), Check("container1", "10.0.0.10"), Check("lan", "10.0.0.10")),
        scenario="test_host_to_container",
        final="container_default_route",
    )


def _bridge_three_containers() -> CatalogLab:
    containers = ("container1", "container2", "container3")
    topo = Topology(
        ["host", *containers],
        bridges=[Bridge("host", "br0")],
        veths=[Veth("host", f"veth{i}", c, "eth0", master="br0") for i, c in enumerate(containers, 1)],
        addresses=[Address("host", "br0", "172.17.0.1/24")] + [Address(c, "eth0", f"172.17.0.{i}/24") for i, c in enumerate(containers, 2)],
        routes=[Route(c, "default", via="172.17.0.1") for c in containers],
    )
    return CatalogLab(
        "bridge-three-containers",
        "three containers on the host's bridge br0 (docker0 in the tutorials), default route via the bridge",
        "004 CNI / bridge0",
        topo,
        (
            Check("container1", "172.17.0.3"),
            Check("container2", "172.17.0.4"),
            Check("container3", "172.17.0.2"),
            Check("container1", "172.17.0.1"),
            Check("host", "172.17.0.4"),
        ),
    )


def _kind_cluster() -> CatalogLab:
    return CatalogLab(
        "kind-cluster",
        "three kind nodes on one node network, three pods each, wired as kindnet does: a /32 per pod, a route per other node's pod CIDR",
        "kindnet (003 VETH Encore, across nodes)",
        cluster.cluster(3, 3),
        (
            Check(cluster.pod(1, 1), cluster.pod_address(1, 2)),
            Check(cluster.pod(1, 1), cluster.pod_address(2, 1)),
            Check(cluster.pod(3, 3), cluster.pod_address(1, 1)),
            Check(cluster.node(2), cluster.pod_address(3, 2)),
        ),
        scenario="test_cluster",
        final="kindnet",
    )


LABS: dict[str, CatalogLab] = {
    lab.name: lab for lab in (_veth_two_namespaces(), _root_to_blue(), _host_to_container(), _bridge_three_containers(), _kind_cluster())
}

__all__ = ["LABS", "CatalogLab", "Check"]
