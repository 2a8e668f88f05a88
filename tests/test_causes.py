"""One broken lab per cause: the probe's outcome, its structured cause, and the
namespace and interface the evidence names.

      ns1 v1 10.0.0.1/24 ---- v2 10.0.0.2/24 ns2          (the base lab)
"""

from __future__ import annotations

import shutil

import pytest

from nslab import Address, Bridge, Cause, Namespace, Outcome, Route, Topology, Veth, Where
from nslab.kernel.process import wait_until
from nslab.tutorials.catalog import LABS

BASE = dict(
    namespaces=["ns1", "ns2"],
    veths=[Veth("ns1", "v1", "ns2", "v2")],
    addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")],
)

# host with an uplink to a LAN, a default route via a gateway that does not
# forward, and a container reachable only through a host route:
#   lan eth0 10.0.0.1 --- enp0s8 10.0.0.10 [host] veth1 --- ceth1 172.16.0.2 [container1]
# (tutorial 002's lab from nslab's catalog, without its routes)
_T002 = LABS["host-to-container"].topology
HOST_AND_CONTAINER = dict(namespaces=_T002.namespaces, veths=_T002.veths, addresses=_T002.addresses)


def test_no_route_at_sender(make_lab):
    lab = make_lab(Topology(**BASE))
    result = lab.ns("ns1").ping("192.0.2.7")
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH"
    assert result.cause is Cause.NO_ROUTE_AT_SENDER
    assert result.elapsed < 0.1 and not result.evidence.sightings  # refused before anything left
    assert "ns1 has no route to 192.0.2.7" in result.explanation


def test_left_by_the_default_route_and_never_arrived(make_lab):
    lab = make_lab(Topology(**HOST_AND_CONTAINER, routes=[Route("host", "default", via="10.0.0.1")]))
    result = lab.ns("host").ping("172.16.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.LOST_VIA_DEFAULT_ROUTE
    ev = result.evidence
    assert ev.sender_route.via == "10.0.0.1" and ev.sender_route.dev == "enp0s8"
    assert [(s.ns, s.dev, s.direction) for s in ev.seen(kind="echo-request")] == [("host", "enp0s8", "out"), ("lan", "eth0", "in")]
    assert ev.delta("lan", "Ip.InAddrErrors") == 1  # lan does not forward (ip_forward=0)
    assert not ev.seen(ns="container1")
    assert "lan" in result.explanation and "default route" in result.explanation


def test_a_link_down_under_the_specific_route_is_blamed_not_the_route(make_lab):
    """host's route to the container goes by veth1: with veth1 down the kernel drops that route,
    and the default route takes the packet to lan. The link is what to change."""
    lab = make_lab(LABS["host-to-container"].topology)
    host = lab.ns("host")
    host.run(["ip", "link", "set", "veth1", "down"], check=True)
    result = host.ping("172.16.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.cause is Cause.LOST_VIA_DEFAULT_ROUTE, result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("host", "link veth1", "down")]
    assert "the lab's route 172.16.0.0/24 dev veth1 goes by veth1, which is down" in result.explanation
    host.run(["sh", "-c", result.remedies[0].command], check=True)
    wait_until(lambda: host.ping("172.16.0.2").replied, 5.0, "host's ping through with veth1 up")  # linkwatch may make veth1 UP up to a second later


def test_an_unreachable_route_in_the_local_table_answers_for_itself(make_lab):
    """node2's local table refuses the pod (host unreachable). The early verdict watches the
    namespaces the lab routes the probe through, node2 not among them: node2's kernel is asked
    by destination alone (an output lookup from pod1-1's source, which node2 does not hold,
    answers ENETUNREACH, and the why blamed a route missing from table main)."""
    lab = make_lab(LABS["kind-cluster"].topology)
    lab.ns("node2").run(["ip", "route", "replace", "unreachable", "10.244.2.2", "table", "local"], check=True)
    result = lab.ns("pod1-1").ping("10.244.2.2")
    assert result.outcome is Outcome.ICMP_ERROR and result.cause is Cause.ICMP_UNREACHABLE, result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("node2", "route 10.244.2.2 table local", "unreachable")]


def test_arp_ignore_2_answers_only_a_sender_in_the_targets_subnet(make_lab):
    """host asks for 172.16.0.2 from 10.0.0.10 (its only address; veth1 has none): with
    arp_ignore=2 container1 answers only a sender in 172.16.0.0/24."""
    lab = make_lab(LABS["host-to-container"].topology)
    lab.ns("container1").set_sysctl("net.ipv4.conf.ceth1.arp_ignore", 2)
    result = lab.ns("host").ping("172.16.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.where == Where("container1", "ceth1"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("container1", "sysctl net.ipv4.conf.ceth1.arp_ignore", "2")]
    assert "answers only a sender in the subnet of 172.16.0.2 on ceth1, and the request came from 10.0.0.10" in result.explanation


def test_a_second_probe_during_an_unanswered_resolution_says_why_it_sent_none(make_lab):
    """The second ping meets ns1's entry for 10.0.0.99 still INCOMPLETE: the kernel sends no new
    request until its timer fires. The why says so, and still why the first went unanswered."""
    lab = make_lab(Topology(**BASE))
    ns1 = lab.ns("ns1")
    ns1.set_sysctl("net.ipv4.neigh.v1.retrans_time_ms", 5000)  # no second request while the second probe waits, however slow the machine
    first, second = ns1.ping("10.0.0.99"), ns1.ping("10.0.0.99")
    assert first.cause is Cause.NO_ARP_ANSWER and second.cause is Cause.NO_ARP_ANSWER, (first, second)
    assert second.evidence.seen(kind="arp-request") == [] and "its entry for 10.0.0.99 now INCOMPLETE" in second.explanation, second
    assert "reaches ns2 (v2), and none of them holds 10.0.0.99" in second.explanation


def test_a_probe_that_meets_an_earlier_resolution_claims_nothing_of_it(make_lab):
    """ns2 gets its address back while ns1 still resolves it for the first probe: the second
    probe sends nothing, and the why says so without judging the earlier request by today's state."""
    lab = make_lab(Topology(**BASE))
    ns1, ns2 = lab.ns("ns1"), lab.ns("ns2")
    ns1.set_sysctl("net.ipv4.neigh.v1.retrans_time_ms", 5000)  # no second request while the second probe waits, however slow the machine
    ns2.run(["ip", "addr", "del", "10.0.0.2/24", "dev", "v2"], check=True)
    assert ns1.ping("10.0.0.2").cause is Cause.NO_ARP_ANSWER
    ns2.run(["ip", "addr", "add", "10.0.0.2/24", "dev", "v2"], check=True)
    second = ns1.ping("10.0.0.2")
    assert second.cause is Cause.NO_ARP_ANSWER and second.evidence.seen(kind="arp-request") == [], second
    assert "ns2 holds 10.0.0.2 on v2, wired to that segment now: probe again" in second.explanation and not second.claims


def test_link_down_at_the_far_end(make_lab):
    lab = make_lab(Topology(**{**BASE, "veths": [Veth("ns1", "v1", "ns2", "v2", peer_up=False)]}))
    result = lab.ns("ns1").ping("10.0.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early
    assert result.cause is Cause.LINK_DOWN
    assert result.evidence.link("ns1", "v1").state == "NO-CARRIER"
    assert "v2 in ns2 is down" in result.explanation


def test_link_down_at_the_near_end(make_lab):
    lab = make_lab(Topology(**{**BASE, "veths": [Veth("ns1", "v1", "ns2", "v2", up=False)]}))
    result = lab.ns("ns1").ping("10.0.0.2")
    # an interface that is down takes its connected route with it
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH"
    assert result.cause is Cause.LINK_DOWN
    assert "because v1 is down" in result.explanation


def test_no_arp_answer_wrong_subnet(make_lab):
    # ns2 has an address in another subnet: nobody on the wire has 10.0.0.2
    addresses = [Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.1.2/24")]
    lab = make_lab(Topology(**{**BASE, "addresses": addresses}))
    result = lab.ns("ns1").ping("10.0.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_ARP_ANSWER
    assert lab.ns("ns1").neighbour("10.0.0.2").state in ("INCOMPLETE", "FAILED")
    assert "ns1's v1" in result.explanation and "ns2" in result.explanation


def test_arp_probe_unanswered(make_lab):
    lab = make_lab(Topology(**BASE))
    result = lab.ns("ns1").arp("10.0.0.99", dev="v1")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early
    assert result.cause is Cause.NO_ARP_ANSWER
    assert [(s.ns, s.dev) for s in result.evidence.seen(kind="arp-request", direction="in")] == [("ns2", "v2")]


def test_arrived_but_no_route_back(make_lab):
    lab = make_lab(Topology(**HOST_AND_CONTAINER, routes=[Route("host", "172.16.0.0/24", dev="veth1")]))
    result = lab.ns("host").ping("172.16.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_RETURN_ROUTE
    ev = result.evidence
    assert ev.request_src == "10.0.0.10"
    assert ev.seen(ns="container1", direction="in", kind="echo-request")[0].dev == "ceth1"
    assert ev.delta("container1", "Icmp.InEchos") == 1 and ev.delta("container1", "Icmp.OutEchoReps") == 0
    assert ev.return_route.errno is not None  # the kernel's own lookup fails
    assert result.explanation == "the echo request reached container1 on ceth1, but container1 has no route back to 10.0.0.10"


ROUTER_WITHOUT_A_ROUTE = {
    4: ("10.1.0.2/24", "10.1.0.1/24", "default", "10.3.0.9", {"net.ipv4.ip_forward": 1}, "Icmp.OutDestUnreachs unchanged"),
    6: ("fd00:1::2/64", "fd00:1::1/64", "::/0", "fd00:3::9", {"net.ipv6.conf.all.forwarding": 1}, "Icmp6.OutDestUnreachs and Icmp6.OutPktTooBigs unchanged"),
}


@pytest.mark.parametrize("version", [4, 6])
def test_a_request_dropped_for_want_of_a_route_settles_once_no_error_left(make_lab, version):
    """ns1 -- r, which forwards and has no route to DST, and whose budget of ICMP errors
    (net.ipv4.icmp_msgs_per_sec and _burst, IPv6's too) is 0: it drops the request
    (IP_INNOROUTES) and holds its error back. Only the drop and r's ICMP out counters,
    unchanged, say that nothing will come: the verdict settles on them, and agrees with
    the full wait. With a budget, the error comes, and the probe waits for it."""
    mine, its, default, dst, forwards, unchanged = ROUTER_WITHOUT_A_ROUTE[version]
    no_budget = {"net.ipv4.icmp_msgs_per_sec": 0, "net.ipv4.icmp_msgs_burst": 0}
    lab = make_lab(Topology(
        [Namespace("ns1"), Namespace("r", sysctls={**forwards, **no_budget})],
        veths=[Veth("ns1", "v1", "r", "v2")],
        addresses=[Address("ns1", "v1", mine), Address("r", "v2", its)],
        routes=[Route("ns1", default, via=its.split("/")[0])],
    ))  # fmt: skip
    early = lab.ns("ns1").ping(dst)
    _with_drop_reasons(early)
    assert early.outcome is Outcome.TIMEOUT and early.decided_early and early.elapsed < 0.5, early
    assert (early.cause, early.where, early.reason) == (Cause.NO_ANSWER, Where("r", "v2"), "IP_INNOROUTES"), early
    assert early.evidence.settled_by.endswith(f"and r sent no ICMP error about it ({unchanged})"), early.evidence.settled_by
    assert "r has no route to " + dst in early.explanation and not any(c.blames and c.ns == "ns1" for c in early.claims), early
    lab.settle_early = False
    truth = lab.ns("ns1").ping(dst)
    _with_drop_reasons(truth)
    assert not truth.decided_early and (truth.outcome, truth.cause, truth.where, truth.reason) == (early.outcome, early.cause, early.where, early.reason), truth
    assert truth.explanation == early.explanation
    lab.settle_early = True
    r = lab.ns("r")
    r.set_sysctl("net.ipv4.icmp_msgs_per_sec", 1000)
    r.set_sysctl("net.ipv4.icmp_msgs_burst", 50)
    answered = lab.ns("ns1").ping(dst)
    assert answered.outcome is Outcome.ICMP_ERROR and answered.cause is Cause.ICMP_UNREACHABLE and answered.where.ns == "r", answered


def test_an_ipv6_router_without_a_route_is_blamed_not_the_senders_default_route(make_lab):
    """ns1 sends by its default route (::/0, which `ip -6 route` prints as `default`) to r,
    which forwards IPv6 (IPv4 not) and has no route on; r holds its error back (no ICMP budget).
    r's missing route is the cause, as in IPv4: ns1 lacks nothing, its default route is there."""
    mine, its, default, dst, forwards, _ = ROUTER_WITHOUT_A_ROUTE[6]
    lab = make_lab(Topology(
        [Namespace("ns1"), Namespace("r", sysctls={**forwards, "net.ipv4.icmp_msgs_per_sec": 0, "net.ipv4.icmp_msgs_burst": 0})],
        veths=[Veth("ns1", "v1", "r", "v2")],
        addresses=[Address("ns1", "v1", mine), Address("r", "v2", its)],
        routes=[Route("ns1", default, via=its.split("/")[0])],
    ))  # fmt: skip
    lab.settle_early = False
    result = lab.ns("ns1").ping(dst)
    _with_drop_reasons(result)
    assert (result.outcome, result.cause, result.where, result.reason) == (Outcome.TIMEOUT, Cause.NO_ANSWER, Where("r", "v2"), "IP_INNOROUTES"), result
    assert "::/0" not in result.explanation and not any(c.blames and c.ns == "ns1" for c in result.claims), result


def test_tcp_port_closed_is_a_reset(make_lab):
    lab = make_lab(Topology(**BASE))
    result = lab.ns("ns1").connect("10.0.0.2", 8080)
    assert result.outcome is Outcome.REFUSED and result.errno_name == "ECONNREFUSED"
    assert result.cause is Cause.PORT_CLOSED
    assert result.evidence.seen(ns="ns2", direction="out", kind="tcp")  # the RST left ns2


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian package nftables) is not installed")
def test_tcp_port_filtered_is_silence(make_lab):
    lab = make_lab(Topology(**BASE))
    ns2 = lab.ns("ns2")
    ns2.listen(8080)
    rules = "table inet filter {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 8080 drop\n }\n}\n"
    ns2.run(["nft", "-f", "-"], input=rules.encode(), check=True)
    result = lab.ns("ns1").connect("10.0.0.2", 8080, timeout=0.3)
    assert result.outcome is Outcome.TIMEOUT
    assert result.evidence.seen(ns="ns2", direction="in", kind="tcp")[0].dev == "v2"
    if result.evidence.drop_reasons is None:  # the kernel said why: a netfilter drop, in ns2, on v2
        assert result.decided_early and result.cause is Cause.FILTERED_BY_RULE, result
        assert result.where == Where("ns2", "v2") and result.reason == "NETFILTER_DROP"
    else:  # without drop reasons nothing proves the silence early: the full deadline
        assert not result.decided_early and result.cause is Cause.NO_ANSWER, result
        assert "reached ns2 on v2" in result.explanation


def _with_drop_reasons(result):
    if result.evidence.drop_reasons is not None:
        pytest.skip(f"the kernel's drop reasons cannot be read here: {result.evidence.drop_reasons}")


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian package nftables) is not installed")
def test_a_netdev_egress_chain_that_drops_the_answer_is_named(make_lab):
    lab = make_lab(Topology(**BASE))
    ns2 = lab.ns("ns2")
    ns2.listen(8080)
    rules = "table netdev t {\n chain e {\n  type filter hook egress device v2 priority 0;\n  tcp sport 8080 drop\n }\n}\n"
    ns2.run(["nft", "-f", "-"], input=rules.encode(), check=True)
    result = lab.ns("ns1").connect("10.0.0.2", 8080, timeout=0.3)
    _with_drop_reasons(result)
    assert result.cause is Cause.FILTERED_BY_RULE and result.reason == "NETFILTER_DROP", result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("ns2", "nft netdev t e", "tcp sport 8080 drop")]


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian package nftables) is not installed")
def test_a_bridge_postrouting_chain_that_drops_the_request_is_named(make_lab):
    topo = Topology(
        ["host", "c1", "c2"],
        bridges=[Bridge("host", "br0")],
        veths=[Veth("c1", "eth0", "host", "veth1", peer_master="br0"), Veth("c2", "eth0", "host", "veth2", peer_master="br0")],
        addresses=[Address("c1", "eth0", "172.17.0.2/24"), Address("c2", "eth0", "172.17.0.3/24")],
    )
    lab = make_lab(topo)
    rules = "table bridge t {\n chain post {\n  type filter hook postrouting priority 0;\n  meta l4proto icmp drop\n }\n}\n"
    lab.ns("host").run(["nft", "-f", "-"], input=rules.encode(), check=True)
    result = lab.ns("c1").ping("172.17.0.3")
    _with_drop_reasons(result)
    assert result.cause is Cause.FILTERED_BY_RULE and result.reason == "NETFILTER_DROP", result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("host", "nft bridge t post", "meta l4proto icmp drop")]


def test_an_address_taken_onto_a_loopback_that_is_down(make_lab):
    """ns1 holds ns2's address on lo, and lo is down: the echo request is queued on lo, whose
    queue drops everything (QDISC_DROP, not congestion); the address is what the lab does not give ns1."""
    lab = make_lab(Topology(**BASE))
    ns1 = lab.ns("ns1")
    ns1.run(["ip", "addr", "add", "10.0.0.2/32", "dev", "lo"], check=True)
    result = ns1.ping("10.0.0.2")
    _with_drop_reasons(result)
    assert result.reason == "QDISC_DROP" and result.where == Where("ns1", "lo"), result
    assert [(c.ns, c.obj, c.value, c.blames) for c in result.claims] == [("ns1", "address 10.0.0.2/32 dev lo", "present", True), ("ns1", "link lo", "down", False)]
    ns1.run(["sh", "-c", result.remedies[0].command], check=True)
    assert ns1.ping("10.0.0.2").replied


def test_loopback_down(make_lab):
    lab = make_lab(Topology([Namespace("blue_ns")]))
    result = lab.ns("blue_ns").ping("127.0.0.1")
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH"
    assert result.cause is Cause.LOOPBACK_DOWN
    assert "lo is down in blue_ns" in result.explanation


def test_success_has_no_cause(make_lab):
    lab = make_lab(Topology(**BASE))
    result = lab.ns("ns1").ping("10.0.0.2")
    assert result.replied and result.cause is None
    assert [(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-reply")] == [("ns2", "v2", "out"), ("ns1", "v1", "in")]


def test_bridge_down_on_the_way(make_lab):
    # c1 eth0 --- veth1 [host: br0, down] veth2 --- eth0 c2
    topo = Topology(
        ["host", "c1", "c2"],
        bridges=[Bridge("host", "br0", up=False)],
        veths=[Veth("c1", "eth0", "host", "veth1", peer_master="br0"), Veth("c2", "eth0", "host", "veth2", peer_master="br0")],
        addresses=[Address("c1", "eth0", "172.17.0.2/24"), Address("c2", "eth0", "172.17.0.3/24")],
    )
    result = make_lab(topo).ns("c1").ping("172.17.0.3")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early
    assert result.cause is Cause.LINK_DOWN
    assert "bridge br0 in host, which is down" in result.explanation
