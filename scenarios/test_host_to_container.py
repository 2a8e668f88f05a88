"""Tutorial 002 "Container Networking Deep Dive, part 1": host to container with routes.

      lan (gateway, does not forward)                host (the tutorial's VM)              container1
      eth0 10.0.0.1/24 ------------------- enp0s8 10.0.0.10/24
                                           default via 10.0.0.1
                                           veth1 (no address) ------------------ ceth1 172.16.0.2/24

The host's default route leads to a gateway that drops what is not its own
(ip_forward=0), so "the ping hangs" is reproduced faithfully: the request
leaves by the default route and is lost, no instant ENETUNREACH. Each test
replays the tutorial up to its step.
"""

from __future__ import annotations

from nslab import Address, Cause, Namespace, Outcome, Route, Topology, Veth, Where

VM = Topology(
    [Namespace("host", lo_up=True), Namespace("lan", lo_up=True, sysctls={"net.ipv4.ip_forward": 0})],
    veths=[Veth("host", "enp0s8", "lan", "eth0")],
    addresses=[Address("host", "enp0s8", "10.0.0.10/24"), Address("lan", "eth0", "10.0.0.1/24")],
    routes=[Route("host", "default", via="10.0.0.1")],
)


def vm_with_container(lab):
    """Steps 2-5: ip netns add container1; ip link add veth1 type veth peer name ceth1; ip link set ceth1 netns container1"""
    lab.build(VM)
    host = lab.ns("host")
    container = lab.add_namespace("container1")
    host.add_veth("veth1", peer="ceth1")
    host.set_link("ceth1", netns=container)
    return host, container


def addressed(lab):
    """Steps 6-7: both ends up; ip netns exec container1 ip addr add 172.16.0.2/24 dev ceth1"""
    host, container = vm_with_container(lab)
    host.set_link("veth1", up=True)
    container.set_link("ceth1", up=True)
    container.add_address("172.16.0.2/24", dev="ceth1")
    return host, container


def host_route(lab):
    """Step 9: ip route add 172.16.0.0/24 dev veth1"""
    host, container = addressed(lab)
    host.add_route("172.16.0.0/24", dev="veth1")
    return host, container


def container_default_route(lab):
    """Step 11: ip netns exec container1 ip route add default via 172.16.0.2 dev ceth1"""
    host, container = host_route(lab)
    container.add_route("default", via="172.16.0.2", dev="ceth1")
    return host, container


def test_01_host_has_its_uplink_address(lab):
    lab.build(VM)
    assert [a.cidr for a in lab.ns("host").addresses("enp0s8") if "." in a.cidr] == ["10.0.0.10/24"]


def test_03_veth_pair_created_in_the_host_both_down(lab):
    lab.build(VM)
    host = lab.ns("host")
    host.add_veth("veth1", peer="ceth1")
    assert host.link("veth1").state == host.link("ceth1").state == "DOWN"


def test_04_ceth1_moves_into_container1(lab):
    host, container = vm_with_container(lab)
    assert container.link_names() == ["ceth1", "lo"]
    assert "ceth1" not in host.link_names()


def test_06_both_ends_up(lab):
    host, container = vm_with_container(lab)
    assert host.link("veth1").state == "DOWN"
    host.set_link("veth1", up=True)
    assert host.link("veth1").state == "NO-CARRIER"  # the other end is still down
    container.set_link("ceth1", up=True)
    assert host.link("veth1").state == container.link("ceth1").state == "UP"


def test_07_address_adds_the_connected_route(lab):
    _, container = addressed(lab)
    assert [str(r) for r in container.routes()] == ["172.16.0.0/24 dev ceth1 proto kernel scope link src 172.16.0.2"]


def test_08_ping_from_host_hangs_lost_via_the_default_route(lab):
    host, _ = addressed(lab)
    result = host.ping("172.16.0.2")
    assert result.outcome is Outcome.TIMEOUT, result  # hangs: no instant error
    assert result.cause is Cause.LOST_VIA_DEFAULT_ROUTE
    ev = result.evidence
    assert (ev.sender_route.via, ev.sender_route.dev) == ("10.0.0.1", "enp0s8")
    assert [(s.ns, s.dev) for s in ev.seen(kind="echo-request", direction="in")] == [("lan", "eth0")]
    assert not ev.seen(ns="container1")


def test_10_host_route_is_not_enough_no_route_back(lab):
    host, _ = host_route(lab)
    result = host.ping("172.16.0.2")
    assert result.outcome is Outcome.TIMEOUT, result
    assert result.cause is Cause.NO_RETURN_ROUTE
    ev = result.evidence
    assert ev.seen(ns="container1", kind="echo-request", direction="in")[0].dev == "ceth1"
    assert ev.request_src == "10.0.0.10"
    assert not ev.seen(ns="container1", kind="echo-reply")


def test_11_default_via_its_own_address_is_accepted_as_on_link(lab):
    # The tutorial's gateway is the container's own address. This kernel accepts
    # it and treats the route as on-link: container1 ARPs for each destination
    # itself, and the host answers for 10.0.0.10 on veth1 (arp_ignore=0).
    _, container = container_default_route(lab)
    assert "default via 172.16.0.2 dev ceth1" in [str(r) for r in container.routes()]
    lookup = container.route_get("10.0.0.10")
    assert (lookup.type, lookup.dev, lookup.via, lookup.src) == ("unicast", "ceth1", None, "172.16.0.2")


def test_12_ping_container_from_host_works(lab):
    host, _ = container_default_route(lab)
    assert host.ping("172.16.0.2").replied


def test_13_ping_host_from_container_works(lab):
    _, container = container_default_route(lab)
    assert container.ping("10.0.0.10").replied


def test_13_arp_entries_on_both_sides(lab):
    host, container = container_default_route(lab)
    assert host.ping("172.16.0.2").replied
    assert host.neighbour("172.16.0.2").mac == container.link("ceth1").mac
    entry = container.neighbour("10.0.0.10")  # resolved directly: the on-link default route
    assert (entry.dev, entry.mac) == ("ceth1", host.link("veth1").mac)


# -- the dual-stack twin ---------------------------------------------------------------------
# The same VM with IPv6 beside IPv4: the LAN on the documentation prefix, the container on a
# ULA prefix. Every namespace takes `accept_dad=0` for the links it makes, the twin of the
# `nodad` nslab gives addresses: link-local addresses are usable at once (a tentative one
# sends no neighbour solicitation, so a router could not resolve anything for a second).
#
#      lan eth0 2001:db8:0:10::1/64 ---- enp0s8 2001:db8:0:10::10/64 [host] veth1 ---- ceth1 fd00:172:16::2/64 [container1]
NO_DAD = {"net.ipv6.conf.default.accept_dad": 0}
VM6 = Topology(
    [Namespace("host", lo_up=True, sysctls=NO_DAD), Namespace("lan", lo_up=True, sysctls={"net.ipv4.ip_forward": 0, **NO_DAD})],
    veths=VM.veths,
    addresses=[*VM.addresses, Address("host", "enp0s8", "2001:db8:0:10::10/64"), Address("lan", "eth0", "2001:db8:0:10::1/64")],
    routes=[*VM.routes, Route("host", "::/0", via="2001:db8:0:10::1")],
)


def dual_addressed(lab):
    """Steps 2-7 on the dual-stack VM: the container, its veth, both addresses on ceth1"""
    lab.build(VM6)
    host = lab.ns("host")
    container = lab.add_namespace("container1", sysctls=NO_DAD)
    host.add_veth("veth1", peer="ceth1")
    host.set_link("ceth1", netns=container)
    host.set_link("veth1", up=True)
    container.set_link("ceth1", up=True)
    container.add_address("172.16.0.2/24", dev="ceth1")
    container.add_address("fd00:172:16::2/64", dev="ceth1")
    return host, container


def dual_host_route(lab):
    """Step 9, both families: ip route add 172.16.0.0/24 dev veth1; ip -6 route add fd00:172:16::/64 dev veth1"""
    host, container = dual_addressed(lab)
    host.add_route("172.16.0.0/24", dev="veth1")
    host.add_route("fd00:172:16::/64", dev="veth1")
    return host, container


def test_14_dual_stack_ipv6_does_not_hang_the_gateway_says_no_route(lab):
    # IPv4's ping hangs at the gateway (ip_forward=0 drops it silently). IPv6's does not:
    # lan, not forwarding and with no route to the ULA prefix, answers with an ICMPv6 error.
    host, _ = dual_addressed(lab)
    assert host.ping("172.16.0.2").cause is Cause.LOST_VIA_DEFAULT_ROUTE
    result = host.ping("fd00:172:16::2")
    assert result.outcome is Outcome.ICMP_ERROR and result.icmp.v6 and (result.icmp.type, result.icmp.code) == (1, 0), result
    assert result.cause is Cause.ICMP_UNREACHABLE and result.where == Where("lan", "eth0")
    assert result.icmp.source == "2001:db8:0:10::1" and not result.evidence.seen(ns="container1")


def test_15_dual_stack_host_route_is_not_enough_no_route_back(lab):
    host, _ = dual_host_route(lab)
    for dst, src in (("172.16.0.2", "10.0.0.10"), ("fd00:172:16::2", "2001:db8:0:10::10")):
        result = host.ping(dst)
        assert result.outcome is Outcome.TIMEOUT and result.decided_early, result  # the hang, settled in milliseconds
        assert result.cause is Cause.NO_RETURN_ROUTE and result.where == Where("container1", "ceth1")
        assert result.evidence.request_src == src
    solicits = [(s.ns, s.direction) for s in result.evidence.seen(kind="ndp-solicit")]
    assert solicits[:2] == [("host", "out"), ("container1", "in")]  # NDP, IPv6's ARP, resolved the container first


def test_16_dual_stack_default_dev_works_for_arp_not_for_ndp(lab):
    # The tutorial's on-link default route: IPv4's ARP is answered by the host for
    # 10.0.0.10 on veth1, though the address is on enp0s8. IPv6's NDP is not.
    host, container = dual_host_route(lab)
    container.add_route("default", dev="ceth1")
    container.add_route("::/0", dev="ceth1")
    assert host.ping("172.16.0.2").replied
    result = host.ping("fd00:172:16::2")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_ARP_ANSWER and result.where == Where("container1", "ceth1")
    assert "host holds 2001:db8:0:10::10 on enp0s8, not on veth1" in result.explanation
    assert [(c.ns, c.obj) for c in result.claims if c.blames] == [("container1", "route default")]


def test_17_dual_stack_default_via_the_hosts_link_local(lab):
    # IPv6's idiom: the gateway is the host's link-local address on veth1 (as Calico does).
    host, container = dual_host_route(lab)
    container.add_route("default", via="172.16.0.2", dev="ceth1")
    gateway = next(a.ip for a in host.addresses("veth1", version=6) if a.scope == "link")
    container.run(["ip", "-6", "route", "add", "default", "via", gateway, "dev", "ceth1"], check=True)
    for dst in ("172.16.0.2", "fd00:172:16::2"):
        assert host.ping(dst).replied
    assert container.ping("2001:db8:0:10::10").replied
    assert container.ping(f"{gateway}%ceth1").replied
