"""The per-hop trace follows the packet, and verdicts stand without drop reasons.

A veth hop takes less time than the clock can always tell apart, so the trace
is ordered by cause: a packet leaves one end of a veth before it enters the
other, and enters a router before it is forwarded out of it.

      pod1 eth0 ---- veth-a [node] veth-b ---- eth0 pod2
"""

from __future__ import annotations

import functools

import pytest

from nslab import Address, Cause, Lab, Namespace, Outcome, Route, Topology, Veth, Where
from nslab.diagnosis.capture import Sighting
from nslab.diagnosis.evidence import causal_order
from nslab.kernel import drops


@functools.cache
def icmp_frame(src: str, dst: str, ident: int, kind: int = 8) -> bytes:
    """An Ethernet frame of an ICMP echo (scapy imported here, not by every worker that collects this file: 0.55 s)."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    return bytes(Ether() / IP(src=src, dst=dst, id=ident) / ICMP(type=kind, id=1, seq=1))


def echo() -> bytes:
    return icmp_frame("10.244.3.2", "10.244.3.3", 7)


PEERS = {("pod1", "eth0"): ("node", "veth-a"), ("node", "veth-a"): ("pod1", "eth0"), ("node", "veth-b"): ("pod2", "eth0"), ("pod2", "eth0"): ("node", "veth-b")}
HOPS = [("pod1", "eth0", "out"), ("node", "veth-a", "in"), ("node", "veth-b", "out"), ("pod2", "eth0", "in")]


def sightings(stamps: list[int]) -> list[Sighting]:
    return [Sighting(ns, dev, way, stamp, echo()) for (ns, dev, way), stamp in zip(HOPS, stamps)]


def hops(ordered: list[Sighting]) -> list[tuple[str, str, str]]:
    return [(s.ns, s.dev, s.direction) for s in ordered]


def test_equal_stamps_follow_the_path():
    assert hops(causal_order(sightings([5, 5, 5, 5])[::-1], PEERS, {})) == HOPS


def test_stamps_out_of_order_across_namespaces_follow_the_path():
    # the receive stamp of a namespace read on another CPU may even come first
    assert hops(causal_order(sightings([9, 3, 9, 4]), PEERS, {})) == HOPS


def test_unrelated_packets_keep_clock_order():
    other = Sighting("pod2", "eth0", "out", 1, icmp_frame("10.244.3.3", "10.244.3.2", 8, kind=0))
    assert causal_order(sightings([5, 6, 7, 8]) + [other], PEERS, {})[0] is other


def test_a_bridge_receives_after_its_port_and_sends_before_it():
    """container eth0 > host veth1 > br0 > uplink: br0 is related to the sender only through its
    port, so a receive stamp earlier than the sender's (another socket's clock) put it first."""
    peers = {("c", "eth0"): ("host", "veth1"), ("host", "veth1"): ("c", "eth0")}
    path = [("c", "eth0", "out"), ("host", "veth1", "in"), ("host", "br0", "in"), ("host", "uplink", "out")]
    seen = [Sighting(ns, dev, way, stamp, echo()) for (ns, dev, way), stamp in zip(path, [9, 3, 3, 12])]
    assert hops(causal_order(seen, peers, {("host", "veth1"): ("host", "br0")})) == path
    back = [("host", "br0", "out"), ("host", "veth1", "out"), ("c", "eth0", "in")]
    seen = [Sighting(ns, dev, way, stamp, echo()) for (ns, dev, way), stamp in zip(back, [7, 5, 6])]
    assert hops(causal_order(seen, peers, {("host", "veth1"): ("host", "br0")})) == back


def node_without_forwarding() -> Topology:
    return Topology(
        [Namespace("node", sysctls={"net.ipv4.ip_forward": 0}), Namespace("pod1"), Namespace("pod2")],
        veths=[Veth("node", "veth-a", "pod1", "eth0"), Veth("node", "veth-b", "pod2", "eth0")],
        addresses=[Address("node", "veth-a", "10.244.3.1/32"), Address("node", "veth-b", "10.244.3.1/32"), Address("pod1", "eth0", "10.244.3.2/32"), Address("pod2", "eth0", "10.244.3.3/32")],
        routes=[Route("node", "10.244.3.2/32", dev="veth-a"), Route("node", "10.244.3.3/32", dev="veth-b")]
        + [Route(p, "default", via="10.244.3.1", dev="eth0", onlink=True) for p in ("pod1", "pod2")],
    )


UNAVAILABLE = "bpftrace is not installed (apt-get install bpftrace)"  # as where bpftrace cannot run (rootless, no BTF, another kernel)


def test_without_drop_reasons_the_counters_of_this_packet_decide(nslab_sandbox):
    with Lab(node_without_forwarding(), drops=drops.off(UNAVAILABLE)) as lab:
        result = lab.ns("pod1").ping("10.244.3.3")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("node", "veth-a"), result
    assert result.reason is None and "Ip.InAddrErrors counted, no other packet arrived" in result.explanation
    assert result.evidence.drop_reasons == UNAVAILABLE
    assert "drop reasons were not read: bpftrace is not installed" in result.evidence.trace()


def test_with_drop_reasons_the_kernel_names_the_reason(make_lab):
    result = make_lab(node_without_forwarding()).ns("pod1").ping("10.244.3.3")
    if result.evidence.drop_reasons is not None:
        pytest.skip(f"the kernel's drop reasons cannot be read here: {result.evidence.drop_reasons}")
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("node", "veth-a"), result
    assert result.reason == "IP_INADDRERRORS" and "dropped in node on veth-a: IP_INADDRERRORS" in result.explanation
    assert hops([s for s in result.evidence.sightings if s.kind == "echo-request"]) == HOPS[:2]


def test_a_lab_opened_without_drop_reasons_decides_from_the_counters(nslab_sandbox, monkeypatch):
    monkeypatch.setattr(drops, "monitor", None)  # asked for, it would fail the test: the lab must not start bpftrace
    with Lab(node_without_forwarding(), drop_reasons=False) as lab:
        result = lab.ns("pod1").ping("10.244.3.3")
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("node", "veth-a"), result
    assert result.reason is None and result.evidence.drop_reasons == "the lab was opened without drop reasons (drop_reasons=False)"
