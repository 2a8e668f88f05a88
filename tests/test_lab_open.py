"""A lab whose build fails half-way is gone when `Lab.open` raises, not when the process ends."""

from __future__ import annotations

import os

import pytest

from nslab import Lab, Namespace, Topology, Veth
from nslab.kernel import sandbox


def test_a_build_that_fails_half_way_leaves_no_namespace(nslab_sandbox):
    # ns1 and ns2 are made and wired before the sysctl that does not exist is written
    topo = Topology([Namespace("ns1"), Namespace("ns2", sysctls={"net.ipv4.no_such_knob": 1})], veths=[Veth("ns1", "v1", "ns2", "v2")])
    with pytest.raises(OSError):
        Lab(topo).open()
    assert os.listdir(sandbox.current().netns_dir) == []  # no namespace left named in the sandbox
    with Lab(Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")])) as lab:  # the same names build again
        assert lab.ns("ns1").link("v1").name == "v1"
