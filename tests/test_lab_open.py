"""A lab whose build fails half-way is gone when `Lab.open` raises, not when the process ends."""

from __future__ import annotations

import errno
import os

import pytest

from nslab import Lab, Namespace, Topology, Veth
from nslab.kernel import child, sandbox


def test_a_build_that_fails_half_way_leaves_no_namespace(nslab_sandbox):
    # ns1 and ns2 are made and wired before the sysctl that does not exist is written
    topo = Topology([Namespace("ns1"), Namespace("ns2", sysctls={"net.ipv4.no_such_knob": 1})], veths=[Veth("ns1", "v1", "ns2", "v2")])
    with pytest.raises(OSError):
        Lab(topo).open()
    assert os.listdir(sandbox.current().netns_dir) == []  # no namespace left named in the sandbox
    with Lab(Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")])) as lab:  # the same names build again
        assert lab.ns("ns1").link("v1").name == "v1"


def test_a_lab_without_a_network_namespace_of_its_own_builds_and_removes(nslab_sandbox):
    """Lab(isolated=False), as a grader opens its lab: the process stays in the network namespace it
    is in (here the test's sandbox's), and the lab still makes, reads and removes its namespaces."""

    def in_child() -> dict:
        home = os.stat("/proc/self/ns/net").st_ino
        with Lab(isolated=False) as lab:
            lab.add_namespace("ns1").add_veth("v1", "v2", up=True)
            names = lab.ns("ns1").link_names()
            stayed = os.stat("/proc/self/ns/net").st_ino == home
        try:
            sandbox.enter()
            refused = ""
        except sandbox.SandboxUnavailable as exc:
            refused = str(exc)
        return {"names": names, "stayed": stayed, "left": os.listdir(sandbox.current().netns_dir), "refused": refused}

    answer = child.run(in_child, timeout=60.0)
    assert answer["names"] == ["lo", "v1", "v2"]
    assert answer["stayed"], "no network namespace of its own"
    assert answer["left"] == [], "its namespace was removed when it closed"
    assert "cannot get one now" in answer["refused"]


def test_a_listener_that_cannot_bind_leaves_no_socket_holding_its_namespace(nslab_sandbox):
    """`listen` closes the socket it made when the bind fails: held by the error's traceback (as
    here, and as pytest holds a failed test's), it kept the namespace alive, and the lab's close
    failed after 5 s (EBUSY: a socket still holds it)."""
    with Lab() as lab:
        b = lab.add_namespace("b")  # lo down: ::1 is no address of b's yet
        with pytest.raises(OSError) as refused:
            b.listen(8080, "::1")
        assert refused.value.errno == errno.EADDRNOTAVAIL
    assert os.listdir(sandbox.current().netns_dir) == []
