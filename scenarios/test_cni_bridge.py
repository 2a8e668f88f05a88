"""Tutorial 004 "Experiments with container networking": the node's bridge, wired by CNI.

      outside  eth0 203.0.113.1/24            (the "internet": a lab namespace, never the real uplink)
                 |  veth
      host     uplink 203.0.113.2/24, ip_forward=1
               cni0 10.22.0.1/24               bridge plugin, isGateway; ipMasq -> MASQUERADE in host only
               |-- veth~c1 ---- c1  eth0 10.22.0.2/24, default via 10.22.0.1, lo up (loopback plugin)
               |-- veth~c2 ---- c2  eth0 10.22.0.3/24
               '-- veth~c3 ---- c3  eth0 10.22.0.4/24

The reference plugins (`bridge` with `host-local` IPAM, `loopback`) run as a
container runtime runs them, inside the lab's "host"; the same lab is also
built by nslab's own builder (veth-c1... instead of random veth names, and a
hand-written MASQUERADE rule), and both builds must pass the same checks and
hold the same state. Each test rebuilds its lab, so order does not matter.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nslab import Cause, Lab, Namespace, Outcome
from nslab.kernel.process import wait_until
from nslab.tutorials.cni import CniError, Runtime, unavailable
from nslab.tutorials.podnet import PodNetwork, differences, lab_state

pytestmark = [pytest.mark.needs("bridge"), pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]

NET = PodNetwork(("c1", "c2", "c3"))
ALL = (NET.host, *NET.containers)


@pytest.fixture
def cni(lab, record_property):
    with Runtime(lab, host=NET.host) as runtime:
        yield runtime
        record_property("cni_plugins", runtime.note())  # which plugin binaries built this lab


def host_cni_dirs():
    """The host's own CNI directories, as (path, mtime) lists: a lab must never touch them."""
    return {
        top: sorted((str(p), p.stat().st_mtime_ns) for p in [Path(top), *Path(top).rglob("*")]) if os.path.exists(top) else None
        for top in ("/etc/cni", "/var/lib/cni", "/opt/cni")
    }


def wire(lab, cni):
    """The runtime starts c1, c2, c3: loopback ADD, then bridge ADD, for each."""
    lab.build(NET.nodes())
    return cni.attach(NET)


def build(how, lab, cni):
    """The same lab, built by the CNI plugins or by nslab's builder."""
    if how == "cni":
        wire(lab, cni)
    else:
        lab.build(NET.topology())
        lab.ns(NET.host).run(NET.nat_rule(), check=True)


def test_01_add_gives_each_container_the_next_address_on_cni0(lab, cni):
    results = wire(lab, cni)
    for c in NET.containers:
        assert [ip["address"] for ip in results[c]["ips"]] == [NET.address(c)]
        assert {a.cidr for a in lab.ns(c).addresses("eth0")} >= {NET.address(c)}
    host = lab_state(lab, ALL, NET.containers)[NET.host]
    assert "cni0 10.22.0.1/24 scope universe" in host["addresses"]  # isGateway: the gateway lives on the bridge
    assert {line for line in host["links"] if "master cni0" in line} == {f"veth~{c} veth UP mtu 1500 master cni0" for c in NET.containers}
    assert cni.reservations(NET.name) == ["10.22.0.2", "10.22.0.3", "10.22.0.4"]


def test_02_the_same_lab_from_builder_and_plugins_holds_the_same_state(nslab_sandbox, record_property):
    """Links (kind, state, MTU, bridge port), addresses, routes and ip_forward, field by field.

    One lab after the other: both use the tutorial's names in this process's sandbox."""
    with Lab(NET.topology()) as built:
        by_builder = lab_state(built, ALL, NET.containers)
    with Lab() as wired, Runtime(wired, host=NET.host) as runtime:
        wire(wired, runtime)
        by_cni = lab_state(wired, ALL, NET.containers)
        record_property("cni_plugins", runtime.note())
    diff = differences(by_builder, by_cni, ("builder", "cni"))
    assert diff == [], "the bridge plugin built another lab than nslab's builder:\n" + "\n".join(diff)


@pytest.mark.parametrize("how", ["cni", "builder"])
def test_03_containers_reach_each_other(lab, cni, how):
    build(how, lab, cni)
    for src, dst in [("c1", "c2"), ("c2", "c3"), ("c3", "c1")]:
        result = lab.ns(src).ping(NET.address(dst).split("/")[0])
        assert result.replied, result


@pytest.mark.parametrize("how", ["cni", "builder"])
def test_04_containers_reach_their_gateway(lab, cni, how):
    build(how, lab, cni)
    for c in NET.containers:
        assert lab.ns(c).route_get("203.0.113.1").via == NET.gateway
        result = lab.ns(c).ping(NET.gateway)
        assert result.replied, result


@pytest.mark.parametrize("how", ["cni", "builder"])
def test_05_egress_leaves_through_nat_as_the_host(lab, cni, how):
    # c1$ nc 203.0.113.1 8080: the outside sees the host's uplink address, not 10.22.0.2
    build(how, lab, cni)
    result = lab.ns("c1").chat(server=NET.outside, dst="203.0.113.1", port=8080)
    assert result.connected, result
    assert result.client_address == "203.0.113.2"


def test_06_nat_rules_live_only_in_the_labs_host(lab, cni):
    wire(lab, cni)
    rules = cni.nat_rules(NET.host)
    for c in NET.containers:
        ip = NET.address(c).split("/")[0]
        assert any(r.startswith(f"-A POSTROUTING -s {ip}/32 ") for r in rules), rules
    assert sum("-j MASQUERADE" in r for r in rules) == len(NET.containers)
    for ns in (NET.outside, *NET.containers):
        assert cni.nat_rules(ns) == [], ns
    sandbox = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=True)  # this process's own namespace
    assert [r for r in sandbox.stdout.splitlines() if not r.startswith("-P ")] == []


def test_07_without_ipmasq_the_outside_cannot_answer(lab, cni):
    """The negative control: the same ADDs with ipMasq off; the echo reaches
    the outside from 10.22.0.2, which it has no route back to."""
    lab.build(NET.nodes())
    conf = NET.conflist()
    conf["plugins"][0]["ipMasq"] = False
    cni.install(conf)
    cni.add(NET.name, "c1")
    assert cni.nat_rules() == []
    result = lab.ns("c1").ping("203.0.113.1")
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_RETURN_ROUTE
    assert "outside has no route back to 10.22.0.2" in result.explanation


def test_08_check_passes_and_notices_a_removed_address(lab, cni):
    wire(lab, cni)
    for c in NET.containers:
        cni.check(NET.name, c)
        cni.check("lo", c, ifname="lo")
    lab.ns("c2").del_address(NET.address("c2"), dev="eth0")
    with pytest.raises(CniError) as failed:
        cni.check(NET.name, "c2")
    assert failed.value.code == 999  # the plugin's own error, passed on whole and on one line
    assert failed.value.message == "bridge CHECK for 'c2' failed with CNI error 999: Failed to match addr 10.22.0.3/24 on interface eth0"


def test_09_del_leaves_only_the_shared_bridge(lab, cni):
    lab.build(NET.nodes())
    before, host_dirs = lab_state(lab, ALL, NET.containers), host_cni_dirs()
    cni.attach(NET)
    cni.detach(NET)
    after = lab_state(lab, ALL, NET.containers)
    # Two things stay, by design, and nothing else: the bridge plugin never deletes the bridge
    # (other containers may share it), so cni0 keeps its gateway address, with no ports left; and
    # the kernel gave lo 127.0.0.1/8 when the loopback plugin brought it up and keeps it now that
    # DEL brought lo down again (`ip link set lo down` does the same; ::1 goes, 127.0.0.1 stays).
    assert differences(before, after, ("before", "after")) == [
        *(f"{c} addresses: only in after: lo 127.0.0.1/8 scope host" for c in NET.containers),
        "host addresses: only in after: cni0 10.22.0.1/24 scope universe",
        "host links: only in after: cni0 bridge NO-CARRIER mtu 1500",
        "host routes: only in after: 10.22.0.0/24 dev cni0 proto kernel scope link src 10.22.0.1 linkdown",
    ]
    assert not any("veth" in link for ns in after.values() for link in ns["links"] if "uplink" not in link)
    assert cni.reservations(NET.name) == []
    assert cni.nat_rules() == []
    assert host_cni_dirs() == host_dirs  # the plugins' net.d and IPAM data stayed in the lab's own directory


def test_10_a_second_del_is_harmless(lab, cni):
    wire(lab, cni)
    cni.detach(NET)
    after_first = lab_state(lab, ALL, NET.containers)
    cni.detach(NET)  # the spec: DEL of something already gone must succeed
    assert differences(after_first, lab_state(lab, ALL, NET.containers)) == []
    assert cni.reservations(NET.name) == [] and cni.nat_rules() == []


# -- dual stack: host-local with an IPv6 range beside the IPv4 one -----------------------------
#      cni0 10.22.0.1/24 fd00:22::1/64;  cN eth0 10.22.0.(N+1)/24 fd00:22::(N+1)/64, default via both gateways
NO_DAD = {"net.ipv6.conf.default.accept_dad": 0}
DUAL = {
    "cniVersion": "1.0.0",
    "name": "dualnet",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipMasq": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": NET.subnet, "gateway": NET.gateway}], [{"subnet": "fd00:22::/64", "gateway": "fd00:22::1"}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
            },
        }
    ],
}


def test_11_dual_stack_host_local_gives_each_container_an_ipv6_address_too(lab, cni):
    # as in the other dual-stack scenarios, each namespace takes accept_dad=0 for the links made in
    # it (cni0, the containers' eth0): an address the plugin adds is usable once the kernel has it
    nodes = NET.nodes()
    lab.build(nodes.replace(namespaces=tuple(Namespace(n.name, n.lo_up, {**dict(n.sysctls), **NO_DAD}) for n in nodes.namespaces)))
    cni.install(DUAL)
    results = {c: cni.add("dualnet", c) for c in NET.containers[:2]}
    assert [ip["address"] for ip in results["c1"]["ips"]] == [NET.address("c1"), "fd00:22::2/64"], results["c1"]
    assert sorted(cni.reservations("dualnet")) == sorted(["10.22.0.2", "10.22.0.3", "fd00:22::2", "fd00:22::3"])
    c1 = lab.ns("c1")
    # the plugin settles the containers' DAD, not the bridge's: its gateway address answers once the
    # kernel shows it usable (at once here; after DAD, a second or two, where the node does DAD)
    wait_until(lambda: "tentative" not in lab.ns("host").run(["ip", "-6", "-o", "addr", "show", "dev", "cni0"]).stdout.decode(), 10.0, "cni0's fd00:22::1 done with DAD")
    for dst in ("10.22.0.3", "fd00:22::3", NET.gateway, "fd00:22::1"):
        result = c1.ping(dst)
        assert result.replied, result
    assert c1.route_get("2001:db8::7").via == "fd00:22::1"  # the IPv6 default route host-local returned
    for c in NET.containers[:2]:  # the chat's sockets close after DEL took their path: let their FIN give up at once
        lab.ns(c).set_sysctl("net.ipv4.tcp_orphan_retries", 1)
    chat = c1.chat(lab.ns("c2"), "fd00:22::3", 8080)
    assert chat.connected and chat.client_address == "fd00:22::2", chat
    for c in NET.containers[:2]:
        cni.delete("dualnet", c)
    assert cni.reservations("dualnet") == []
