"""The model rejects bad input before the kernel sees it, in one line naming the field."""

from __future__ import annotations

import pytest

from nslab import Address, Bridge, LabError, Namespace, Route, Topology, Veth


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def two_namespaces(**extra) -> dict:
    return dict(namespaces=["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")], **extra)


def test_interface_name_of_16_characters_names_the_interface():
    with pytest.raises(LabError) as exc:
        Veth("ns1", "veth_root_nsabcd", "ns2", "v2")
    assert one_line(exc) == (
        "Veth.name: interface name 'veth_root_nsabcd' is 16 characters; the kernel allows 15 (shorten it, e.g. 'veth_root_nsabc')"
    )
    assert exc.value.field == "Veth.name"


def test_interface_name_of_15_characters_is_fine():
    assert Veth("ns1", "veth_root_nsabc", "ns2", "v2").name == "veth_root_nsabc"


@pytest.mark.parametrize("name", ["a/b", "has space", "tab\there", "x:1", ".", "..", ""])
def test_interface_name_with_slash_space_colon_or_dots(name):
    with pytest.raises(LabError) as exc:
        Veth("ns1", "v1", "ns2", name)
    assert exc.value.field == "Veth.peer"
    assert repr(name) in one_line(exc) or "non-empty" in one_line(exc)


@pytest.mark.parametrize(
    "cidr, says",
    [
        ("10.0.0.300/24", "not a valid CIDR"),
        ("10.0.0.1/33", "not a valid CIDR"),
        ("10.0.0.1", "not an address with a prefix length"),
        ("bogus/24", "not a valid CIDR"),
    ],
)
def test_bad_cidr(cidr, says):
    with pytest.raises(LabError) as exc:
        Address("ns1", "v1", cidr)
    assert exc.value.field == "Address.cidr"
    assert says in one_line(exc) and repr(cidr) in one_line(exc)


def test_route_with_host_bits_suggests_the_network():
    with pytest.raises(LabError) as exc:
        Route("host", "172.16.0.1/24", dev="veth1")
    assert one_line(exc) == "Route.dst: '172.16.0.1/24' has host bits set; did you mean '172.16.0.0/24'?"


def test_duplicate_namespace():
    with pytest.raises(LabError) as exc:
        Topology(["ns1", "ns1"])
    assert exc.value.field == "namespaces[1].name"
    assert "defined twice" in one_line(exc)


def test_veth_end_used_twice():
    with pytest.raises(LabError) as exc:
        Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2"), Veth("ns1", "v3", "ns2", "v2")])
    assert exc.value.field == "veths[1].peer"
    assert "'v2' in 'ns2' is already used by veths[0].peer" in one_line(exc)


def test_bridge_and_veth_share_a_name():
    with pytest.raises(LabError) as exc:
        Topology(["h", "c"], bridges=[Bridge("h", "br0")], veths=[Veth("h", "br0", "c", "eth0")])
    assert exc.value.field == "veths[0].name"


def test_both_ends_the_same():
    with pytest.raises(LabError) as exc:
        Veth("ns1", "v1", "ns1", "v1")
    assert exc.value.field == "Veth.peer"


def test_gateway_in_no_connected_subnet():
    with pytest.raises(LabError) as exc:
        Topology(**two_namespaces(addresses=[Address("ns1", "v1", "10.0.0.1/24")], routes=[Route("ns1", "default", via="192.168.0.1")]))
    assert exc.value.field == "routes[0].via"
    assert one_line(exc) == (
        "routes[0].via: gateway 192.168.0.1 is not on a link of 'ns1' (reachable without a gateway: 10.0.0.0/24); "
        "add an address in its subnet on an up link, or a route to it first (192.168.0.1 dev DEV), or mark the route onlink"
    )


def test_onlink_gateway_needs_no_connected_subnet():
    topo = Topology(**two_namespaces(routes=[Route("ns1", "default", via="10.244.3.1", dev="v1", onlink=True)]))
    assert topo.routes[0].onlink


def test_the_tutorials_own_address_as_gateway_is_accepted():
    # 002 step 11: ip route add default via 172.16.0.2 dev ceth1 (its own address)
    topo = Topology(
        ["container1", "host"],
        veths=[Veth("host", "veth1", "container1", "ceth1")],
        addresses=[Address("container1", "ceth1", "172.16.0.2/24")],
        routes=[Route("container1", "default", via="172.16.0.2", dev="ceth1")],
    )
    assert topo.routes[0].via == "172.16.0.2"


# Calico wires a pod with no subnet at all: eth0 holds a /32, and the gateway
# is reachable only through a device route (`ip route add 169.254.1.1 dev eth0`).
CALICO_POD = dict(
    namespaces=["pod", "node"],
    veths=[Veth("pod", "eth0", "node", "cali1")],
    addresses=[Address("pod", "eth0", "10.65.0.2/32")],
)


def calico_routes(gateway_dev: str | None = "eth0") -> list[Route]:
    return [Route("pod", "169.254.1.1/32", dev="eth0"), Route("pod", "default", via="169.254.1.1", dev=gateway_dev)]


@pytest.mark.parametrize("gateway_dev", ["eth0", None])
def test_a_gateway_behind_a_device_route_is_accepted_without_onlink(gateway_dev):
    topo = Topology(**CALICO_POD, routes=calico_routes(gateway_dev))
    assert topo.routes[1].via == "169.254.1.1" and not topo.routes[1].onlink


def test_the_device_route_must_come_before_the_gateway_that_needs_it():
    with pytest.raises(LabError) as exc:
        Topology(**CALICO_POD, routes=list(reversed(calico_routes())))
    assert exc.value.field == "routes[0].via"
    assert "a route to it first (169.254.1.1 dev eth0)" in one_line(exc)


def test_a_device_route_on_another_link_does_not_carry_the_gateway():
    topo = dict(CALICO_POD, veths=CALICO_POD["veths"] + [Veth("pod", "eth1", "node", "cali2")])
    with pytest.raises(LabError) as exc:
        Topology(**topo, routes=[Route("pod", "169.254.1.1/32", dev="eth1"), Route("pod", "default", via="169.254.1.1", dev="eth0")])
    assert exc.value.field == "routes[1].via"


def test_calico_gateway_model_and_kernel_agree(lab):
    """The model accepts what the kernel accepts, and refuses what it refuses:
    the same routes by Lab.build, by Netns.add_route, and by ip(8) itself."""
    lab.build(Topology(**CALICO_POD, routes=calico_routes()))
    pod = lab.ns("pod")
    assert pod.route_get("192.0.2.1").via == "169.254.1.1"
    assert {str(r) for r in pod.routes()} == {"default via 169.254.1.1 dev eth0", "169.254.1.1/32 dev eth0 scope link"}
    # step by step through Netns, in a fresh pod
    pod.del_route("default")
    pod.del_route("169.254.1.1/32", dev="eth0")
    with pytest.raises(LabError) as exc:
        pod.add_route("default", via="169.254.1.1", dev="eth0")  # no route to the gateway yet
    assert exc.value.field == "via"
    refused = pod.run(["ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"])
    assert refused.returncode != 0 and b"invalid gateway" in refused.stderr  # ip(8) agrees: refused
    pod.add_route("169.254.1.1", dev="eth0")
    pod.add_route("default", via="169.254.1.1", dev="eth0")
    assert pod.route_get("192.0.2.1").via == "169.254.1.1"
    assert lab.topology.routes == Topology(**CALICO_POD, routes=calico_routes()).routes


def test_duplicate_address_and_route():
    with pytest.raises(LabError) as exc:
        Topology(**two_namespaces(addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns1", "lo", "10.0.0.1/32")]))
    assert exc.value.field == "addresses[1].cidr" and "already on 'v1'" in one_line(exc)
    with pytest.raises(LabError) as exc:
        Topology(**two_namespaces(routes=[Route("ns1", "default", dev="v1"), Route("ns1", "0.0.0.0/0", dev="v1")]))
    assert exc.value.field == "routes[1].dst"


def test_route_over_a_down_link():
    with pytest.raises(LabError) as exc:
        Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2", up=False)], routes=[Route("ns1", "default", dev="v1")])
    assert exc.value.field == "routes[0].dev" and "is down" in one_line(exc)


def test_reference_to_a_missing_namespace_or_interface():
    with pytest.raises(LabError) as exc:
        Topology(["ns1"], veths=[Veth("ns1", "v1", "ns2", "v2")])
    assert exc.value.field == "veths[0].peer_ns"
    with pytest.raises(LabError) as exc:
        Topology(**two_namespaces(addresses=[Address("ns1", "eth0", "10.0.0.1/24")]))
    assert exc.value.field == "addresses[0].dev" and "known: ['lo', 'v1']" in one_line(exc)


def test_master_must_be_a_bridge_in_the_same_namespace():
    with pytest.raises(LabError) as exc:
        Topology(["h", "c"], veths=[Veth("h", "veth0", "c", "eth0", master="br0")])
    assert exc.value.field == "veths[0].master" and "Bridge('h', 'br0')" in one_line(exc)


@pytest.mark.parametrize("key", ["kernel.pid_max", "net", "net.ipv4.ip_forward/../x", "vm.swappiness"])
def test_only_namespaced_net_sysctls(key):
    with pytest.raises(LabError) as exc:
        Namespace("ns1", sysctls={key: 1})
    assert exc.value.field == f"Namespace.sysctls[{key!r}]"


def test_from_dict_names_the_entry():
    with pytest.raises(LabError) as exc:
        Topology.from_dict({"namespaces": ["ns1", "ns2"], "veths": [{"ns": "ns1", "name": "v1", "peer_ns": "ns2", "peer": "veth_way_too_long"}]})
    assert one_line(exc).startswith("veths[0].peer: interface name 'veth_way_too_long' is 17 characters")
    with pytest.raises(LabError) as exc:
        Topology.from_dict({"namespaces": ["ns1"], "links": []})
    assert exc.value.field == "topology" and "unknown keys ['links']" in one_line(exc)
    with pytest.raises(LabError) as exc:
        Topology.from_dict({"addresses": [{"ns": "a", "dev": "v1", "cidr": "10.0.0.1/24", "colour": "red"}]})
    assert exc.value.field == "addresses[0]" and "colour" in one_line(exc)


def test_round_trip_through_dict():
    topo = Topology(
        [Namespace("ns1", lo_up=True, sysctls={"net.ipv4.ip_forward": 1}), "ns2"],
        veths=[Veth("ns1", "v1", "ns2", "v2")],
        addresses=[Address("ns1", "v1", "10.0.0.1/24")],
        routes=[Route("ns2", "default", dev="v2")],
    )
    assert Topology.from_dict(topo.to_dict()) == topo


def test_invalid_lab_never_reaches_the_kernel(lab):
    bad = dict(namespaces=["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")])
    with pytest.raises(LabError):
        lab.build(Topology(**bad, routes=[Route("ns1", "default", via="10.9.9.9")]))
    assert lab.namespaces == []  # nothing was created
    ns1 = lab.add_namespace("ns1")
    with pytest.raises(LabError) as exc:
        ns1.add_route("default", via="10.9.9.9")
    assert exc.value.field == "via"
    assert ns1.routes() == []
