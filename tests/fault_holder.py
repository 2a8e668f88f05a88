"""Run only by tests/test_faults.py, next to the scenarios: keeps a spawned
process and live labs busy until the run is killed, so that every kill lands
while there is something that could leak (not collected by default: no test_ prefix)."""

import time

from nslab import Address, Topology, Veth

PAIR = Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")],
                addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")])


def test_hold_labs_and_processes(lab, make_lab):
    holder = lab.add_namespace("holder")
    holder.spawn(["sleep", "300"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        other = make_lab(PAIR)
        assert other.ns("ns1").ping("10.0.0.2").replied
        other.close()
