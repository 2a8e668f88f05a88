"""IPv6 probes and their verdicts: ICMPv6 echo, NDP solicitation, TCP over IPv6, each
seen on the wire by its flow, and IPv6's own causes (tentative, dadfailed, disabled,
forwarding off, Packet Too Big).

      a a0 fd00:1::1/64 ---- r0 fd00:1::2/64 [r] r1 fd00:2::2/64 ---- b0 fd00:2::1/64 b
"""

from __future__ import annotations

import time

import pytest

from nslab import Address, Bridge, Cause, LabError, Namespace, Outcome, Route, Topology, Veth, Where
from nslab.diagnosis import frames
from nslab.kernel.drops import decode
from nslab.kernel.process import wait_until
from nslab.probes import packets
from nslab.probes.result import Remedy

NO_DAD = {"net.ipv6.conf.default.accept_dad": 0}  # links made later get usable link-local addresses at once
ROUTED = dict(
    namespaces=[Namespace(name, sysctls=NO_DAD) for name in ("a", "r", "b")],
    veths=[Veth("a", "a0", "r", "r0"), Veth("r", "r1", "b", "b0")],
    addresses=[Address("a", "a0", "fd00:1::1/64"), Address("r", "r0", "fd00:1::2/64"), Address("r", "r1", "fd00:2::2/64"), Address("b", "b0", "fd00:2::1/64")],
    routes=[Route("a", "::/0", via="fd00:1::2"), Route("b", "::/0", via="fd00:2::2")],
)
PAIR = dict(namespaces=["a", "b"], veths=[Veth("a", "a0", "b", "b0")], addresses=[Address("a", "a0", "fd00::1/64"), Address("b", "b0", "fd00::2/64")])


def link_local(ns, dev: str) -> str:
    """*dev*'s link-local address, once duplicate address detection let it be used."""
    return wait_until(lambda: next((a.ip for a in ns.addresses(dev, version=6) if a.scope == "link" and not a.flags), None), 5.0, f"{ns.name}'s {dev} link-local usable")


def test_ping6_and_its_trace(make_lab):
    lab = make_lab(Topology(**ROUTED))
    lab.ns("r").set_sysctl("net.ipv6.conf.all.forwarding", 1)
    result = lab.ns("a").ping("fd00:2::1")
    assert result.replied, result
    ev = result.evidence
    assert [(s.ns, s.dev, s.direction) for s in ev.seen(kind="echo-request")] == [("a", "a0", "out"), ("r", "r0", "in"), ("r", "r1", "out"), ("b", "b0", "in")]
    assert [(s.ns, s.direction) for s in ev.seen(kind="echo-reply")][-1] == ("a", "in")
    assert "IPv6 / ICMPv6 fd00:1::1 > fd00:2::1 echo-request" in ev.trace()
    assert ("a", "a0", "out") in {(s.ns, s.dev, s.direction) for s in ev.seen(kind="ndp-solicit")}  # a resolves fd00:1::2 first


def test_forwarding_off_is_the_all_switch(make_lab):
    lab = make_lab(Topology(**ROUTED))
    lab.ns("r").set_sysctl("net.ipv6.conf.r0.forwarding", 1)  # per device: a router's behaviour, no forwarding
    result = lab.ns("a").ping("fd00:2::1")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("r", "r0")
    assert "net.ipv6.conf.all.forwarding=0" in result.explanation and "net.ipv6.conf.r0.forwarding=1 alone" in result.explanation
    blamed = [c for c in result.claims if c.blames]
    assert [(c.ns, c.obj, c.value) for c in blamed] == [("r", "sysctl net.ipv6.conf.all.forwarding", "0")]
    assert not result.evidence.seen(ns="b")
    assert result.remedies == (Remedy("r", "sysctl -w net.ipv6.conf.all.forwarding=1", "sysctl -w net.ipv6.conf.all.forwarding=0", "r0"),)


def test_forwarding_off_is_searched_for_a_fix_with_its_remedy(make_lab):
    """The remedy is a change the fix search can try (a string was not: 'no fix was searched: AttributeError')."""
    from nslab.advice.fixes import find

    lab = make_lab(Topology(**ROUTED))
    result = lab.ns("a").ping("fd00:2::1")
    found = find(result, lab, budget=5.0)
    assert found.tried >= 1 and "no fix was searched" not in (found.note or ""), found


def test_no_route_back(make_lab):
    lab = make_lab(Topology(**{**ROUTED, "routes": [Route("a", "::/0", via="fd00:1::2")]}))
    lab.ns("r").set_sysctl("net.ipv6.conf.all.forwarding", 1)
    result = lab.ns("a").ping("fd00:2::1")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_RETURN_ROUTE and result.where == Where("b", "b0")
    assert result.evidence.delta("b", "Icmp6.InEchos") == 1 and not result.evidence.delta("b", "Icmp6.OutEchoReplies")
    assert "b has no route back to fd00:1::1" in result.explanation


def test_no_route_at_sender(make_lab):
    lab = make_lab(Topology(**PAIR))
    result = lab.ns("a").ping("2001:db8::9")
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH"
    assert result.cause is Cause.NO_ROUTE_AT_SENDER and not result.evidence.sightings


def test_no_ndp_answer(make_lab):
    lab = make_lab(Topology(**PAIR))
    result = lab.ns("a").ping("fd00::9")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_ARP_ANSWER and result.where == Where("a", "a0")
    assert "nobody answered NDP for fd00::9" in result.explanation and "b (b0)" in result.explanation
    assert {(s.ns, s.direction) for s in result.evidence.seen(kind="ndp-solicit")} >= {("a", "out"), ("b", "in")}


def test_ndp_probe(make_lab):
    lab = make_lab(Topology(**PAIR))
    a, b = lab.ns("a"), lab.ns("b")
    found = a.ndp("fd00::2", "a0")
    assert found.answered and found.mac == b.link("b0").mac, found
    assert found.evidence.seen(ns="b", direction="out", kind="ndp-advert")
    missing = a.ndp("fd00::7", "a0")
    assert missing.outcome is Outcome.TIMEOUT and missing.decided_early and missing.cause is Cause.NO_ARP_ANSWER, missing


def test_tcp_over_ipv6(make_lab):
    lab = make_lab(Topology(**PAIR))
    a, b = lab.ns("a"), lab.ns("b")
    refused = a.connect("fd00::2", 80)
    assert refused.outcome is Outcome.REFUSED and refused.cause is Cause.PORT_CLOSED and refused.where == Where("b", "b0"), refused
    assert refused.dst == "[fd00::2]:80"
    chat = a.chat(b, "fd00::2", 8080)
    assert chat.ok and chat.client_address == "fd00::1", chat
    assert a.chat(b, "fd00::2", 8081).ok  # an IPv6 listener per chat, beside IPv4's


def test_link_local_needs_and_takes_a_scope(make_lab):
    lab = make_lab(Topology(**PAIR))
    a, b = lab.ns("a"), lab.ns("b")
    peer = link_local(b, "b0")
    link_local(a, "a0")
    with pytest.raises(LabError, match="link-local: name the interface"):
        a.ping(peer)
    with pytest.raises(LabError, match="a scope is an interface of a"):
        a.ping(f"{peer}%eth9")
    result = a.ping(f"{peer}%a0")
    assert result.replied and result.dst == f"{peer}%a0", result
    assert [s.dev for s in result.evidence.seen(ns="b", kind="echo-request")] == ["b0"]


def test_tentative_neighbour(make_lab):
    lab = make_lab(Topology(**{**PAIR, "addresses": PAIR["addresses"][:1]}))
    b = lab.ns("b")
    b.set_sysctl("net.ipv6.conf.b0.dad_transmits", 30)  # duplicate address detection for 30 s, not 1: tentative throughout
    b.run(["ip", "addr", "add", "fd00::2/64", "dev", "b0"], check=True)
    assert [x.flags for x in b.addresses("b0", version=6) if x.ip == "fd00::2"] == [("tentative",)]
    result = lab.ns("a").ping("fd00::2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early and result.cause is Cause.ADDRESS_TENTATIVE, result
    assert result.where == Where("b", "b0")
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("b", "address fd00::2/64 dev b0", "tentative")]
    assert "still tentative" in result.explanation


SLOW_DAD = {"net.ipv6.conf.default.dad_transmits": 30}  # links made with DAD for 30 s, not 1


@pytest.mark.parametrize("slow", [SLOW_DAD, {**SLOW_DAD, "net.ipv6.conf.default.accept_dad": 0, "net.ipv6.conf.all.accept_dad": 1}], ids=["dad", "dad by all's accept_dad"])
def test_a_router_without_a_usable_link_local_sends_no_solicitation(make_lab, slow):
    """A forwarded packet's solicitation comes from a link-local address of the way out: while that
    one is in DAD the router sends none, and the why says so, not that nobody answered. The lab is
    ready without waiting out DAD (a link's accept_dad 0 does not turn DAD off while `all`'s is 1)."""
    started = time.monotonic()
    lab = make_lab(Topology(**{**ROUTED, "namespaces": [ROUTED["namespaces"][0], Namespace("r", sysctls=slow), ROUTED["namespaces"][2]]}))
    assert time.monotonic() - started < 3.0  # the build did not wait for DAD (Kernel.wait_ipv6_usable waits 5 s at most)
    r = lab.ns("r")
    r.set_sysctl("net.ipv6.conf.all.forwarding", 1)
    held = [x for x in r.addresses("r1", version=6) if x.scope == "link"]
    assert [x.flags for x in held] == [("tentative",)], held
    result = lab.ns("a").ping("fd00:2::1")
    assert result.outcome is Outcome.TIMEOUT and result.cause is Cause.ADDRESS_TENTATIVE and result.where == Where("r", "r1"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("r", f"address {held[0].cidr} dev r1", "tentative")]
    assert "r sent no NDP request for fd00:2::1 on r1" in result.explanation
    assert ("r", "r1", "out") not in {(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="ndp-solicit")}


def test_a_router_without_a_link_local_is_told_to_add_one(make_lab):
    lab = make_lab(Topology(**ROUTED))
    r = lab.ns("r")
    r.set_sysctl("net.ipv6.conf.all.forwarding", 1)
    r.run(["ip", "-6", "addr", "flush", "dev", "r1", "scope", "link"], check=True)
    result = lab.ns("a").ping("fd00:2::1")
    assert result.outcome is Outcome.TIMEOUT and result.cause is Cause.NO_ARP_ANSWER and result.where == Where("r", "r1"), result
    assert [(c.obj, c.value) for c in result.claims if c.blames] == [("address fe80::/64 dev r1", "absent")]
    assert result.remedies == (Remedy("r", "ip -6 addr add fe80::1/64 dev r1 nodad", "ip -6 addr del fe80::1/64 dev r1", "r1"),)
    r.run(["ip", "-6", "addr", "add", "fe80::1/64", "dev", "r1", "nodad"], check=True)
    # r's entry for fd00:2::1 is still resolving for the first probe: its next solicitation comes when the retransmit timer fires
    wait_until(lambda: lab.ns("a").ping("fd00:2::1").replied, 5.0, "a's ping through with a link-local on r1")


@pytest.mark.parametrize("dev_ns, dev", [("b", "b0"), ("a", "a0")])
def test_an_mtu_below_ipv6_minimum_is_why_an_address_is_gone(make_lab, dev_ns, dev):
    """Below 1280 the kernel takes IPv6 off a device, addresses and routes with it: the device's
    MTU is blamed, as read, not the address (at the holder: NDP unanswered; at the sender: no route)."""
    lab = make_lab(Topology(**ROUTED))
    lab.ns("r").set_sysctl("net.ipv6.conf.all.forwarding", 1)
    lab.ns(dev_ns).run(["ip", "link", "set", "dev", dev, "mtu", "68"], check=True)
    result = lab.ns("a").ping("fd00:2::1")
    assert not result.replied and result.where == Where(dev_ns, dev), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [(dev_ns, f"link {dev}", "mtu 68")]
    assert "below IPv6's minimum of 1280" in result.explanation
    lab.ns(dev_ns).run(["sh", "-c", result.remedies[0].command], check=True)
    # r may still be resolving fd00:2::1 for the first probe (settled early), its next solicitation a second on
    wait_until(lambda: lab.ns("a").ping("fd00:2::1").replied, 5.0, "a's ping through after the fix")


BRIDGED = dict(
    namespaces=[Namespace(n, sysctls=NO_DAD) for n in ("h", "a", "b")],
    bridges=[Bridge("h", "br0")],
    veths=[Veth("h", "p1", "a", "a0", master="br0"), Veth("h", "p2", "b", "b0", master="br0")],
    addresses=[Address("a", "a0", "fd00::1/64"), Address("b", "b0", "fd00::2/64")],
)


def ping_through_a_small_port(make_lab, port: str):
    """a pings b across h's bridge, with br_netfilter handing bridged IPv6 to the ip6 hooks and
    the bridge port *port* at an MTU of 68: the lab and the ping's result."""
    lab = make_lab(Topology(**BRIDGED))
    h = lab.ns("h")
    h.set_sysctl("net.bridge.bridge-nf-call-ip6tables", 1)
    h.run(["ip", "link", "set", "dev", port, "mtu", "68"], check=True)
    return lab, lab.ns("a").ping("fd00::2")


def test_an_answer_too_big_for_the_bridge_port_it_leaves_by(make_lab):
    """b's advertisement (a 72-byte packet) is bridged out of p1, whose MTU is 68: with br_netfilter
    handing bridged IPv6 to the ip6 hooks, the bridge drops it; without, the frame passes (the
    kernel allows a port its MTU, the header and a VLAN tag). The why names what it read."""
    lab, result = ping_through_a_small_port(make_lab, "p1")
    h = lab.ns("h")
    assert result.outcome is Outcome.TIMEOUT and result.where == Where("h", "p1"), result
    assert [(c.ns, c.obj, c.value, c.blames) for c in result.claims] == [("h", "link p1", "mtu 68", True), ("h", "sysctl net.bridge.bridge-nf-call-ip6tables", "1", False)]
    assert "b holds fd00::2 and answered: its NDP advertisement left b0 (86 bytes)" in result.explanation
    h.set_sysctl("net.bridge.bridge-nf-call-ip6tables", 0)
    wait_until(lambda: lab.ns("a").ping("fd00::2").replied, 5.0, "a's ping through without br_netfilter")


def test_a_solicitation_too_big_for_the_port_toward_the_holder(make_lab):
    """a's solicitation never reaches b: the port it is bridged out of toward b is too small."""
    _, result = ping_through_a_small_port(make_lab, "p2")
    assert result.outcome is Outcome.TIMEOUT and result.where == Where("h", "p2"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("h", "link p2", "mtu 68")]
    assert "no capture saw the request arrive there: it left a0 (86 bytes)" in result.explanation


def test_an_address_gone_with_its_link_down_names_the_link(make_lab):
    """b0 down took b's IPv6 address (keep_addr_on_down=0): the link is named, not the address."""
    lab = make_lab(Topology(**BRIDGED))
    b = lab.ns("b")
    b.run(["ip", "link", "set", "b0", "down"], check=True)
    result = lab.ns("a").ping("fd00::2")
    assert not result.replied and result.where == Where("b", "b0"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("b", "link b0", "down")]
    b.run(["sh", "-c", result.remedies[0].command], check=True)
    wait_until(lambda: lab.ns("a").ping("fd00::2").replied, 5.0, "a's ping through with b0 up")


def test_a_chain_on_the_holders_way_out_drops_its_advertisement(make_lab):
    lab = make_lab(Topology(**PAIR))
    b = lab.ns("b")
    for line in ("add table netdev t", "add chain netdev t e { type filter hook egress device b0 priority 0 ; }", "add rule netdev t e meta l4proto ipv6-icmp drop"):
        b.run(["nft", line], check=True)
    result = lab.ns("a").ping("fd00::2")
    assert result.outcome is Outcome.TIMEOUT and result.cause is Cause.FILTERED_BY_RULE and result.where == Where("b", "b0"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("b", "nft netdev t e", "meta l4proto ipv6-icmp drop")]


def test_a_holder_without_arp_answers_no_solicitation(make_lab):
    lab = make_lab(Topology(**PAIR))
    b = lab.ns("b")
    b.run(["ip", "link", "set", "b0", "arp", "off"], check=True)
    result = lab.ns("a").ping("fd00::2")
    assert result.outcome is Outcome.TIMEOUT and result.where == Where("b", "b0"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("b", "link b0", "arp off")]
    # the copy sets `arp off` after the address, as here: set before it, b0 would join no solicited-node group
    from nslab.advice.fixes import find

    found = find(result, lab, budget=5.0)
    arp_on = [["ip", "link", "set", "b0", "arp", "on"], ["ip", "neigh", "flush", "dev", "b0", "nud", "noarp"]]
    assert any(arp_on in [c["commands"] for c in f.changes] for f in found.fixes), found  # alone, or paired when a trial was slow
    b.run(["sh", "-c", result.remedies[0].command], check=True)
    wait_until(lambda: lab.ns("a").ping("fd00::2").replied, 5.0, "a's ping through with arp on")


def test_an_advertisement_addressed_by_a_stale_permanent_entry(make_lab):
    """b's permanent entry for a holds a MAC that is not a0's: b's advertisement reaches a0
    addressed to it, and a drops it as another host's. The entry is named, not b's silence."""
    lab = make_lab(Topology(**PAIR))
    b = lab.ns("b")
    b.run(["ip", "-6", "neigh", "replace", "fd00::1", "lladdr", "02:00:5e:00:00:01", "dev", "b0", "nud", "permanent"], check=True)
    result = lab.ns("a").ping("fd00::2")
    assert result.outcome is Outcome.TIMEOUT and result.where == Where("b", "b0"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("b", "neigh fd00::1 dev b0", "lladdr 02:00:5e:00:00:01 PERMANENT")]
    assert "its NDP advertisement reached a on a0 addressed to 02:00:5e:00:00:01" in result.explanation
    b.run(["sh", "-c", result.remedies[0].command], check=True)
    wait_until(lambda: lab.ns("a").ping("fd00::2").replied, 5.0, "a's ping through without the entry")


def test_a_router_that_lost_its_route_with_disable_ipv6_says_so(make_lab):
    """disable_ipv6 on r1 took r's address there and the connected route with it: r answers
    'no route', and the why names the sysctl that took them, as read, not a missing route."""
    lab = make_lab(Topology(**ROUTED))
    r = lab.ns("r")
    r.set_sysctl("net.ipv6.conf.all.forwarding", 1)
    r.set_sysctl("net.ipv6.conf.r1.disable_ipv6", 1)
    result = lab.ns("a").ping("fd00:2::1")
    assert result.outcome is Outcome.ICMP_ERROR and result.where == Where("r", "r1"), result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("r", "sysctl net.ipv6.conf.r1.disable_ipv6", "1")]
    r.run(["sh", "-c", result.remedies[0].command], check=True)
    wait_until(lambda: lab.ns("a").ping("fd00:2::1").replied, 5.0, "a's ping through with IPv6 back on r1")


def test_an_ipv6_rule_is_removed_with_ip_6_rule(make_lab):
    """`ip rule del` without -6 reads IPv4's rules: the remedy names the family, and works."""
    lab = make_lab(Topology(**PAIR))
    a = lab.ns("a")
    a.run(["ip", "-6", "rule", "add", "pref", "100", "to", "fd00::2", "prohibit"], check=True)
    result = a.ping("fd00::2")
    assert result.outcome is Outcome.LOCAL_ERROR and [(c.obj, c.blames) for c in result.claims] == [("rule 100", True)], result
    assert result.remedies[0].command == "ip -6 rule del pref 100"
    a.run(["sh", "-c", result.remedies[0].command], check=True)
    assert a.ping("fd00::2").replied


def test_all_disable_ipv6_on_a_router_is_undone_with_what_it_took(make_lab):
    """Writing net.ipv6.conf.all.disable_ipv6 sets every device's: the why names `all`, and its
    fix puts back the lab's addresses on both of r's links, and the routes that went with them."""
    lab = make_lab(Topology(**ROUTED))
    r = lab.ns("r")
    r.set_sysctl("net.ipv6.conf.all.forwarding", 1)
    r.set_sysctl("net.ipv6.conf.all.disable_ipv6", 1)
    result = lab.ns("a").ping("fd00:2::1")
    assert not result.replied and result.where.ns == "r", result
    assert [(c.ns, c.obj, c.value) for c in result.claims if c.blames] == [("r", "sysctl net.ipv6.conf.all.disable_ipv6", "1")]
    r.run(["sh", "-c", result.remedies[0].command], check=True)
    wait_until(lambda: lab.ns("a").ping("fd00:2::1").replied, 5.0, "a's ping through with IPv6 back on r")


def test_a_solicitation_the_kernel_dropped_before_it_left_is_named_by_its_drop(make_lab):
    """a's own output chain drops its NS before any capture sees it: the kernel's drop of it
    (NETFILTER_DROP, read for the solicitation, not only for the echo) says where and why."""
    lab = make_lab(Topology(**PAIR))
    a = lab.ns("a")
    for line in ("add table inet t", "add chain inet t o { type filter hook output priority 0 ; }", "add rule inet t o icmpv6 type nd-neighbor-solicit drop"):
        a.run(["nft", line], check=True)
    result = a.ping("fd00::2")
    if result.evidence.drop_reasons is not None:
        pytest.skip(f"the kernel's drop reasons cannot be read here: {result.evidence.drop_reasons}")
    assert result.cause is Cause.FILTERED_BY_RULE and result.reason == "NETFILTER_DROP" and result.where == Where("a", "a0"), result
    assert "a's NDP request for fd00::2 never left a0: the kernel dropped it in a" in result.explanation
    assert [(c.ns, c.obj) for c in result.claims if c.blames] == [("a", "nft inet t o")]


def test_dad_failed(make_lab):
    lab = make_lab(Topology(**PAIR))
    a, b = lab.ns("a"), lab.ns("b")
    b.run(["ip", "addr", "add", "fd00::1/64", "dev", "b0"], check=True)  # a holds it: DAD fails
    wait_until(lambda: any("dadfailed" in x.flags for x in b.addresses("b0", version=6)), 5.0, "b's fd00::1 dadfailed")
    a.del_address("fd00::1/64", "a0")
    a.add_address("fd00::3/64", "a0")
    result = a.ping("fd00::1")
    assert result.outcome is Outcome.TIMEOUT and result.cause is Cause.DAD_FAILED and result.where == Where("b", "b0"), result
    assert "duplicate address detection failed" in result.explanation


def test_ipv6_disabled_at_the_target(make_lab):
    lab = make_lab(Topology(**PAIR))
    lab.ns("b").set_sysctl("net.ipv6.conf.b0.disable_ipv6", 1)
    result = lab.ns("a").ping("fd00::2")
    assert result.outcome is Outcome.TIMEOUT and result.cause is Cause.IPV6_DISABLED and result.where == Where("b", "b0"), result
    assert [(c.obj, c.value) for c in result.claims if c.blames] == [("sysctl net.ipv6.conf.b0.disable_ipv6", "1")]


def test_ipv6_disabled_at_the_sender(make_lab):
    lab = make_lab(Topology(**PAIR))
    lab.ns("a").set_sysctl("net.ipv6.conf.all.disable_ipv6", 1)
    result = lab.ns("a").ping("fd00::2")
    assert result.outcome is Outcome.LOCAL_ERROR and result.cause is Cause.IPV6_DISABLED, result
    assert result.where.ns == "a" and "disable_ipv6=1" in result.explanation


def test_packet_too_big_is_its_own_message(make_lab):
    lab = make_lab(Topology(**ROUTED))
    r = lab.ns("r")
    r.set_sysctl("net.ipv6.conf.all.forwarding", 1)
    r.run(["ip", "link", "set", "r1", "mtu", "1280"], check=True)
    result = lab.ns("a").ping("fd00:2::1", size=1300)
    assert result.outcome is Outcome.ICMP_ERROR and result.icmp.v6 and result.icmp.type == 2 and result.icmp.mtu == 1280, result
    assert result.cause is Cause.TOO_BIG and result.where.ns == "r"
    assert "packet too big (mtu 1280)" in str(result.icmp)


# -- reading IPv6 by hand ---------------------------------------------------------------------
def test_ndp_solicitation_is_read_back():
    frame = packets.ndp_solicit("02:00:00:00:00:01", "fe80::1", "fd00::2")
    assert frame[:6] == bytes.fromhex("3333ff000002")  # the solicited-node group's MAC
    assert packets.ndp_fields(frame) == (135, "fe80::1", "fd00::2", "02:00:00:00:00:01")
    assert frames.kind(frame) == "ndp-solicit" and frames.neighbour_fields(frame) == (1, "fe80::1", "fd00::2")
    assert frames.describe(frame) == "NDP who has fd00::2 says fe80::1"
    assert packets.ones_sum(frame[22:54] + len(frame[54:]).to_bytes(4, "big") + b"\0\0\0:" + frame[54:]) == 0xFFFF  # checksum holds


def test_drop_record_decodes_ipv6():
    header = bytes([0x60, 0x01, 0x23, 0x45]) + (16).to_bytes(2, "big") + bytes([58, 64])
    header += bytes.fromhex("fd000001" + "00" * 11 + "01") + bytes.fromhex("fd000002" + "00" * 11 + "01")
    echo = bytes([128, 0, 0, 0]) + (7).to_bytes(2, "big") + (1).to_bytes(2, "big")
    fields = decode(0x86DD, header + echo)
    assert fields["kind"] == "ipv6" and fields["src"] == "fd00:1::1" and fields["dst"] == "fd00:2::1"
    assert (fields["proto"], fields["icmp_type"], fields["icmp_id"], fields["icmp_seq"], fields["ip_id"]) == (58, 128, 7, 1, 0x12345)
