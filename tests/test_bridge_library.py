"""The library pieces the bridge scenarios rest on: FDB and ARP-cache
read-back and flush, ethtool statistics, and the all-pairs sweep, including
how it reports a pair that fails."""

from __future__ import annotations

import errno

import pytest

from nslab import Address, Bridge, Cause, Namespace, Route, Topology, Veth
from nslab.lab.sweep import all_pairs, ping_pairs


def bridge_with(n: int, *, cut: int | None = None) -> Topology:
    """host: br0 10.9.0.1/24 with ports p1..pN to c1..cN (10.9.0.(i+1)); port p<cut> not in br0."""
    return Topology(
        [Namespace("host")] + [Namespace(f"c{i}") for i in range(1, n + 1)],
        veths=[Veth("host", f"p{i}", f"c{i}", "eth0", master=None if i == cut else "br0") for i in range(1, n + 1)],
        bridges=[Bridge("host", "br0")],
        addresses=[Address("host", "br0", "10.9.0.1/24")] + [Address(f"c{i}", "eth0", f"10.9.0.{i + 1}/24") for i in range(1, n + 1)],
    )


def test_flush_neighbours_forgets_learnt_entries_only(lab):
    lab.build(bridge_with(2))
    c1 = lab.ns("c1")
    assert c1.ping("10.9.0.3").replied and c1.ping("10.9.0.1").replied
    assert {n.dst for n in c1.neighbours()} == {"10.9.0.3", "10.9.0.1"}
    c1.flush_neighbours()
    assert c1.neighbours() == []
    c1.flush_neighbours()  # nothing left: a no-op
    assert c1.ping("10.9.0.3").replied  # and resolution starts over


def test_fdb_lists_learnt_macs_per_port_and_the_ports_own(lab):
    lab.build(bridge_with(2))
    host = lab.ns("host")
    assert lab.ns("c1").ping("10.9.0.3").replied
    fdb = host.fdb("br0")
    own = {e.mac for e in fdb if e.permanent and e.master == "br0"}
    assert {host.link("p1").mac, host.link("p2").mac} <= own
    learnt = {e.mac: e.dev for e in fdb if not e.permanent}
    assert learnt[lab.ns("c1").link("eth0").mac] == "p1" and learnt[lab.ns("c2").link("eth0").mac] == "p2"
    assert host.fdb("no-such-bridge") == []


def test_ethtool_stats_of_a_missing_interface_names_it(lab):
    lab.build(bridge_with(1))
    with pytest.raises(OSError) as exc:
        lab.ns("host").ethtool_stats("p9")
    assert exc.value.errno == errno.ENODEV and "ethtool -S p9" in str(exc.value)
    assert lab.ns("host").ethtool_stats("br0") == {}  # a bridge has no driver statistics


def test_sweep_reports_and_explains_a_pair_that_fails(lab):
    lab.build(bridge_with(3, cut=3))
    c = {i: lab.ns(f"c{i}") for i in (1, 2, 3)}
    sweep = ping_pairs([(c[1], "10.9.0.3"), (c[1], "10.9.0.4"), (c[2], "10.9.0.2")], timeout=0.5)
    assert (sweep.pairs, sweep.replied) == (3, 2) and not sweep.ok
    assert sweep.failures == [("c1", "10.9.0.4")]  # c3 is behind p3, which is not in br0
    (explained,) = sweep.explained
    assert explained.cause is Cause.NOT_ON_BRIDGE, explained
    assert "p3" in str(sweep) and "c1 -> 10.9.0.4" in str(sweep)


def test_all_pairs_covers_every_ordered_pair(lab):
    lab.build(bridge_with(4))
    sweep = all_pairs({lab.ns(f"c{i}"): f"10.9.0.{i + 1}" for i in range(1, 5)}, per_round=3)
    assert sweep.ok and (sweep.pairs, sweep.replied) == (12, 12), sweep
    assert all(ns.neighbours() == [] for ns in lab.namespaces if ns.name != "host")  # flushed after the last round
    with pytest.raises(ValueError, match="per_round=0"):
        all_pairs({}, per_round=0)


def test_a_pair_whose_requests_were_lost_is_asked_again_and_one_silent_twice_fails(lab):
    """A round can lose requests to its own congestion (seen under QEMU's TCG: a
    CPU's backlog overflowing with ARP floods); asked again in a round of its own,
    such a pair answers. Here nftables drops c1's first request to 10.9.0.3 and
    its in-round resend (both sequence number 1), and every one to 10.9.0.4."""
    lab.build(bridge_with(3))
    lab.ns("host").run(["nft", "-f", "-"], check=True, input="""
        table bridge lossy {
            counter first { }
            counter always { }
            chain forward {
                type filter hook forward priority 0;
                ip saddr 10.9.0.2 ip daddr 10.9.0.3 icmp type echo-request icmp sequence 1 counter name first drop
                ip saddr 10.9.0.2 ip daddr 10.9.0.4 icmp type echo-request counter name always drop
            }
        }""".encode())
    c1 = lab.ns("c1")
    sweep = ping_pairs([(c1, "10.9.0.3"), (c1, "10.9.0.4")], timeout=0.3, explain=0)
    assert (sweep.pairs, sweep.replied, sweep.retried) == (2, 1, 1), sweep
    assert sweep.failures == [("c1", "10.9.0.4")], sweep
    counters = lab.ns("host").run(["nft", "list", "counters", "table", "bridge", "lossy"], check=True).stdout.decode()
    assert "packets 2 " in counters.split("counter always")[0]  # the first request and its resend; the third went through
    assert "packets 4 " in counters.split("counter always")[1]  # twice in its round (the request, the resend), twice when asked again


def routed(*, forwarding: int) -> Topology:
    """a 10.1.0.2/24 --- ra 10.1.0.1/24 [r] rb 10.2.0.1/24 --- b 10.2.0.2/24, each end's default via r."""
    return Topology(
        [Namespace("a"), Namespace("r", sysctls={"net.ipv4.ip_forward": forwarding}), Namespace("b")],
        veths=[Veth("a", "eth0", "r", "ra"), Veth("r", "rb", "b", "eth0")],
        addresses=[Address("a", "eth0", "10.1.0.2/24"), Address("r", "ra", "10.1.0.1/24"), Address("r", "rb", "10.2.0.1/24"), Address("b", "eth0", "10.2.0.2/24")],
        routes=[Route("a", "default", via="10.1.0.1"), Route("b", "default", via="10.2.0.1")],
    )


def test_a_pair_whose_echo_the_kernel_dropped_at_a_routing_decision_fails_at_once(lab):
    """r does not forward: the kernel drops each request there (IP_INADDRERRORS) and sends no
    error back. The drop monitor's report of that very request (its echo id and sequence
    number) ends the pair: it is not waited for, nor asked again. Without early settling
    (the ground truth) the same pairs fail, each after its deadline and a second ask."""
    lab.build(routed(forwarding=0))
    probe = lab.ns("a").ping("10.2.0.2")
    if probe.evidence.drop_reasons is not None:
        pytest.skip(f"the kernel's drop reasons cannot be read here: {probe.evidence.drop_reasons}")
    hosts = {lab.ns("a"): "10.1.0.2", lab.ns("b"): "10.2.0.2"}
    sweep = all_pairs(hosts, timeout=2.0, explain=0)
    assert set(sweep.failures) == {("a", "10.2.0.2"), ("b", "10.1.0.2")} and sweep.elapsed < 1.0, sweep
    assert sweep.why[("a", "10.2.0.2")] == "echo request dropped in r (IP_INADDRERRORS)", sweep
    lab.settle_early = False
    truth = all_pairs(hosts, timeout=0.3, explain=0)
    assert set(truth.failures) == set(sweep.failures) and truth.elapsed >= 0.6 and not truth.why, truth
