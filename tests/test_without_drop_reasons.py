"""Where the kernel gives no drop reasons (before Linux 5.17, as Debian's 5.10, or
without bpftrace), a lab larger than a probe's usual watch is watched whole, and a
silence is placed where the captures lost the packet, with what is read there.

The cluster is 3 nodes of 3 pods (12 namespaces, more than a probe watches when the
kernel names its drops); the drop monitor is replaced by one that has no reasons.
"""

from __future__ import annotations

import pytest

from nslab import Cause, Claim, Where
from nslab.kernel.process import wait_until
from nslab.tutorials.cluster import cluster, gateway, pod_address, pod_address6


class NoReasons:
    """A drop monitor on a kernel without drop reasons."""

    available = False
    why = "kernel lacks drop reasons: its skb:kfree_skb tracepoint has no reason field (Linux 5.17 added it)"

    def ready(self, timeout: float = 0.0) -> bool:
        return False


@pytest.fixture(autouse=True)
def no_reasons(monkeypatch):
    monkeypatch.setattr("nslab.diagnosis.watch.drop_source.monitor", NoReasons)


def test_a_node_that_does_not_forward_is_named_from_its_sysctl(lab):
    lab.build(cluster(3, 3, forwarding_off={2}))
    result = lab.ns("pod1-1").ping(pod_address(2, 1), timeout=0.3)
    assert result.evidence.drop_reasons == NoReasons.why
    assert (result.cause, result.where) == (Cause.FORWARDING_OFF, Where("node2", "eth0")), result
    # early from node2's InAddrErrors counter when nothing else arrived there, else at the deadline
    assert "net.ipv4.ip_forward=0" in result.explanation and "node2" in result.explanation, result
    assert ("node2", "eth0", "in") in [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")]  # watched, though off the way's ends


def test_an_answer_lost_at_a_node_without_the_route_is_placed_there(lab):
    lab.build(cluster(3, 3, without_routes={(1, 3)}))
    result = lab.ns("pod3-2").ping(pod_address(1, 1), timeout=0.3)
    assert (result.cause, result.where) == (Cause.NO_ANSWER, Where("node1", "veth-pod1")), result
    assert "echo reply came into node1 on veth-pod1, and node1 has no route to 10.244.3.3" in result.explanation, result
    assert Claim("node1", "route 10.244.3.3 table main", "no route", blames=True) in result.claims, result.claims


def test_a_node_that_does_not_forward_ipv6_is_named_while_other_packets_arrive_there(lab):
    """IPv6's route lookup on the way in does not refuse where forwarding is off: ip6_forward
    checks net.ipv6.conf.all.forwarding after it, and the walk reads that sysctl there. Packets
    entering node2 meanwhile (pod2-1 pinging it) keep its counters from deciding, as MLD reports
    did in a TCG guest of the matrix, whose why then said the way let the request through."""
    lab.build(cluster(2, 2, dual_stack=True))
    lab.ns("node2").set_sysctl("net.ipv6.conf.all.forwarding", 0)  # IPv4 forwarding stays on
    noise = lab.ns("pod2-1").spawn(["ping", "-q", "-i", "0.001", gateway(2)])
    wait_until(lambda: lab.ns("pod2-1").neighbour(gateway(2)) is not None, 5.0, "pod2-1 pinging node2")
    result = lab.ns("pod1-1").ping(pod_address6(2, 1), timeout=0.3)
    noise.stop()
    assert (result.cause, result.where) == (Cause.FORWARDING_OFF, Where("node2", "eth0")), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("node2", "sysctl net.ipv6.conf.all.forwarding", "0")], result.claims


def test_an_answer_lost_in_the_sender_is_named_as_the_answer(lab):
    """The echo reply dropped by pod1-1's own prerouting chain: without drop reasons the cause stays
    unknown, but the packet last seen is the reply, entering pod1-1, and the why says so (it said
    the request was last seen there: soundness --generated 80 --seed 11 without drop reasons, case 22)."""
    lab.build(cluster(2, 2))
    rules = "table ip t {\n chain pre { type filter hook prerouting priority 0; icmp type echo-reply drop; }\n}\n"
    lab.ns("pod1-1").run(["nft", "-f", "-"], input=rules.encode(), check=True)
    result = lab.ns("pod1-1").ping(pod_address(2, 1), timeout=0.3)
    assert (result.cause, result.where) == (Cause.NO_ANSWER, Where("pod1-1", "eth0")), result
    assert "the echo reply was last seen entering pod1-1 on eth0" in result.explanation, result.explanation
    assert ("pod1-1", "nft ip t pre", "icmp type echo-reply drop") in [(c.ns, c.obj, c.value) for c in result.claims], result.claims


def test_a_syn_that_never_left_its_sender_is_said_so_with_the_chains_on_its_way_out(lab):
    """pod1-1's own output chain drops everything: the captures never see the SYN leave, and the
    why says so and names the chains a packet made there passes (it said only that the way let
    it through: soundness --generated 200 --seed 29 without drop reasons, case 122)."""
    lab.build(cluster(2, 2))
    lab.ns("pod1-2").listen(8080)
    rules = "table ip t {\n chain out { type filter hook output priority 0; policy drop; }\n}\n"
    lab.ns("pod1-1").run(["nft", "-f", "-"], input=rules.encode(), check=True)
    result = lab.ns("pod1-1").connect(pod_address(1, 2), 8080, timeout=0.3)
    assert result.cause is Cause.NO_ANSWER and result.where == Where("pod1-1", "eth0"), result
    assert "the captures never saw it leave pod1-1 (by eth0); chains there that can drop it: table ip t, chain out: policy drop" in result.explanation, result.explanation
    assert [(c.ns, c.obj, c.value) for c in result.claims] == [("pod1-1", "nft ip t out", "policy drop")], result.claims
