"""A kind cluster as kindnet wires it: three nodes on one node network, three pods on each.

      host: kind 172.18.0.1/16 (the "kind" Docker network, a Linux bridge)
        |-- veth-node1 <-- veth --> node1: eth0 172.18.0.2/16
        |-- veth-node2 <-- veth --> node2: eth0 172.18.0.3/16
        `-- veth-node3 <-- veth --> node3: eth0 172.18.0.4/16

      node1 (pod CIDR 10.244.1.0/24, ip_forward=1)            node2, node3 alike
        veth-pod1 10.244.1.1/32 <-- veth --> pod1-1: eth0 10.244.1.2/32
        veth-pod2 10.244.1.1/32 <-- veth --> pod1-2: eth0 10.244.1.3/32
        veth-pod3 10.244.1.1/32 <-- veth --> pod1-3: eth0 10.244.1.4/32
        10.244.1.2/32 dev veth-pod1 ...           one route per pod
        10.244.2.0/24 via 172.18.0.3 dev eth0     one route per other node's pods
        10.244.3.0/24 via 172.18.0.4 dev eth0
      every pod: default via 10.244.N.1 dev eth0 onlink

A pod reaches a pod of its own node through the node (scenarios/test_per_pod_routes.py),
and a pod of another node through both nodes: up its veth, out of its node's
eth0 to the other node's address across the kind bridge, down the other pod's
veth. The expectations are stated as reachability matrices (which pairs must
reach, which must not); a wrong cell names its cause and the probe that shows it.
"""

from __future__ import annotations

from nslab import Cause, Outcome, Where
from nslab.lab.reachability import Reachability
from nslab.lab.sweep import all_pairs
from nslab.tutorials.cluster import (
    cluster,
    gateway,
    node_address,
    node_address6,
    node_of,
    pod,
    pod_address,
    pod_address6,
    pod_cidr6,
    pod_veth,
    pods,
    route_hint,
)

NODES, PODS = 3, 3


def on(n: int) -> list[str]:
    """The pods of node n."""
    return [pod(n, p) for p in range(1, PODS + 1)]


def kindnet(lab):
    """$ kind create cluster --config three-nodes.yaml   (kindnet adds the routes)"""
    lab.build(cluster(NODES, PODS))
    return lab


def test_01_each_node_has_a_route_per_pod_and_per_other_node(lab):
    # $ ip -n node1 route
    kindnet(lab)
    routes = [str(r) for r in lab.ns("node1").routes()]
    assert routes == [
        "10.244.1.2/32 dev veth-pod1 scope link",
        "10.244.1.3/32 dev veth-pod2 scope link",
        "10.244.1.4/32 dev veth-pod3 scope link",
        "10.244.2.0/24 via 172.18.0.3 dev eth0",
        "10.244.3.0/24 via 172.18.0.4 dev eth0",
        "172.18.0.0/16 dev eth0 proto kernel scope link src 172.18.0.2",
    ], routes
    assert lab.ns("node1").route_get(pod_address(2, 3)).via == node_address(2)


def test_02_pod_to_pod_on_one_node(lab):
    kindnet(lab)
    result = lab.ns("pod1-1").ping(pod_address(1, 2))
    assert result.replied, result
    echo = [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")]
    assert echo == [("pod1-1", "eth0", "out"), ("node1", pod_veth(1), "in"), ("node1", pod_veth(2), "out"), ("pod1-2", "eth0", "in")]
    # and every pod of node1 reaches every other, both ways
    Reachability(lab, {name: address for name, address in pods(NODES, PODS).items() if node_of(name) == "node1"}).assert_ok()


def test_03_pod_to_pod_across_nodes(lab):
    kindnet(lab)
    result = lab.ns("pod1-1").ping(pod_address(2, 3))
    assert result.replied, result
    # up pod1-1's veth, out of node1's eth0 (to 172.18.0.3), across the host's bridge, through
    # node2, into pod2-3. In a lab of more than 8 namespaces a probe watches its way's ends (the
    # sender, its node, the target) where the kernel's drop reasons show a loss anywhere else;
    # without them (a kernel before 5.17, no bpftrace) it watches every namespace.
    echo = [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")]
    way = [("pod1-1", "eth0", "out"), ("node1", pod_veth(1), "in"), ("node1", "eth0", "out"), ("host", "veth-node1", "in"),
           ("host", "veth-node2", "out"), ("node2", "eth0", "in"), ("node2", pod_veth(3), "out"), ("pod2-3", "eth0", "in")]
    ends = [hop for hop in way if hop[0] in ("pod1-1", "node1", "pod2-3")]
    assert echo == (ends if result.evidence.drop_reasons is None else way), result.evidence.drop_reasons
    assert result.evidence.delta("node1", "Ip.ForwDatagrams") == 2  # the request out, the reply back in
    # and every pod reaches every pod of every node
    Reachability(lab, pods(NODES, PODS)).assert_ok()


def test_04_a_missing_node_route_cuts_two_nodes_pods_apart(lab):
    # kindnet on node1 never added: ip route add 10.244.3.0/24 via 172.18.0.4
    lab.build(cluster(NODES, PODS, without_routes={(1, 3)}))
    # why, in the explanation: node1 answers "net unreachable", and the route it lacks is named
    result = lab.ns("pod1-1").ping(pod_address(3, 2))
    assert result.outcome is Outcome.ICMP_ERROR and result.cause is Cause.ICMP_UNREACHABLE, result
    assert result.where.ns == "node1" and "net unreachable" in result.explanation
    assert route_hint(lab, result) == "node1 has no route to 10.244.3.0/24 (node3's pods): ip -n node1 route add 10.244.3.0/24 via 172.18.0.4 dev eth0"
    # the other way the request arrives, and the reply stops at node1
    back = lab.ns("pod3-2").ping(pod_address(1, 1))
    assert back.cause is Cause.NO_ANSWER and back.where.ns == "node1", back
    if back.evidence.drop_reasons is None:  # the kernel said where it dropped the reply
        assert "echo reply was dropped in node1" in back.explanation, back
    else:  # the captures saw the reply go into node1 and not out, and node1's table was read
        assert "the echo reply came into node1 on veth-pod1, and node1 has no route to 10.244.3.3" in back.explanation, back
    assert route_hint(lab, back) == route_hint(lab, result)
    # which pairs that cuts apart: node1's pods and node3's, both ways; all the others still reach
    matrix = Reachability(lab, pods(NODES, PODS))
    matrix.expect(on(1), on(3), reach=False).expect(on(3), on(1), reach=False)
    matrix.assert_ok()


def test_05_the_matrix_report_of_a_missing_route(lab):
    # kindnet's promise (every pod reaches every pod) checked against the cluster without the route
    lab.build(cluster(NODES, PODS, without_routes={(1, 3)}))
    report = Reachability(lab, pods(NODES, PODS)).check(hint=route_hint, within=2.0)
    assert (report.correct, report.incorrect) == (72 - 18, 18), report
    text = str(report)
    assert "correct: 54, incorrect: 18" in text and "expected (. reaches, X does not):" in text and "differences" in text
    assert f"probed again with a full ping: {report.reprobed} of 18" in text and report.reprobed >= 1
    for cell in report.wrong:
        assert cell.expected and not cell.observed and {node_of(cell.src), node_of(cell.dst)} == {"node1", "node3"}
        assert cell.reproduce().startswith(f"lab.ns({cell.src!r}).ping({cell.address!r})")
        if cell.result is None:  # the second looks had one deadline; the rest say so
            assert "not probed again" in str(cell)
            continue
        assert cell.where.ns == "node1" and cell.cause in (Cause.ICMP_UNREACHABLE, Cause.NO_ANSWER), cell
        assert "ip -n node1 route add 10.244.3.0/24 via 172.18.0.4 dev eth0" in cell.hint and cell.hint in str(cell)


def test_06_a_node_with_forwarding_off(lab):
    lab.build(cluster(NODES, PODS, forwarding_off={2}))
    matrix = Reachability(lab, pods(NODES, PODS))
    matrix.expect(src=on(2), reach=False).expect(dst=on(2), reach=False)  # node2 forwards nothing, not even between its own pods
    matrix.assert_ok()
    result = lab.ns("pod1-1").ping(pod_address(2, 1))
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("node2", "eth0"), result
    assert "ip_forward=0" in result.explanation
    assert lab.ns("pod2-1").ping(gateway(2)).replied  # node2 itself still answers its pods


def test_07_all_pairs_of_a_larger_cluster(lab):
    # every pod to every other pod: 4 nodes x 12 pods, 48 x 47 ordered pairs
    lab.build(cluster(4, 12))
    sweep = all_pairs({lab.ns(name): address for name, address in pods(4, 12).items()})
    assert sweep.pairs == 48 * 47 and sweep.ok, sweep


# -- the dual-stack twin: `networking: ipFamily: dual` -----------------------------------------
#      kind fc00:f853:ccd:e793::1/64 beside 172.18.0.1/16; nodeN eth0 fc00:f853:ccd:e793::(N+1)/64
#      nodeN pod CIDR fd00:10:244:N::/64 beside 10.244.N.0/24, forwarding IPv6 too
#        veth-podP fd00:10:244:N::1/128 <-- veth --> podN-P: eth0 fd00:10:244:N::(P+1)/128
#        fd00:10:244:M::/64 via fc00:f853:ccd:e793::(M+1) dev eth0
#      every pod: default via fd00:10:244:N::1 dev eth0 onlink, beside IPv4's
def test_08_dual_stack_pods_reach_across_nodes_in_both_families(lab):
    lab.build(cluster(2, 2, dual_stack=True))
    lookup = lab.ns("node1").route_get(pod_address6(2, 1))  # fd00:10:244:2::/64 via fc00:f853:ccd:e793::3 dev eth0
    assert (lookup.via, lookup.dev) == (node_address6(2), "eth0"), lookup
    for dst in (pod_address(2, 2), pod_address6(2, 2)):
        result = lab.ns("pod1-1").ping(dst)
        assert result.replied, result
    echo = [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")]
    assert echo[:3] == [("pod1-1", "eth0", "out"), ("node1", pod_veth(1), "in"), ("node1", "eth0", "out")] and echo[-1] == ("pod2-2", "eth0", "in"), echo
    assert result.evidence.delta("node1", "Ip6.OutForwDatagrams") == 2  # the request out, the reply back in


def test_09_dual_stack_a_missing_ipv6_node_route(lab):
    lab.build(cluster(2, 2, dual_stack=True))
    lab.ns("node1").del_route(pod_cidr6(2))  # kindnet never added it: IPv4 still crosses, IPv6 does not
    assert lab.ns("pod1-1").ping(pod_address(2, 1)).replied
    result = lab.ns("pod1-1").ping(pod_address6(2, 1))
    assert result.outcome is Outcome.ICMP_ERROR and result.icmp.v6 and result.icmp.code == 0, result  # ICMPv6 no route
    assert result.cause is Cause.ICMP_UNREACHABLE and result.where.ns == "node1", result
    assert "ICMPv6 destination unreachable (no route) from fd00:10:244:1::1" in result.explanation


def test_10_dual_stack_a_node_that_does_not_forward_ipv6(lab):
    lab.build(cluster(2, 2, dual_stack=True))
    lab.ns("node2").set_sysctl("net.ipv6.conf.all.forwarding", 0)  # IPv4 forwarding stays on
    assert lab.ns("pod1-1").ping(pod_address(2, 1)).replied
    result = lab.ns("pod1-1").ping(pod_address6(2, 1))
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("node2", "eth0"), result
    assert "net.ipv6.conf.all.forwarding=0" in result.explanation


def test_11_dual_stack_one_matrix_per_family(lab):
    # node1 lacks its IPv6 route to node2's pods: the IPv4 matrix is whole, the IPv6 one cut
    lab.build(cluster(2, 2, dual_stack=True))
    lab.ns("node1").del_route(pod_cidr6(2))
    Reachability(lab, pods(2, 2)).assert_ok()
    matrix = Reachability(lab, pods(2, 2, version=6))
    matrix.expect(on(1)[:2], ["pod2-1", "pod2-2"], reach=False).expect(["pod2-1", "pod2-2"], on(1)[:2], reach=False)
    matrix.assert_ok()
    sweep = all_pairs({lab.ns(name): address for name, address in pods(2, 2, version=6).items()})
    assert (sweep.pairs, sweep.lost) == (12, 8), sweep
