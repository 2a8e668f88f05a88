"""The bridge: does it send a frame that came in on one port out of another?

As the kernel decides it (br_handle_frame, br_forward.c's should_deliver, br_flood):
a port takes in and sends out frames only in the forwarding state (STP's, or `bridge
link set dev PORT state N`); a frame the bridge floods leaves a port only if that port
floods its kind of destination: a broadcast (bcast_flood), a multicast (mcast_flood),
unless the bridge device sent it itself; and two isolated ports never talk. A unicast to a MAC the bridge has not learnt is
flooded by `flood`, but nslab reads no FDB here, so it says nothing of those.
Every option is read from the port (`bridge -d link show`).
"""

from __future__ import annotations

from nslab.diagnosis.reads import Reads
from nslab.probes.result import Claim, Remedy

STATES = ("disabled", "listening", "learning", "forwarding", "blocking")
FORWARDING = 3


def port_of(reads: Reads, end: tuple[str, str] | None) -> tuple[str, str, str] | None:
    """(namespace, port, bridge) where *end* is a bridge port, else None."""
    link = reads.link(*end) if end is not None else None
    if end is None or link is None or link.master is None:
        return None
    bridge = reads.link(end[0], link.master)
    return (end[0], end[1], link.master) if bridge is not None and bridge.kind == "bridge" else None


def stop(reads: Reads, ingress: tuple[str, str] | None, egress: tuple[str, str] | None, frame: bytes) -> tuple[str, Claim, Remedy] | None:
    """Why the bridge does not send *frame* from port *ingress* (or from the bridge device itself,
    which floods through its ports as they do) out of port *egress* (either may be None: not a
    port, or not known): in words, the claim read, and the change that lets it through."""
    into, out = port_of(reads, ingress), port_of(reads, egress)
    sent_by_bridge = out is not None and ingress == (out[0], out[2])
    if into is not None and out is not None and (into[0], into[2]) != (out[0], out[2]):
        into = out = None  # two bridges: these ports do not face each other
    for port, way in ((into, "in"), (out, "out")):
        if port is None:
            continue
        link = reads.link(port[0], port[1])
        state = link.port_option("state") if link is not None else None
        if state is not None and state != FORWARDING:
            name = STATES[state] if state < len(STATES) else str(state)
            return (
                f"port {port[1]} of bridge {port[2]} in {port[0]} is in the {name} state, and a bridge takes no frame "
                f"{'in from' if way == 'in' else 'out to'} a port that is not forwarding; bridge link set dev {port[1]} state 3",
                Claim(port[0], f"bridge port {port[1]}", f"state {name}", dev=port[1], blames=True),
                Remedy(port[0], f"bridge link set dev {port[1]} state {FORWARDING}", f"bridge link set dev {port[1]} state {state}", port[1]),
            )
    if out is None or (into is None and not sent_by_bridge):
        return None
    into_link, out_link = reads.link(into[0], into[1]) if into is not None else None, reads.link(out[0], out[1])
    if out_link is None:
        return None
    if into is not None and into_link is not None and into_link.port_option("isolated") and out_link.port_option("isolated"):
        return (
            f"ports {into[1]} and {out[1]} of bridge {out[2]} in {out[0]} are both isolated, and a bridge passes no frame between two isolated ports; "
            f"bridge link set dev {out[1]} isolated off",
            Claim(out[0], f"bridge port {out[1]}", "isolated on", dev=out[1], blames=True),
            Remedy(out[0], f"bridge link set dev {out[1]} isolated off", f"bridge link set dev {out[1]} isolated on", out[1]),
        )
    if not frame[0] & 1 or into is None:  # the bridge's own broadcasts and multicasts ignore the flood flags (br_flood)
        return None
    option, kind = ("bcast_flood", "broadcast") if frame[:6] == b"\xff" * 6 else ("mcast_flood", "multicast")
    if out_link.port_option(option) == 0:
        return (
            f"bridge {out[2]} in {out[0]} floods no {kind} out of its port {out[1]} ({option} off); bridge link set dev {out[1]} {option} on",
            Claim(out[0], f"bridge port {out[1]}", f"{option} off", dev=out[1], blames=True),
            Remedy(out[0], f"bridge link set dev {out[1]} {option} on", f"bridge link set dev {out[1]} {option} off", out[1]),
        )
    return None
