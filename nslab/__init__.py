"""nslab: the classic container-networking tutorials as real, hermetic labs.

    from nslab import Lab, Topology, Veth, Address

    topo = Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")],
                    addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")])
    with Lab(topo) as lab:
        assert lab.ns("ns1").ping("10.0.0.2").replied

Names are imported when first used (PEP 562), so `import nslab` and a
model-only script cost only the layers they touch.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (1-2 ms)

# public name -> the module that defines it
_EXPORTS = {
    "Address": "nslab.model.topology",
    "Bridge": "nslab.model.topology",
    "LabError": "nslab.model.topology",
    "Namespace": "nslab.model.topology",
    "Route": "nslab.model.topology",
    "Topology": "nslab.model.topology",
    "Veth": "nslab.model.topology",
    "SandboxUnavailable": "nslab.kernel.sandbox",
    "Cause": "nslab.probes.result",
    "Claim": "nslab.probes.result",
    "Outcome": "nslab.probes.result",
    "Result": "nslab.probes.result",
    "Where": "nslab.probes.result",
    "Lab": "nslab.lab.live",
    "Netns": "nslab.lab.live",
    "CommandFailed": "nslab.lab.live",
}

__all__ = [
    "Address",
    "Bridge",
    "Cause",
    "Claim",
    "CommandFailed",
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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nslab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from nslab.kernel.sandbox import SandboxUnavailable
    from nslab.lab.live import CommandFailed, Lab, Netns
    from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth
    from nslab.probes.result import Cause, Claim, Outcome, Result, Where
