"""Per-pod routing (kindnet's pattern), wired by the `ptp` CNI plugin: no bridge at all.

      outside  eth0 203.0.113.1/24
                 |  veth
      host     uplink 203.0.113.2/24, ip_forward=1, ipMasq -> MASQUERADE in host only
               veth~c1 10.244.1.1/32 ---- c1 eth0 10.244.1.2/24   host: 10.244.1.2/32 dev veth~c1 scope host
               veth~c2 10.244.1.1/32 ---- c2 eth0 10.244.1.3/24   host: 10.244.1.3/32 dev veth~c2 scope host
               veth~c3 10.244.1.1/32 ---- c3 eth0 10.244.1.4/24
      in each pod: 10.244.1.1/32 dev eth0 scope link; 10.244.1.0/24 and default via 10.244.1.1

Every pod's host end holds the same gateway address, and the host routes each
pod by a /32: pod-to-pod traffic is routed by the host, never bridged. Each
test rebuilds its lab, so order does not matter.
"""

from __future__ import annotations

import pytest

from nslab import Outcome
from nslab.tutorials.cni import CniError, Runtime, unavailable
from nslab.tutorials.podnet import PodNetwork, differences, lab_state

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

NET = PodNetwork(("c1", "c2", "c3"), plugin="ptp", name="kindnet", subnet="10.244.1.0/24")
ALL = (NET.host, *NET.containers)


def ip(container: str) -> str:
    return NET.address(container).split("/")[0]


@pytest.fixture
def cni(lab, record_property):
    with Runtime(lab, host=NET.host) as runtime:
        yield runtime
        record_property("cni_plugins", runtime.note())


def wire(lab, cni):
    lab.build(NET.nodes())
    return cni.attach(NET)


def test_01_each_pod_gets_a_veth_and_a_host_route(lab, cni):
    results = wire(lab, cni)
    state = lab_state(lab, ALL, NET.containers)
    for c in NET.containers:
        assert [a["address"] for a in results[c]["ips"]] == [NET.address(c)]
        assert f"veth~{c} 10.244.1.1/32 scope universe" in state[NET.host]["addresses"]  # the gateway, on every host end
        assert f"{ip(c)}/32 dev veth~{c} scope host" in state[NET.host]["routes"]
        assert state[c]["routes"] == {
            f"10.244.1.1/32 dev eth0 scope link src {ip(c)}",
            f"10.244.1.0/24 via 10.244.1.1 dev eth0 src {ip(c)}",
            "default via 10.244.1.1 dev eth0",
        }
    assert not any("bridge" in link for link in state[NET.host]["links"])


def test_02_pods_reach_each_other_through_the_host(lab, cni):
    wire(lab, cni)
    for src, dst in [("c1", "c2"), ("c2", "c3"), ("c3", "c1")]:
        assert lab.ns(src).route_get(ip(dst)).via == "10.244.1.1"  # routed, even inside the /24
        result = lab.ns(src).ping(ip(dst))
        assert result.replied, result


def test_03_pods_reach_the_gateway(lab, cni):
    wire(lab, cni)
    for c in NET.containers:
        result = lab.ns(c).ping("10.244.1.1")
        assert result.replied, result


def test_04_egress_leaves_through_nat_as_the_host(lab, cni):
    wire(lab, cni)
    result = lab.ns("c2").chat(server=NET.outside, dst="203.0.113.1", port=8080)
    assert result.connected, result
    assert result.client_address == "203.0.113.2"
    rules = cni.nat_rules()
    assert sum("-j MASQUERADE" in r for r in rules) == len(NET.containers), rules
    assert all(cni.nat_rules(ns) == [] for ns in (NET.outside, *NET.containers))


def test_05_a_deleted_pod_is_unreachable_at_once(lab, cni):
    """DEL c2 only: its /32 route goes with its veth, so the host answers 'no route' for it."""
    wire(lab, cni)
    cni.delete(NET.name, "c2")
    assert not lab.ns(NET.host).route_get(ip("c2")).found
    result = lab.ns("c1").ping(ip("c2"))
    assert result.outcome is Outcome.ICMP_ERROR, result
    assert result.icmp.source == "10.244.1.1"  # the host's gateway address says so
    assert cni.reservations(NET.name) == [ip("c1"), ip("c3")]
    assert lab.ns("c3").ping(ip("c1")).replied  # the others are untouched


def test_06_check_passes_and_notices_a_removed_route(lab, cni):
    wire(lab, cni)
    for c in NET.containers:
        cni.check(NET.name, c)
    lab.ns("c3").del_route("default", via="10.244.1.1", dev="eth0")
    with pytest.raises(CniError) as failed:
        cni.check(NET.name, "c3")
    assert failed.value.message == (
        "ptp CHECK for 'c3' failed with CNI error 999: Expected Route {Dst:{IP:0.0.0.0 Mask:00000000} GW:<nil>} not found in routing table"
    )


def test_07_del_leaves_nothing_behind(lab, cni):
    lab.build(NET.nodes())
    before = lab_state(lab, ALL, NET.containers)
    cni.attach(NET)
    cni.detach(NET)
    # Unlike the bridge, ptp shares nothing between pods: all goes, but for lo's 127.0.0.1/8,
    # which the kernel added when the loopback plugin brought lo up and keeps while it is down.
    assert differences(before, lab_state(lab, ALL, NET.containers), ("before", "after")) == [
        f"{c} addresses: only in after: lo 127.0.0.1/8 scope host" for c in NET.containers
    ]
    assert cni.reservations(NET.name) == []
    assert cni.nat_rules() == []


def test_08_a_second_del_is_harmless(lab, cni):
    wire(lab, cni)
    cni.detach(NET)
    after_first = lab_state(lab, ALL, NET.containers)
    cni.detach(NET)
    assert differences(after_first, lab_state(lab, ALL, NET.containers)) == []
    assert cni.reservations(NET.name) == [] and cni.nat_rules() == []
