"""Tutorial 003's `ping 4.2.2.1` from a container: out through the docker0
gateway, forwarded and masqueraded by the host.

      container1                  host                                 outside
      eth0 172.17.0.2/16 <-veth-> veth1 (master docker0)
      default via 172.17.0.1      docker0 172.17.0.1/16
                                  eth0 203.0.113.2/24  <-- veth -->  eth0 203.0.113.1/24
                                                                     (no route to 172.17.0.0/16,
                                                                      as on the Internet)

"outside" plays the Internet with a documentation address (RFC 5737) and is
a lab namespace like the others: no packet leaves the lab. The container
reaches it only when the host forwards (ip_forward=1) and rewrites the
container's private source to its own address (nftables masquerade, applied
with `nft -f -` inside the host namespace); outside then sees 203.0.113.2.
"""

from __future__ import annotations

import shutil
import socket

import pytest

from nslab import Address, Bridge, Cause, Namespace, Outcome, Route, Topology, Veth, Where

OUTSIDE = "203.0.113.1"
HOST_PUBLIC = "203.0.113.2"
MASQUERADE = """
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 172.17.0.0/16 oifname "eth0" masquerade
    }
}
"""

pytestmark = [pytest.mark.needs("bridge"), pytest.mark.skipif(shutil.which("nft") is None, reason="nft (package nftables) is not installed; ./run install adds it")]


def docker_host(*, ip_forward: int) -> Topology:
    return Topology(
        [Namespace("host", sysctls={"net.ipv4.ip_forward": ip_forward}), Namespace("container1"), Namespace("outside")],
        veths=[Veth("host", "veth1", "container1", "eth0", master="docker0"), Veth("host", "eth0", "outside", "eth0")],
        bridges=[Bridge("host", "docker0")],
        addresses=[
            Address("host", "docker0", "172.17.0.1/16"),
            Address("host", "eth0", f"{HOST_PUBLIC}/24"),
            Address("container1", "eth0", "172.17.0.2/16"),
            Address("outside", "eth0", f"{OUTSIDE}/24"),
        ],
        routes=[Route("container1", "default", via="172.17.0.1", dev="eth0")],
    )


def masquerade(host) -> None:
    """$ nft -f - <<< 'table ip nat { chain postrouting { ... masquerade } }'   (in the host)"""
    host.run(["nft", "-f", "-"], input=MASQUERADE.encode(), check=True)


def sources_seen(result, ns: str) -> set[str]:
    """The IPv4 source of every echo request that arrived in *ns*."""
    return {socket.inet_ntoa(s.frame[26:30]) for s in result.evidence.seen(ns=ns, direction="in", kind="echo-request")}


def test_01_without_forwarding_the_host_drops_it(lab):
    lab.build(docker_host(ip_forward=0))
    result = lab.ns("container1").ping(OUTSIDE)
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.FORWARDING_OFF and result.where == Where("host", "docker0"), result
    assert "ip_forward=0" in result.explanation
    assert result.evidence.delta("host", "Ip.InAddrErrors") == 1
    assert not result.evidence.seen(ns="outside")


def test_02_forwarded_without_nat_it_arrives_with_a_source_outside_cannot_answer(lab):
    lab.build(docker_host(ip_forward=1))
    result = lab.ns("container1").ping(OUTSIDE)
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.NO_RETURN_ROUTE, result
    assert "outside" in result.explanation and "172.17.0.2" in result.explanation
    assert sources_seen(result, "outside") == {"172.17.0.2"}  # the private address went out as it was


def test_03_forwarding_and_masquerade_reach_the_outside(lab):
    # $ sysctl -w net.ipv4.ip_forward=1 ; nft ... masquerade ; container$ ping 4.2.2.1
    lab.build(docker_host(ip_forward=1))
    masquerade(lab.ns("host"))
    result = lab.ns("container1").ping(OUTSIDE)
    assert result.replied, result
    assert sources_seen(result, "outside") == {HOST_PUBLIC}  # outside sees the host, not the container


def test_04_a_tcp_server_outside_sees_the_hosts_address(lab):
    lab.build(docker_host(ip_forward=1))
    masquerade(lab.ns("host"))
    result = lab.ns("container1").chat(server="outside", dst=OUTSIDE, port=8080)
    assert result.connected, result
    assert result.client_address == HOST_PUBLIC


def test_05_masquerade_without_forwarding_is_not_enough(lab):
    lab.build(docker_host(ip_forward=0))
    masquerade(lab.ns("host"))
    result = lab.ns("container1").ping(OUTSIDE)
    assert result.outcome is Outcome.TIMEOUT and result.decided_early, result
    assert result.cause is Cause.FORWARDING_OFF and "ip_forward=0" in result.explanation, result
    assert result.where == Where("host", "docker0") and result.evidence.delta("host", "Ip.InAddrErrors") == 1
    assert not result.evidence.seen(ns="outside")
