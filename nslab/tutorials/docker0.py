"""Containers on Docker's default bridge, at any size: tutorials 004 and 001's docker0 lab.

      host
      docker0 172.17.0.1/16  (a Linux bridge)
        |-- veth1 (master docker0) <-- veth --> container1: eth0 172.17.0.2/16
        |-- veth2 (master docker0) <-- veth --> container2: eth0 172.17.0.3/16
        `-- vethN (master docker0) <-- veth --> containerN: eth0 172.17.0.0/16's address N+1
      every container: default via 172.17.0.1 dev eth0

The bridge scenario's lab (scenarios/test_bridge_containers.py's docker0_with(n,
quiet=True)), beyond 253 containers too: container i takes 172.17.0.0/16's
address i+1 (container 254 is 172.17.0.255, container 255 is 172.17.1.0).

IPv6 is off in the containers, as Docker (26 and later) turns it off on a
container's interfaces on an IPv4-only network such as docker0 (here for the
whole namespace). With it on, every fresh eth0 sends duplicate address
detection, MLD reports and router solicitations (without end, backing off:
router_solicitations=-1), and docker0 floods each to every port: right after a
thousand containers were built, that flooding overflowed the CPU's backlog
(CPU_BACKLOG, about 20,000 drops a second of router solicitations for more than
a minute) and lost the first probes' packets with them.

    topo = docker0(1000)                        # Lab(topo): ./run bench --scale builds it
    {container(i): address(i) for i in ...}     # what to ping
"""

from __future__ import annotations

import ipaddress

from nslab.model.topology import Address, Bridge, Namespace, Route, Topology, Veth

DOCKER0 = ipaddress.ip_network("172.17.0.0/16")
MOST = DOCKER0.num_addresses - 3  # containers the /16 holds: not its network, gateway or broadcast address
IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}


def container(i: int) -> str:
    return f"container{i}"


def address(i: int) -> str:
    """Container i's address: 172.17.0.0/16's address i+1."""
    return str(DOCKER0[i + 1])


def docker0(n: int) -> Topology:
    """n containers on docker0 (1 to 65533)."""
    if not 1 <= n <= MOST:
        raise ValueError(f"{n} containers: docker0's /16 holds 1 to {MOST}")
    gateway = str(DOCKER0[1])
    return Topology(
        [Namespace("host")] + [Namespace(container(i), sysctls=IPV6_OFF) for i in range(1, n + 1)],
        veths=[Veth("host", f"veth{i}", container(i), "eth0", master="docker0") for i in range(1, n + 1)],
        bridges=[Bridge("host", "docker0")],
        addresses=[Address("host", "docker0", f"{gateway}/16")] + [Address(container(i), "eth0", f"{address(i)}/16") for i in range(1, n + 1)],
        routes=[Route(container(i), "default", via=gateway, dev="eth0") for i in range(1, n + 1)],
    )


__all__ = ["DOCKER0", "address", "container", "docker0"]
