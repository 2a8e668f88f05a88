"""nslab: the classic container-networking tutorials as real, hermetic labs.

    from nslab import Lab, Topology, Veth, Address

    topo = Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")],
                    addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")])
    with Lab(topo) as lab:
        assert lab.ns("ns1").ping("10.0.0.2").replied
"""


from nslab.kernel.sandbox import SandboxUnavailable
from nslab.lab.live import Lab, Netns
from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth
from nslab.probes.result import Cause, Outcome, Result, Where

__all__ = [
    "Address",
    "Bridge",
    "Cause",
    "Lab",
    "LabError",
    "Namespace",
    "Netns",
    "Outcome",
    "Result",
    "Route",
    "SandboxUnavailable",
    "Topology",
    "Veth",
    "Where",
]
