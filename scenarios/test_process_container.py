"""Tutorials 003 and 004: a running process as the container, networked from outside.

      host (played by a lab namespace)
      docker0 172.17.42.1/16
        |-- h<PID> (master docker0)          <-- veth -->  eth0 172.17.42.3/16  \\
        `-- veth-ns-<PID> (master docker0)   <-- veth -->  eth1 172.17.42.4/16   > `unshare --net sleep`, PID <PID>
                                                                               /   exposed as ns-<PID>

003 starts a process in new namespaces (`unshare`), finds its PID, and from
outside gives it a veth: `ip link set c$CPID netns $CPID`, then inside renames
it eth0, addresses it and routes via the bridge. 004 exposes a running
container's namespace to `ip netns` by its PID (`ln -s /proc/PID/ns/net
/var/run/netns/ns-PID`) and adds a second interface while it runs: created
with a temporary name, moved in, then down, renamed eth1, up.
"""

from __future__ import annotations

import os
import shutil

import pytest

from nslab import Address, Bridge, Topology
from nslab.kernel.process import wait_until

pytestmark = pytest.mark.needs("bridge")

BRIDGE = Topology(["host"], bridges=[Bridge("host", "docker0")], addresses=[Address("host", "docker0", "172.17.42.1/16")])


def start_container(lab):
    """$ unshare --net sleep 600 &   (in the host) ; CPID=$(pidof sleep)"""
    lab.build(BRIDGE)
    host = lab.ns("host")
    proc = host.spawn(["unshare", "--net", "sleep", "600"])
    sleep = os.path.realpath(shutil.which("sleep"))
    # the PID runs setpriv, then unshare, then sleep (each execs the next): wait for the last
    wait_until(lambda: _exe(proc.pid) == sleep or not proc.running(), timeout=5, what=f"PID {proc.pid} running {sleep}")
    assert proc.running(), proc.stop() and proc.output()
    return host, proc


def expose(lab, pid: int):
    """$ ln -s /proc/$CPID/ns/net /var/run/netns/ns-$CPID"""
    return lab.adopt_namespace(f"ns-{pid}", f"/proc/{pid}/ns/net")


def plug_eth0(host, container, pid: int) -> None:
    """003: outside: ip link add name h$CPID type veth peer name c$CPID ; ip link set c$CPID netns $CPID ;
    ip link set h$CPID master docker0 up ; inside: ip link set lo up ; ip link set c$CPID name eth0 up ;
    ip addr add 172.17.42.3/16 dev eth0 ; ip route add default via 172.17.42.1"""
    host.add_veth(f"h{pid}", f"c{pid}")
    host.set_link(f"c{pid}", netns=container)
    host.set_link(f"h{pid}", master="docker0", up=True)
    container.set_link("lo", up=True)
    container.set_link(f"c{pid}", name="eth0", up=True)
    container.add_address("172.17.42.3/16", dev="eth0")
    container.add_route("default", via="172.17.42.1")


def plug_eth1(host, container, pid: int) -> None:
    """004: ip link add eth0-ns-$PID type veth peer name veth-ns-$PID ; ip link set eth0-ns-$PID netns ns-$PID ;
    inside: ip link set eth0-ns-$PID down ; ip link set eth0-ns-$PID name eth1 ; ip link set eth1 up ;
    outside: ip link set veth-ns-$PID master docker0 up"""
    temporary = f"eth0-ns-{pid}"
    host.add_veth(temporary, f"veth-ns-{pid}")
    host.set_link(temporary, netns=container)
    container.set_link(temporary, up=False)
    container.set_link(temporary, name="eth1")
    container.set_link("eth1", up=True)
    host.set_link(f"veth-ns-{pid}", master="docker0", up=True)


def _exe(pid: int) -> str | None:
    try:
        return os.path.realpath(f"/proc/{pid}/exe", strict=True)
    except OSError:
        return None


def _inode(path: str) -> int:
    return os.stat(path).st_ino


def test_01_the_process_runs_in_a_network_namespace_of_its_own(lab):
    host, proc = start_container(lab)
    assert _inode(f"/proc/{proc.pid}/ns/net") != _inode(host.path)


def test_02_its_namespace_is_exposed_by_pid(lab):
    # $ ip netns   ->   ns-7863 ;  ip netns exec ns-7863 ip link
    _, proc = start_container(lab)
    container = expose(lab, proc.pid)
    assert f"ns-{proc.pid}" in os.listdir(lab.kernel.sandbox.netns_dir)
    assert _inode(container.path) == _inode(f"/proc/{proc.pid}/ns/net")
    assert container.link_names() == ["lo"]  # a new namespace: only a loopback, down
    # `ip netns exec` enters the very namespace the process runs in
    inside = container.run(["readlink", "/proc/self/ns/net"])
    assert inside.stdout.decode().strip() == os.readlink(f"/proc/{proc.pid}/ns/net")


def test_03_a_veth_moved_in_and_renamed_eth0_reaches_the_bridge(lab):
    host, proc = start_container(lab)
    container = expose(lab, proc.pid)
    plug_eth0(host, container, proc.pid)
    assert container.link_names() == ["eth0", "lo"]
    assert host.link(f"h{proc.pid}").master == "docker0"
    assert container.ping("172.17.42.1").replied
    result = host.ping("172.17.42.3")
    assert result.replied, result
    assert ("host", f"h{proc.pid}", "out") in {(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")}


def test_04_a_second_interface_added_while_it_runs_becomes_eth1(lab):
    host, proc = start_container(lab)
    container = expose(lab, proc.pid)
    plug_eth0(host, container, proc.pid)
    plug_eth1(host, container, proc.pid)
    assert container.link_names() == ["eth0", "eth1", "lo"]
    eth0, eth1 = container.link("eth0"), container.link("eth1")
    assert eth1.state == "UP" and eth1.mac != eth0.mac
    assert host.link(f"veth-ns-{proc.pid}").master == "docker0"
    assert eth1.peer_index == host.link(f"veth-ns-{proc.pid}").index
    assert proc.running()  # all of it done to a live process


def test_05_eth1_addressed_and_probed_through_the_bridge(lab):
    # only the 004 interface here, so 172.17.42.4 can be on no other link
    host, proc = start_container(lab)
    container = expose(lab, proc.pid)
    plug_eth1(host, container, proc.pid)
    container.add_address("172.17.42.4/16", dev="eth1")
    result = host.ping("172.17.42.4")
    assert result.replied, result
    assert ("host", f"veth-ns-{proc.pid}", "out") in {(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")}
    assert container.arp("172.17.42.1", dev="eth1").mac == host.link("docker0").mac
    learned = {e.mac: e.dev for e in host.fdb("docker0") if not e.permanent}
    assert learned.get(container.link("eth1").mac) == f"veth-ns-{proc.pid}"
