"""Kept reads (`Lab.keep_reads`, nslab/kernel/kept.py) last only until the kernel announces a change.

    ns1: v1 ---- v2 :ns2        (veth; later v2 moves to ns3)

Every change is made behind the lab's back, by `ip` run inside a namespace,
as a student's script or a user's shell makes it: the lab learns of it only
from the kernel's events.
"""

from __future__ import annotations

from nslab import Lab
from nslab.kernel import process


def test_a_kept_read_lasts_until_the_kernel_announces_a_change(nslab_sandbox):
    with Lab() as lab:
        ns1, ns2 = lab.add_namespace("ns1"), lab.add_namespace("ns2")
        ns1.add_veth("v1", "v2", peer_ns=ns2, up=True)
        lab.keep_reads()
        first = ns1.links()
        assert all(a is b for a, b in zip(first, ns1.links())), "nothing changed: the same answer, not read again"

        ns1.run(["ip", "link", "set", "v1", "mtu", "1400"], check=True)
        assert ns1.link("v1").mtu == 1400  # a link's change is heard

        kept1 = ns1.links()
        ns2.run(["ip", "addr", "add", "10.0.0.2/24", "dev", "v2"], check=True)
        assert "10.0.0.2/24" in [a.cidr for a in ns2.addresses()]  # an address's change is heard...
        assert all(a is b for a, b in zip(kept1, ns1.links())), "...and drops only its own namespace's reads"

        ns2.run(["ip", "route", "add", "10.9.0.0/16", "via", "10.0.0.1"], check=True)
        assert "10.9.0.0/16" in [r.dst for r in ns2.routes()]
        ns2.run(["ip", "rule", "add", "from", "10.0.0.2", "lookup", "100"], check=True)
        assert any(r.src == "10.0.0.2/32" or r.src == "10.0.0.2" for r in lab.kernel.rules(ns2.handle))


def test_a_veth_end_that_moves_changes_its_peers_namespace_which_hears_nothing(nslab_sandbox):
    """ns1 hears no event when v2 leaves ns2 for ns3, yet v1's link-netnsid changes: a link's event anywhere drops every kept read."""
    with Lab() as lab:
        ns1, ns2 = lab.add_namespace("ns1"), lab.add_namespace("ns2")
        ns3 = lab.add_namespace("ns3")
        ns1.add_veth("v1", "v2", peer_ns=ns2)
        lab.keep_reads()
        assert ns1.link("v1").peer_netnsid == ns1.readback.netnsid(ns2)
        ns2.run(["ip", "link", "set", "v2", "netns", ns3.path], check=True)
        assert ns1.link("v1").peer_netnsid == ns1.readback.netnsid(ns3)


def test_what_the_kernel_changes_by_itself_is_heard_too(nslab_sandbox):
    """An IPv6 address added with duplicate address detection is tentative, then (after about a
    second, by the kernel's own timer) it is not: the kept read follows."""
    with Lab() as lab:
        ns1, ns2 = lab.add_namespace("ns1"), lab.add_namespace("ns2")
        ns1.add_veth("v1", "v2", peer_ns=ns2, up=True)
        lab.keep_reads()
        ns1.run(["ip", "addr", "add", "fd00::1/64", "dev", "v1"], check=True)
        assert "tentative" in next(a for a in ns1.addresses() if a.cidr == "fd00::1/64").flags

        def done() -> bool:
            return "tentative" not in next(a for a in ns1.addresses() if a.cidr == "fd00::1/64").flags

        process.wait_until(done, 10.0, "DAD of fd00::1 done, as a kept read shows it")
