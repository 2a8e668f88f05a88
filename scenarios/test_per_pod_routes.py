"""Tutorial 003 "VETH Encore", a kind worker node (kindnet): no bridge, a /32 route per pod.

      node (kind-worker's root namespace, played by a lab namespace)
        veth09e8e743 10.244.3.1/32 <-- veth --> pod1: eth0 10.244.3.2/32
        veth8a50c639 10.244.3.1/32 <-- veth --> pod2: eth0 10.244.3.3/32
        vethca880bcd 10.244.3.1/32 <-- veth --> pod3: eth0 10.244.3.4/32
        10.244.3.2/32 dev veth09e8e743   (one route per pod)
        10.244.3.3/32 dev veth8a50c639
        10.244.3.4/32 dev vethca880bcd
      every pod: default via 10.244.3.1 dev eth0 onlink

Every host-side veth carries the same address, 10.244.3.1/32, as in the
tutorial's `ip address | grep "inet "`. A pod has nothing on-link but that
gateway, so pod-to-pod traffic goes up its veth to the node, which routes it
down the other pod's veth: it works only while the node forwards
(net.ipv4.ip_forward=1).
"""

from __future__ import annotations

from nslab import Address, Cause, Namespace, Outcome, Route, Topology, Veth, Where

GATEWAY = "10.244.3.1"
VETHS = ["veth09e8e743", "veth8a50c639", "vethca880bcd"]


def pod(i: int) -> str:
    return f"pod{i}"


def address(i: int) -> str:
    return f"10.244.3.{i + 1}"


def kind_worker(*, ip_forward: int) -> Topology:
    """per pod i: ip link add VETH type veth peer name eth0 netns podI ; ip addr add 10.244.3.1/32 dev VETH ;
    ip route add 10.244.3.(I+1)/32 dev VETH ; ip -n podI addr add 10.244.3.(I+1)/32 dev eth0 ;
    ip -n podI route add default via 10.244.3.1 dev eth0 onlink"""
    pods = range(1, len(VETHS) + 1)
    return Topology(
        [Namespace("node", sysctls={"net.ipv4.ip_forward": ip_forward})] + [Namespace(pod(i)) for i in pods],
        veths=[Veth("node", VETHS[i - 1], pod(i), "eth0") for i in pods],
        addresses=[Address("node", VETHS[i - 1], f"{GATEWAY}/32") for i in pods] + [Address(pod(i), "eth0", f"{address(i)}/32") for i in pods],
        routes=[Route("node", f"{address(i)}/32", dev=VETHS[i - 1]) for i in pods]
        + [Route(pod(i), "default", via=GATEWAY, dev="eth0", onlink=True) for i in pods],
    )


def test_01_every_host_veth_carries_the_same_address(lab):
    # $ ip address | grep "inet "
    lab.build(kind_worker(ip_forward=1))
    node = lab.ns("node")
    assert sorted((a.cidr, a.dev) for a in node.addresses(version=4) if a.dev != "lo") == sorted((f"{GATEWAY}/32", v) for v in VETHS)
    # and each pod's address has its own route, to its own veth
    assert [str(r) for r in node.routes()] == [f"{address(i)}/32 dev {veth} scope link" for i, veth in enumerate(VETHS, start=1)]
    for i, veth in enumerate(VETHS, start=1):
        assert node.route_get(address(i)).dev == veth


def test_02_a_pod_routes_everything_via_10_244_3_1_onlink(lab):
    lab.build(kind_worker(ip_forward=1))
    p1 = lab.ns("pod1")
    assert "default via 10.244.3.1 dev eth0 onlink" in [str(r) for r in p1.routes()]
    lookup = p1.route_get(address(2))
    assert (lookup.via, lookup.dev, lookup.src) == (GATEWAY, "eth0", address(1))
    # the gateway answers ARP on every pod's link: each veth holds 10.244.3.1
    for i, veth in enumerate(VETHS, start=1):
        assert lab.ns(pod(i)).arp(GATEWAY, dev="eth0").mac == lab.ns("node").link(veth).mac


def test_03_pod_to_pod_through_the_node(lab):
    lab.build(kind_worker(ip_forward=1))
    result = lab.ns("pod1").ping(address(2))
    assert result.replied, result
    echo = [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")]
    assert echo == [("pod1", "eth0", "out"), ("node", VETHS[0], "in"), ("node", VETHS[1], "out"), ("pod2", "eth0", "in")]
    assert result.evidence.delta("node", "Ip.ForwDatagrams") == 2  # the request and the reply


def test_04_every_pod_reaches_every_other_and_the_node(lab):
    lab.build(kind_worker(ip_forward=1))
    for i in range(1, len(VETHS) + 1):
        for j in range(1, len(VETHS) + 1):
            if i != j:
                assert lab.ns(pod(i)).ping(address(j)).replied
        assert lab.ns(pod(i)).ping(GATEWAY).replied
        assert lab.ns("node").ping(address(i)).replied


def test_05_without_ip_forward_pod_to_pod_stops_at_the_node(lab):
    lab.build(kind_worker(ip_forward=0))
    result = lab.ns("pod1").ping(address(2))
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("node", VETHS[0]), result
    assert "ip_forward=0" in result.explanation
    # where it stopped: in on the node's first veth, never out of the second
    echo = [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")]
    assert echo == [("pod1", "eth0", "out"), ("node", VETHS[0], "in")]
    assert result.evidence.delta("node", "Ip.InAddrErrors") == 1
    # the node itself is still reachable: only forwarding is off
    assert lab.ns("pod1").ping(GATEWAY).replied


def test_06_turning_ip_forward_on_repairs_it(lab):
    # $ sysctl -w net.ipv4.ip_forward=1
    lab.build(kind_worker(ip_forward=0))
    p1 = lab.ns("pod1")
    assert not p1.ping(address(2)).replied
    lab.ns("node").set_sysctl("net.ipv4.ip_forward", 1)
    assert p1.ping(address(2)).replied
