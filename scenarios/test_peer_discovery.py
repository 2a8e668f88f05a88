"""Tutorial 004 "Experiments with container networking", part 1: which container
is behind each vethXXX on the bridge?

      host (the root namespace, played by a lab namespace)
      docker0
        |-- vetheeed635 (master docker0) <-- veth --> 4d0e8ada345c: eth0 172.17.0.2/16
        `-- veth78a60be (master docker0) <-- veth --> eed0e7bd4f9d: eth0 172.17.0.3/16

A veth knows its peer: `ip link` prints the host end as `vethX@ifN ... link-netnsid K`
(N the peer's ifindex, K the id the host gives the peer's namespace), and
`ethtool -S vethX` reports the same N as `peer_ifindex`. Inside a container,
eth0 points back the same way. The index alone is not enough: every container
numbers its own interfaces, so the namespace id says which one it is.
"""

from __future__ import annotations

import pytest

from nslab import Address, Bridge, Namespace, Topology, Veth

pytestmark = pytest.mark.needs("bridge")

CONTAINERS = {"vetheeed635": "4d0e8ada345c", "veth78a60be": "eed0e7bd4f9d"}  # host veth -> container (namespace)


def two_docker_containers() -> Topology:
    """docker run twice: per container a veth, its host end a port of docker0, eth0 inside."""
    return Topology(
        [Namespace("host")] + [Namespace(c) for c in CONTAINERS.values()],
        veths=[Veth("host", veth, c, "eth0", master="docker0") for veth, c in CONTAINERS.items()],
        bridges=[Bridge("host", "docker0")],
        addresses=[Address("host", "docker0", "172.17.0.1/16")] + [Address(c, "eth0", f"172.17.0.{i}/16") for i, c in enumerate(CONTAINERS.values(), start=2)],
    )


def behind(lab, veth: str) -> tuple[str, str]:
    """(namespace, interface) at the other end of the host's *veth*, found the way
    `ip link` does: the namespace whose id is the link-netnsid, the interface with the peer's index."""
    host = lab.ns("host")
    link = host.link(veth)
    ns = next(ns for ns in lab.namespaces if ns is not host and host.netnsid(ns) == link.peer_netnsid)
    return ns.name, next(peer.name for peer in ns.links() if peer.index == link.peer_index)


def test_01_the_bridge_has_one_port_per_container(lab):
    # $ bridge mdb / bridge link: docker0 with vetheeed635 and veth78a60be
    lab.build(two_docker_containers())
    host = lab.ns("host")
    assert sorted(link.name for link in host.links() if link.master == "docker0") == sorted(CONTAINERS)


def test_02_ip_link_shows_the_peer_index_and_namespace(lab):
    # $ ip link   ->   vetheeed635@if2: ... link-netnsid 0
    lab.build(two_docker_containers())
    host = lab.ns("host")
    for veth, name in CONTAINERS.items():
        link, eth0 = host.link(veth), lab.ns(name).link("eth0")
        assert link.peer_index == eth0.index
        assert link.peer_netnsid is not None and link.peer_netnsid == host.netnsid(name)
    # two containers, two different namespace ids
    assert len({host.link(veth).peer_netnsid for veth in CONTAINERS}) == len(CONTAINERS)


def test_03_ethtool_peer_ifindex_names_the_containers_eth0(lab):
    # $ ethtool -S vetheeed635   ->   peer_ifindex: 2
    lab.build(two_docker_containers())
    host = lab.ns("host")
    for veth, name in CONTAINERS.items():
        stats = host.ethtool_stats(veth)
        assert stats["peer_ifindex"] == lab.ns(name).link("eth0").index == host.link(veth).peer_index


def test_04_each_host_veth_leads_to_its_containers_eth0(lab):
    lab.build(two_docker_containers())
    assert {veth: behind(lab, veth) for veth in CONTAINERS} == {veth: (name, "eth0") for veth, name in CONTAINERS.items()}


def test_05_from_the_container_back_to_the_host_veth(lab):
    # container$ ethtool -S eth0   ->   peer_ifindex: 12 ;  host$ ip link show veth78a60be   ->   12: veth78a60be: ... master docker0
    lab.build(two_docker_containers())
    host = lab.ns("host")
    for veth, name in CONTAINERS.items():
        container = lab.ns(name)
        eth0 = container.link("eth0")
        index = container.ethtool_stats("eth0")["peer_ifindex"]
        assert index == eth0.peer_index
        assert eth0.peer_netnsid == container.netnsid("host")
        found = next(link for link in host.links() if link.index == index)
        assert (found.name, found.master) == (veth, "docker0")
