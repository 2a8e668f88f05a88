"""Tutorial 001 "network namespaces", sections 4-5: root namespace <-> blue_ns.

      lan                       host (the VM's root namespace)          blue_ns
      eth0 192.168.0.1/24 ---- enp0s8 192.168.0.194/24
                               veth_root_ns 10.0.0.1/24 ---------- veth_blue_ns 10.0.0.2/24
                               python3 -m http.server 8080         python3 -m http.server 8080

The tutorial creates `veth_root`/`veth_ns_blue` and then uses
`veth_root_ns`/`veth_blue_ns`; the latter names are used here. blue_ns
reaches the host's other address (192.168.0.194) only once it has
`default via 10.0.0.1`.
"""

from __future__ import annotations

import os
import sys

from nslab import Address, Cause, Namespace, Outcome, Topology, Veth

VM = Topology(
    [Namespace("host", lo_up=True), Namespace("lan", lo_up=True)],
    veths=[Veth("host", "enp0s8", "lan", "eth0")],
    addresses=[Address("host", "enp0s8", "192.168.0.194/24"), Address("lan", "eth0", "192.168.0.1/24")],
)


def web_server(ns):
    """$ python3 -m http.server 8080 (in that namespace)"""
    return ns.serve([sys.executable, "-m", "http.server", "8080", "--directory", os.path.dirname(__file__)], 8080)


def wired(lab):
    """Section 4: the veth pair, one end moved to blue_ns, both up, addressed."""
    lab.build(VM)
    host = lab.ns("host")
    blue = lab.add_namespace("blue_ns", lo_up=True)
    host.add_veth("veth_root_ns", peer="veth_blue_ns")
    host.set_link("veth_root_ns", up=True)
    host.set_link("veth_blue_ns", netns=blue)
    blue.set_link("veth_blue_ns", up=True)
    host.add_address("10.0.0.1/24", dev="veth_root_ns")
    blue.add_address("10.0.0.2/24", dev="veth_blue_ns")
    return host, blue


def default_route(lab):
    """Section 5: sudo ip netns exec blue_ns ip route add default via 10.0.0.1 (the final state)"""
    host, blue = wired(lab)
    blue.add_route("default", via="10.0.0.1")
    return host, blue


def test_4_veth_pair_starts_down(lab):
    lab.build(VM)
    host = lab.ns("host")
    host.add_veth("veth_root_ns", peer="veth_blue_ns")
    assert host.link("veth_root_ns").state == host.link("veth_blue_ns").state == "DOWN"


def test_4_web_server_in_root_reachable_from_blue_ns(lab):
    host, blue = wired(lab)
    web_server(host)
    result = blue.http_get("10.0.0.1", 8080)
    assert result.replied and result.status == 200, result


def test_4_web_server_in_blue_ns_reachable_from_root(lab):
    host, blue = wired(lab)
    web_server(blue)
    result = host.http_get("10.0.0.2", 8080)
    assert result.replied and result.status == 200, result


def test_5_hosts_own_address_unreachable_without_a_route(lab):
    host, blue = wired(lab)
    web_server(host)
    assert [str(r) for r in blue.routes()] == ["10.0.0.0/24 dev veth_blue_ns proto kernel scope link src 10.0.0.2"]
    result = blue.http_get("192.168.0.194", 8080)
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH", result
    assert result.cause is Cause.NO_ROUTE_AT_SENDER
    assert "blue_ns has no route to 192.168.0.194" in result.explanation


def test_5_default_via_10_0_0_1_reaches_the_hosts_address(lab):
    # $ sudo ip netns exec blue_ns ip route add default via 10.0.0.1
    host, blue = default_route(lab)
    web_server(host)
    assert blue.route_get("192.168.0.194").via == "10.0.0.1"
    result = blue.http_get("192.168.0.194", 8080)
    assert result.replied and result.status == 200, result
