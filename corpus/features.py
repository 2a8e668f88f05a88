"""What a case needs from this machine, probed once per run, each missing thing named."""

from __future__ import annotations

import functools
import shutil

from nslab import Lab, Namespace, Topology
from nslab.kernel import features as kernel_features

TOOLS = {"ip": "iproute2's ip", "bridge-tool": "iproute2's bridge", "nft": "nftables' nft"}


@functools.cache
def missing(need: str) -> str | None:
    """None when *need* is there; otherwise one line naming what is missing."""
    if need == "bridge":
        return kernel_features.missing("bridge")
    if need == "bridge-vlan":
        return missing("bridge") or missing("ip") or _in_probe_namespace(
            ["ip", "link", "add", "name", "br0", "type", "bridge", "vlan_filtering", "1"], "bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)"
        )
    if need in TOOLS:
        tool = need.removesuffix("-tool")
        if shutil.which(tool) is None:
            return f"{TOOLS[need]} is not installed"
        if need == "nft":
            return _in_probe_namespace(["nft", "add", "table", "inet", "probe"], "nftables in this kernel")
        return None
    raise ValueError(f"unknown need {need!r}; known: bridge, bridge-vlan, {', '.join(sorted(TOOLS))}")


def _in_probe_namespace(argv: list[str], what: str) -> str | None:
    """Run *argv* in a throwaway lab namespace; None if it worked, else what is missing and the tool's words."""
    with Lab(Topology([Namespace("probe")])) as lab:
        done = lab.ns("probe").run(argv)
    if done.returncode != 0:
        return f"{what}: {' '.join(argv)}: {done.stderr.decode(errors='replace').strip()}"
    return None


def first_missing(needs: tuple[str, ...]) -> str | None:
    return next((why for why in map(missing, needs) if why is not None), None)
