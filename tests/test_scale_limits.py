"""Large labs meet no ceiling of nslab's own (issue 17): descriptors, netlink
buffers, the neighbour table, batches; and where the machine's limit is hit,
one line names it and the fix. The thousand-container case is bench/scale.py's
(./run bench --scale), not the suite's."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap

import pytest

from nslab import Address, Bridge, Lab, Namespace, Route, Topology, Veth
from nslab.kernel import limits, rtnl
from nslab.kernel.netlink import KernelError
from nslab.lab.sweep import all_pairs

pytestmark = pytest.mark.needs("bridge")


def bridge_lab(n: int) -> Topology:
    """n containers on br0 in `host`, 10.9.0.0/16 (beyond one /24)."""
    host = lambda i: f"10.9.{(i + 1) // 256}.{(i + 1) % 256}"  # noqa: E731
    return Topology(
        [Namespace("host")] + [Namespace(f"c{i}") for i in range(1, n + 1)],
        veths=[Veth("host", f"p{i}", f"c{i}", "eth0", master="br0") for i in range(1, n + 1)],
        bridges=[Bridge("host", "br0")],
        addresses=[Address("host", "br0", "10.9.0.1/16")] + [Address(f"c{i}", "eth0", f"{host(i)}/16") for i in range(1, n + 1)],
        routes=[Route(f"c{i}", "default", via="10.9.0.1") for i in range(1, n + 1)],
    )


def hosts_of(lab: Lab, n: int) -> dict:
    return {lab.ns(f"c{i}"): f"10.9.{(i + 1) // 256}.{(i + 1) % 256}" for i in range(1, n + 1)}


def left_behind(lab: Lab) -> list:
    """Neighbour entries a sweep may have left (multicast NOARP entries are the kernel's own)."""
    return [(ns.name, n) for ns in lab.namespaces for n in ns.neighbours() if n.state != "NOARP"]


def in_child(code: str) -> subprocess.CompletedProcess:
    """*code* in a fresh interpreter (its own sandbox; its limits are its own)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False)


def test_a_large_lab_holds_two_descriptors_per_namespace_and_captures_only_where_probes_watch(lab):
    before = limits.descriptors_open()
    lab.build(bridge_lab(60))
    assert limits.descriptors_open() - before <= 2 * 61 + 4  # an fd and a netlink socket each
    assert not any(ns.watcher.opened for ns in lab.namespaces)
    result = lab.ns("c1").ping("10.9.0.3")
    assert result.replied, result
    opened = sorted(ns.name for ns in lab.namespaces if ns.watcher.opened)
    assert opened == ["c1", "c2", "host"], opened  # the probe's way: sender, bridge host (first hop), target
    assert ("c2", "eth0", "in") in {(s.ns, s.dev, s.direction) for s in result.evidence.seen(kind="echo-request")}


def test_the_soft_descriptor_limit_is_raised_and_a_short_hard_limit_is_named():
    done = in_child("""
        import resource
        from nslab import Lab, Topology
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))
        with Lab(Topology([f"n{i}" for i in range(60)])) as lab:   # 3 per namespace needed: more than 64
            print("soft", resource.getrlimit(resource.RLIMIT_NOFILE)[0], len(lab.namespaces))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        try:
            Lab(Topology([f"m{i}" for i in range(200)])).open()
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "soft 4096 60"
    assert lines[1].startswith("LimitReached a lab of 200 namespaces needs about ") and "RLIMIT_NOFILE allows 256 (hard limit)" in lines[1]
    assert "ulimit -n" in lines[1] and "LimitNOFILE=" in lines[1] and "\n" not in lines[1]


def test_namespace_deaths_are_counted_from_a_dump_when_their_events_overflow(lab, monkeypatch):
    lab.build(bridge_lab(40))
    kernel = lab.kernel
    names = [ns.name for ns in lab.namespaces]
    real = rtnl.RtnlSocket.events
    told = []

    def overflowing(sock):
        if sock is kernel._nsid_events and not told:
            told.append(True)
            raise rtnl.NetlinkError(errno.ENOBUFS, "lost")  # as the kernel says when its announcements did not fit
        return real(sock)

    monkeypatch.setattr(rtnl.RtnlSocket, "events", overflowing)
    handles = [ns.handle for ns in lab.namespaces]
    nsids = {kernel._nsid(h.fd) for h in handles}  # the ids remove_namespaces listens for (given here first)
    lab.close()
    assert told
    assert not nsids & kernel_ids(lab)
    assert not any(name in names for name in lab.kernel.sandbox_link_names())


def kernel_ids(lab: Lab) -> set[int]:
    return lab.kernel._nsids()


def test_a_batch_of_a_thousand_refusals_is_read_back_whole(lab):
    lab.build(Topology(["a"]))
    h = lab.ns("a").handle
    doomed = [(rtnl.RTM_DELADDR, 0, rtnl.ifaddrmsg(2, 32, 1) + rtnl.ip(rtnl.IFA_LOCAL, f"10.1.{i // 250}.{i % 250 + 1}")) for i in range(1000)]
    errors = h.rtnl.batch(doomed)
    assert len(errors) == 1000 and all(e is not None and e.code == errno.EADDRNOTAVAIL for e in errors)
    refused = h.rtnl.quiet([(kind, flags, payload) for kind, flags, payload in doomed[:500]])
    assert [i for i, _ in refused] == list(range(500))


def test_a_batch_names_the_command_the_kernel_refused(lab):
    lab.build(Topology(["a"], addresses=[], routes=[]))
    k, h = lab.kernel, lab.ns("a").handle
    with pytest.raises(KernelError, match=r"^ip -n a addr del 10\.7\.7\.7/24 dev lo: .*EADDRNOTAVAIL"):
        k.apply(h, [k.address(h, "lo", "10.6.6.6/24"), k.address(h, "lo", "10.7.7.7/24", add=False)])
    assert "10.6.6.6/24" in [a.cidr for a in lab.ns("a").addresses("lo")]  # the one before it was applied


def test_a_sweep_of_a_large_segment_resolves_arp_once_per_host_and_leaves_nothing_behind(lab):
    n = 130  # more than 64 hosts on one segment
    lab.build(bridge_lab(n))
    ranges = {ns.name: ns.sysctl("net.ipv4.ping_group_range") for ns in lab.namespaces}
    sweep = all_pairs(hosts_of(lab, n))
    assert sweep.ok and sweep.pairs == n * (n - 1) and sweep.lost == 0, sweep
    assert sweep.arp == "once" and "ARP resolved once per host" in str(sweep)
    assert not left_behind(lab), "a permanent entry or a learnt one was left behind"
    assert {ns.name: ns.sysctl("net.ipv4.ping_group_range") for ns in lab.namespaces} == ranges
    # the evidence of a probe after the sweep is whole: its captures take frames again
    result = lab.ns("c7").ping("10.9.0.40")
    assert result.replied and result.evidence.seen(ns="c39", kind="echo-request"), result


def test_a_sweep_keeps_within_its_share_of_the_neighbour_table(lab, monkeypatch):
    # a small share forces many rounds: every pair still answered, each round's neighbours given back
    import nslab.lab.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "SHARE", 0.0)  # the floor: 64 entries at once
    lab.build(bridge_lab(30))
    sweep = all_pairs(hosts_of(lab, 30), arp="each")
    assert sweep.ok and sweep.pairs == 870 and sweep.arp == "each", sweep
    assert sweep.rounds >= 870 * 2 // 64
    assert not left_behind(lab)


def test_a_pair_that_fails_among_many_is_the_only_failure(lab):
    # an ICMP error for one request leaves its errno on the socket; the next request is not blamed for it
    lab.build(bridge_lab(20).replace(routes=()))
    c1 = lab.ns("c1")
    c1.add_route("10.99.0.0/16", via="10.9.0.1")  # the host does not forward: nothing comes back
    hosts = hosts_of(lab, 20)
    sweep = all_pairs(hosts)
    assert sweep.ok, sweep
    from nslab.lab.sweep import ping_pairs

    pairs = [(c1, "10.99.0.1")] + [(c1, dst) for ns, dst in hosts.items() if ns is not c1]
    sweep = ping_pairs(pairs, timeout=0.3, explain=0)
    assert sweep.failures == [("c1", "10.99.0.1")], sweep


def test_the_neighbour_limit_is_read_or_named():
    limit = limits.neighbour_limit()
    assert limit.gc_thresh3 > 0 and "gc_thresh3" in str(limit)
    assert str(limit).endswith("(assumed: the kernel's default; the host's value is readable only as root)") is (not limit.read)


def test_docker0_at_any_size_is_the_bridge_scenarios_lab():
    # nslab/tutorials/docker0.py's docker0(n) (./run bench --scale builds it) is scenarios/test_bridge_containers.py's docker0_with(n, quiet=True)
    import importlib.util
    from pathlib import Path

    from nslab.tutorials.docker0 import address, docker0

    path = Path(__file__).resolve().parent.parent / "scenarios" / "test_bridge_containers.py"
    spec = importlib.util.spec_from_file_location("bridge_scenario", path)
    scenario = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenario)
    assert docker0(50) == scenario.docker0_with(50, quiet=True)
    assert (address(254), address(255), address(1000)) == ("172.17.0.255", "172.17.1.0", "172.17.3.233")


def test_in_a_user_namespace_the_sweep_leaves_ping_group_range_as_it_was():
    # there the default range's group 1 is not mapped and could not be written back: a raw socket instead
    code = textwrap.dedent("""
        from nslab import Lab
        from nslab.lab.sweep import all_pairs
        import sys; sys.path.insert(0, %r)
        from test_scale_limits import bridge_lab, hosts_of
        with Lab(bridge_lab(4)) as lab:
            before = [ns.sysctl("net.ipv4.ping_group_range") for ns in lab.namespaces]
            sweep = all_pairs(hosts_of(lab, 4))
            print(sweep.ok, before == [ns.sysctl("net.ipv4.ping_group_range") for ns in lab.namespaces])
    """) % str(__import__("pathlib").Path(__file__).resolve().parent)
    done = subprocess.run(["unshare", "--user", "--map-root-user", sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
