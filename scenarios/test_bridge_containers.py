"""Tutorials 004 and 001 section 6, the docker0 model: one bridge, several containers.

      host (the node's root namespace, played by a lab namespace)
      docker0 172.17.0.1/16  (a Linux bridge: a switch with an address)
        |-- veth1 (master docker0) <-- veth --> container1: eth0 172.17.0.2/16
        |-- veth2 (master docker0) <-- veth --> container2: eth0 172.17.0.3/16
        `-- vethN (master docker0) <-- veth --> containerN: eth0 172.17.0.N+1/16
      every container: default via 172.17.0.1 dev eth0

The bridge switches frames between its ports: ARP requests are flooded to
every port, and the bridge learns each container's MAC on the port it came
from, so unicast frames go to one port only. A container whose host-side
veth end is not a port of the bridge, or is down, is cut off.

The number of containers is a parameter: the tutorial steps run with 3, and
the last test checks that all 50 x 49 ordered pairs reach each other.
"""

from __future__ import annotations

import pytest

from nslab import Address, Bridge, Cause, Namespace, Outcome, Route, Topology, Veth
from nslab.lab.sweep import all_pairs

pytestmark = pytest.mark.needs("bridge")

CONTAINERS = 3
GATEWAY = "172.17.0.1"


def container(i: int) -> str:
    return f"container{i}"


def address(i: int) -> str:
    return f"172.17.0.{i + 1}"


def docker0_with(n: int, *, attached: bool = True, quiet: bool = False) -> Topology:
    """$ ip link add docker0 type bridge ; ip addr add 172.17.0.1/16 dev docker0 ; ip link set docker0 up
    and per container i: ip link add vethI type veth peer name eth0 netns containerI ;
    ip link set vethI master docker0 up ; ip -n containerI addr add 172.17.0.(I+1)/16 dev eth0 ;
    ip -n containerI link set eth0 up ; ip -n containerI route add default via 172.17.0.1

    *attached*=False leaves the last container's vethN out of the bridge.
    *quiet* turns IPv6 off in the containers, so they send nothing until asked
    (no router solicitations when eth0 comes up) and the bridge learns nothing early.
    """
    sysctls = {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1} if quiet else None
    names = [container(i) for i in range(1, n + 1)]
    return Topology(
        [Namespace("host")] + [Namespace(name, sysctls=sysctls) for name in names],
        veths=[Veth("host", f"veth{i}", container(i), "eth0", master="docker0" if attached or i < n else None) for i in range(1, n + 1)],
        bridges=[Bridge("host", "docker0")],
        addresses=[Address("host", "docker0", f"{GATEWAY}/16")] + [Address(container(i), "eth0", f"{address(i)}/16") for i in range(1, n + 1)],
        routes=[Route(container(i), "default", via=GATEWAY, dev="eth0") for i in range(1, n + 1)],
    )


def test_01_every_container_has_a_port_on_docker0(lab):
    # $ ip link show master docker0 ; bridge link
    lab.build(docker0_with(CONTAINERS))
    host = lab.ns("host")
    assert host.link("docker0").kind == "bridge"
    ports = sorted(link.name for link in host.links() if link.master == "docker0")
    assert ports == [f"veth{i}" for i in range(1, CONTAINERS + 1)]
    for i in range(1, CONTAINERS + 1):
        assert host.link(f"veth{i}").state == "UP"
        assert [a.cidr for a in lab.ns(container(i)).addresses("eth0", version=4)] == [f"{address(i)}/16"]


def test_02_containers_default_route_is_the_bridge_address(lab):
    lab.build(docker0_with(CONTAINERS))
    for i in range(1, CONTAINERS + 1):
        ns = lab.ns(container(i))
        assert "default via 172.17.0.1 dev eth0" in [str(r) for r in ns.routes()]
        # anything off the subnet is sent to the bridge's address
        lookup = ns.route_get("198.51.100.7")
        assert (lookup.via, lookup.dev, lookup.src) == (GATEWAY, "eth0", address(i))


def test_03_container_to_container_across_the_bridge(lab):
    lab.build(docker0_with(CONTAINERS))
    result = lab.ns("container1").ping(address(2))
    assert result.replied, result
    ev = result.evidence
    # The who-has was flooded: in on veth1, up to docker0 itself, out of every other port.
    arp = {(s.ns, s.dev, s.direction) for s in ev.seen(kind="arp-request")}
    assert {("host", "veth1", "in"), ("host", "docker0", "in"), ("container2", "eth0", "in")} <= arp
    assert {("host", f"veth{i}", "out") for i in range(2, CONTAINERS + 1)} <= arp
    # The echo was switched, not flooded: veth1 -> veth2 only, never to container3.
    echo = {(s.ns, s.dev, s.direction) for s in ev.seen(kind="echo-request")}
    assert echo == {("container1", "eth0", "out"), ("host", "veth1", "in"), ("host", "veth2", "out"), ("container2", "eth0", "in")}
    assert ("container3", "eth0", "in") in arp and not ev.seen(ns="container3", kind="echo-request")


def test_04_the_bridge_learns_each_container_mac_on_its_port(lab):
    # $ bridge fdb show br docker0
    lab.build(docker0_with(CONTAINERS, quiet=True))
    host = lab.ns("host")
    macs = {i: lab.ns(container(i)).link("eth0").mac for i in range(1, CONTAINERS + 1)}

    def learned():
        return {e.mac: e.dev for e in host.fdb("docker0") if not e.permanent}

    assert not set(macs.values()) & set(learned()), "quiet containers have sent nothing yet"
    for i in range(1, CONTAINERS + 1):
        assert lab.ns(container(i)).ping(address(i % CONTAINERS + 1)).replied
    assert {mac: learned().get(mac) for mac in macs.values()} == {macs[i]: f"veth{i}" for i in macs}
    # and the containers' ARP caches hold each other's eth0 MAC, learned through the bridge
    assert lab.ns("container1").neighbour(address(2)).mac == macs[2]


def test_05_container_to_host_via_the_bridge_address(lab):
    lab.build(docker0_with(CONTAINERS))
    for i in range(1, CONTAINERS + 1):
        result = lab.ns(container(i)).ping(GATEWAY)
        assert result.replied, result
        assert ("host", "docker0", "in") in {(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")}


def test_06_host_to_every_container(lab):
    lab.build(docker0_with(CONTAINERS))
    host = lab.ns("host")
    for i in range(1, CONTAINERS + 1):
        result = host.ping(address(i))
        assert result.replied, result
        assert host.route_get(address(i)).dev == "docker0"


def test_07_container_not_attached_to_the_bridge_is_unreachable(lab):
    # vethN was created but `ip link set vethN master docker0` never ran
    lab.build(docker0_with(CONTAINERS, attached=False))
    last = CONTAINERS
    assert lab.ns("host").link(f"veth{last}").master is None
    result = lab.ns("container1").ping(address(last))
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NOT_ON_BRIDGE, result
    assert f"veth{last}" in result.explanation and "docker0" in result.explanation and container(last) in result.explanation
    # the flood reached every port of docker0, and nothing reached the cut-off container
    assert not result.evidence.seen(ns=container(last))
    # the others are fine
    assert lab.ns("container1").ping(address(2)).replied


def test_08_container_whose_host_end_is_down_is_unreachable(lab):
    # $ ip link set vethN down
    lab.build(docker0_with(CONTAINERS))
    last = CONTAINERS
    host = lab.ns("host")
    host.set_link(f"veth{last}", up=False)
    assert lab.ns(container(last)).link("eth0").state == "NO-CARRIER"
    result = host.ping(address(last))
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.LINK_DOWN, result
    assert f"veth{last}" in result.explanation and container(last) in result.explanation
    assert not result.evidence.seen(ns=container(last))


def test_09_fifty_containers_all_pairs(lab):
    """Every container reaches every other: 50 x 49 = 2450 ordered pairs, the
    requests of four sources in flight at a time, ARP caches flushed between
    rounds (a failing pair is probed again with `ping` for its explanation)."""
    n = 50
    lab.build(docker0_with(n))
    sweep = all_pairs({lab.ns(container(i)): address(i) for i in range(1, n + 1)})
    assert sweep.pairs == n * (n - 1) == 2450
    assert sweep.ok, sweep


# -- the dual-stack twin: docker0 with an IPv6 subnet as well (dockerd's --ipv6 --fixed-cidr-v6) ---
#      docker0 172.17.0.1/16 fd00:17::1/64;  containerI eth0 172.17.0.(I+1)/16 fd00:17::(I+1)/64,
#      default via 172.17.0.1 and via fd00:17::1. accept_dad=0 for the links each namespace makes,
#      the twin of `nodad`: link-local addresses are usable at once.
GATEWAY6 = "fd00:17::1"


def address6(i: int) -> str:
    return f"fd00:17::{i + 1}"


def dual_docker0_with(n: int, *, attached: bool = True) -> Topology:
    """docker0_with, and: ip addr add fd00:17::1/64 dev docker0 ; per container
    ip -n containerI addr add fd00:17::(I+1)/64 dev eth0 ; ip -n containerI -6 route add default via fd00:17::1"""
    topo = docker0_with(n, attached=attached)
    no_dad = {"net.ipv6.conf.default.accept_dad": 0}
    return topo.replace(
        namespaces=tuple(Namespace(ns.name, ns.lo_up, no_dad) for ns in topo.namespaces),
        addresses=(*topo.addresses, Address("host", "docker0", f"{GATEWAY6}/64"), *(Address(container(i), "eth0", f"{address6(i)}/64") for i in range(1, n + 1))),
        routes=(*topo.routes, *(Route(container(i), "::/0", via=GATEWAY6, dev="eth0") for i in range(1, n + 1))),
    )


def test_20_dual_stack_containers_reach_each_other_and_the_bridge(lab):
    lab.build(dual_docker0_with(CONTAINERS))
    c1 = lab.ns(container(1))
    for dst in (address(2), address6(2), GATEWAY, GATEWAY6):
        assert c1.ping(dst).replied, dst
    result = lab.ns(container(2)).ping(address6(3))
    assert result.replied, result
    # The echo was switched, not flooded: veth2 -> veth3 only, never to container1.
    echo = {(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")}
    assert echo == {(container(2), "eth0", "out"), ("host", "veth2", "in"), ("host", "veth3", "out"), (container(3), "eth0", "in")}, echo


def test_21_dual_stack_a_container_off_the_bridge_is_cut_off_in_both_families(lab):
    lab.build(dual_docker0_with(CONTAINERS, attached=False))
    c1 = lab.ns(container(1))
    for dst in (address(CONTAINERS), address6(CONTAINERS)):
        result = c1.ping(dst)
        assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
        assert result.cause is Cause.NOT_ON_BRIDGE and result.where.ns == "host" and result.where.dev == f"veth{CONTAINERS}", result
    assert "NDP request" in result.explanation and "not a port of docker0" in result.explanation
