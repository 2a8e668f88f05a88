"""Tutorial 000 "Container Networking - Veth": two namespaces wired by a veth.

      host (the VM's root namespace, played by a lab namespace)
        ip link add v1 type veth peer name v2 ; then each end moved out

      ns1                            ns2
      v1 10.0.0.1/24  <-- veth -->   v2 10.0.0.2/24

Each test replays the tutorial up to its step (a few milliseconds) and checks
what the tutorial says happens there, so tests are independent of each other
and of their order.
"""

from __future__ import annotations

import os

from nslab import Cause, Outcome
from nslab.kernel.process import wait_until


def add_namespaces(lab, sysctls=None):
    """$ sudo ip netns add ns1 ; sudo ip netns add ns2"""
    return lab.add_namespace("ns1", sysctls=sysctls), lab.add_namespace("ns2", sysctls=sysctls)


def create_and_plug_veth(lab, sysctls=None):
    """$ ip link add v1 type veth peer name v2 ; ip link set v1 netns ns1 ; ip link set v2 netns ns2"""
    ns1, ns2 = add_namespaces(lab, sysctls)
    host = lab.add_namespace("host")
    host.add_veth("v1", peer="v2")
    host.set_link("v1", netns="ns1")
    host.set_link("v2", netns="ns2")
    return host, ns1, ns2


def configure(lab, sysctls=None):
    """$ ip netns exec ns1 ip link set v1 up ; ip addr add 10.0.0.1/24 dev v1 (and the same for ns2)"""
    host, ns1, ns2 = create_and_plug_veth(lab, sysctls)
    ns1.set_link("v1", up=True)
    ns1.add_address("10.0.0.1/24", dev="v1")
    ns2.set_link("v2", up=True)
    ns2.add_address("10.0.0.2/24", dev="v2")
    return ns1, ns2


def test_01_no_namespace_exists_at_first(lab):
    # $ ip netns list   (no output)
    assert os.listdir(lab.kernel.sandbox.netns_dir) == []


def test_02_ip_netns_add_lists_both(lab):
    add_namespaces(lab)
    assert sorted(os.listdir(lab.kernel.sandbox.netns_dir)) == ["ns1", "ns2"]


def test_03_new_namespace_sees_only_lo(lab):
    host = lab.add_namespace("host")
    host.add_veth("v1", peer="v2")  # something the root namespace has
    ns1, ns2 = add_namespaces(lab)
    assert ns1.link_names() == ["lo"]
    assert ns2.link_names() == ["lo"]
    assert "v1" in host.link_names()


def test_04_veth_appears_as_a_pair_both_down(lab):
    host = lab.add_namespace("host")
    host.add_veth("v1", peer="v2")
    v1, v2 = host.link("v1"), host.link("v2")
    # `ip link` shows them as v1@v2 and v2@v1: each names the other as its peer
    assert (v1.peer_index, v2.peer_index) == (v2.index, v1.index)
    assert (v1.kind, v2.kind) == ("veth", "veth")
    assert v1.state == v2.state == "DOWN"


def test_05_moved_ends_leave_the_host(lab):
    host, ns1, ns2 = create_and_plug_veth(lab)
    assert host.link_names() == ["lo"]
    assert ns1.link_names() == ["lo", "v1"]
    assert ns2.link_names() == ["lo", "v2"]


def test_06_no_reachability_before_addresses(lab):
    _, ns1, _ = create_and_plug_veth(lab)
    result = ns1.ping("10.0.0.2")
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH", result
    assert result.cause is Cause.NO_ROUTE_AT_SENDER


def test_07_one_end_up_is_not_enough(lab):
    _, ns1, ns2 = create_and_plug_veth(lab)
    ns1.set_link("v1", up=True)
    ns1.add_address("10.0.0.1/24", dev="v1")
    ns2.add_address("10.0.0.2/24", dev="v2")  # v2 still down
    assert ns1.link("v1").state == "NO-CARRIER"
    result = ns1.ping("10.0.0.2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.LINK_DOWN
    assert "v2" in result.explanation and "ns2" in result.explanation


def test_08_addresses_add_connected_routes(lab):
    ns1, ns2 = configure(lab)
    assert [str(r) for r in ns1.routes()] == ["10.0.0.0/24 dev v1 proto kernel scope link src 10.0.0.1"]
    assert [str(r) for r in ns2.routes()] == ["10.0.0.0/24 dev v2 proto kernel scope link src 10.0.0.2"]


def test_09_ping_ns2_from_ns1(lab):
    ns1, _ = configure(lab)
    assert ns1.ping("10.0.0.2").replied


def test_10_ping_ns1_from_ns2(lab):
    _, ns2 = configure(lab)
    assert ns2.ping("10.0.0.1").replied


def test_11_arp_resolves_each_side_to_the_peer_mac(lab):
    ns1, ns2 = configure(lab)
    assert ns1.arp("10.0.0.2", dev="v1").mac == ns2.link("v2").mac
    assert ns2.arp("10.0.0.1", dev="v2").mac == ns1.link("v1").mac
    # and the kernel's own neighbour tables learnt the same through the ping
    assert ns1.ping("10.0.0.2").replied
    assert ns1.neighbour("10.0.0.2").mac == ns2.link("v2").mac
    assert ns2.neighbour("10.0.0.1").mac == ns1.link("v1").mac


def test_12_netcat_chat_works_both_ways(lab):
    # ns1$ nc -l -p 8080      ns2$ nc 10.0.0.1 8080      then a line typed on each side
    ns1, ns2 = configure(lab)
    result = ns2.chat(server=ns1, dst="10.0.0.1", port=8080)
    assert result.connected, result
    assert result.server_received == b"hello from ns2\n"
    assert result.received == b"hello from ns1\n"
    assert result.client_address == "10.0.0.2"


def test_13_nothing_listens_on_other_ports(lab):
    ns1, ns2 = configure(lab)
    result = ns2.connect("10.0.0.1", 8081)
    assert result.outcome is Outcome.REFUSED, result
    assert result.cause is Cause.PORT_CLOSED


def test_14_deleting_ns1_takes_the_whole_veth_with_it(lab):
    # $ sudo ip netns del ns1
    _, ns2 = configure(lab)
    lab.delete_namespace("ns1")
    assert ns2.link_names() == ["lo"]  # v2 went with v1: a veth never lives alone
    assert ns2.ping("10.0.0.1").errno_name == "ENETUNREACH"


def test_15_cleanup_leaves_no_namespace(lab):
    # $ sudo ip netns del ns1 ; sudo ip netns del ns2
    configure(lab)
    lab.delete_namespace("ns1")
    lab.delete_namespace("ns2")
    lab.delete_namespace("host")
    assert os.listdir(lab.kernel.sandbox.netns_dir) == []


# -- the dual-stack twin: the same steps with a ULA address beside each IPv4 one -------------
#      ns1 v1 10.0.0.1/24 fd00::1/64  <-- veth -->  v2 10.0.0.2/24 fd00::2/64 ns2
# Like the other dual-stack scenarios, a namespace may take accept_dad=0 for the links it gets
# (the twin of `nodad` for the kernel's own addresses: a link-local one is usable at once).
NO_DAD = {"net.ipv6.conf.default.accept_dad": 0}


def configure_dual(lab):
    """configure, then: ip -n ns1 addr add fd00::1/64 dev v1 nodad (and fd00::2/64 on ns2's v2)"""
    ns1, ns2 = configure(lab)
    ns1.add_address("fd00::1/64", dev="v1")
    ns2.add_address("fd00::2/64", dev="v2")
    return ns1, ns2


def usable_link_local(ns, dev: str) -> str:
    """*dev*'s link-local address once the kernel shows it usable (polled): at once under
    NO_DAD, else when duplicate address detection ends (about a second)."""
    ready = wait_until(lambda: [a.ip for a in ns.addresses(dev, version=6) if a.scope == "link" and not a.flags], 5.0, f"{ns.name}'s {dev} link-local usable")
    return ready[0]


def test_16_dual_stack_one_end_up_is_not_enough(lab):
    _, ns1, ns2 = create_and_plug_veth(lab)
    ns1.set_link("v1", up=True)
    ns1.add_address("fd00::1/64", dev="v1")
    ns2.add_address("fd00::2/64", dev="v2")  # v2 still down
    result = ns1.ping("fd00::2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early and result.cause is Cause.LINK_DOWN, result
    assert "v2" in result.explanation and "ns2" in result.explanation


def test_17_dual_stack_addresses_add_connected_routes(lab):
    ns1, _ = configure_dual(lab)
    assert ns1.route_get("fd00::2").dev == "v1" and ns1.route_get("10.0.0.2").dev == "v1"


def test_18_dual_stack_ping_both_families_both_ways(lab):
    ns1, ns2 = configure_dual(lab)
    for src, dst in ((ns1, "10.0.0.2"), (ns1, "fd00::2"), (ns2, "10.0.0.1"), (ns2, "fd00::1")):
        assert src.ping(dst).replied, dst


def test_19_dual_stack_ndp_resolves_each_side_to_the_peer_mac(lab):
    ns1, ns2 = configure_dual(lab)
    assert ns1.ndp("fd00::2", dev="v1").mac == ns2.link("v2").mac
    assert ns2.ndp("fd00::1", dev="v2").mac == ns1.link("v1").mac
    assert ns1.ping("fd00::2").replied
    assert ns1.neighbour("fd00::2").mac == ns2.link("v2").mac  # the kernel's NDP entry, `ip -6 neigh`


def test_20_dual_stack_netcat_chat_over_ipv6(lab):
    ns1, ns2 = configure_dual(lab)
    result = ns2.chat(server=ns1, dst="fd00::1", port=8080)
    assert result.connected and result.client_address == "fd00::2", result
    assert ns2.chat(server=ns1, dst="10.0.0.1", port=8080).connected  # the IPv4 listener on the same port, beside it
    refused = ns2.connect("fd00::1", 8081)
    assert refused.outcome is Outcome.REFUSED and refused.cause is Cause.PORT_CLOSED, refused


def test_21_dual_stack_link_local_needs_its_interface(lab):
    # no address of ours: the kernel's link-local addresses only (NO_DAD: usable at once)
    ns1, ns2 = configure(lab, NO_DAD)
    peer = usable_link_local(ns2, "v2")
    usable_link_local(ns1, "v1")
    result = ns1.ping(f"{peer}%v1")
    assert result.replied and result.dst == f"{peer}%v1", result
