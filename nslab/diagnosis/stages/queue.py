"""Congestion: a packet lost because a queue or a table the kernel needed was full.

At any stage the kernel can drop a packet for want of room, and the drop reason
says so: the per-CPU backlog that every namespace's received frames wait in
(`CPU_BACKLOG`, netdev_max_backlog), memory (`NOMEM`), the neighbour table all
namespaces share (`NEIGH_CREATEFAIL`), a device's queueing discipline
(`QDISC_DROP`), a device's ring (`FULL_RING`) or a socket's receive buffer
(`SOCKET_RCVBUFF`). A sender's `ENOBUFS` is the same refusal, given at once.

Such a loss says nothing about the lab's wiring: the same packet sent a moment
later can pass. A probe lost to congestion is sent once more
(nslab/lab/probing.py), and reported lost only when the loss repeats.
"""

from __future__ import annotations

from nslab.diagnosis.observations import Finding
from nslab.kernel import limits
from nslab.probes.result import Cause, Claim, Where

MACHINE = ("CPU_BACKLOG", "NOMEM", "NEIGH_CREATEFAIL")  # shared by every namespace of the machine
QUEUE = ("QDISC_DROP", "FULL_RING", "SOCKET_RCVBUFF")  # one device's or socket's: nslab reads no qdiscs, so the load and a device's own shaping look alike
REASONS = MACHINE + QUEUE


def dropped(ns: str, dev: str | None, reason: str, said: str, version: int = 4) -> Finding:
    """The packet (*said*: what it was and how it was dropped) lost to congestion, told by *reason*."""
    where = f"{ns}" + (f" on {dev}" if dev else "")
    if reason == "NEIGH_CREATEFAIL":
        limit = limits.neighbour_limit("ipv6" if version == 6 else "ipv4")
        why = (
            f"{ns}'s kernel could not make a neighbour entry for its next hop (it refuses one when the neighbour table "
            f"that all namespaces of this machine share holds its cap, {limit}, with no entry old enough to give back): "
            "the machine's own congestion, not the lab's state"
        )
    elif reason in MACHINE:
        held = "memory" if reason == "NOMEM" else "the CPU's backlog of received frames"
        why = f"the kernel had no room for it in {where} ({reason}): {held}, which all namespaces of this machine share, was full: the machine's own congestion, not the lab's state"
    elif reason == "QDISC_DROP":
        why = f"the queue of {dev or 'the device'} in {ns} was full; nslab reads no queueing disciplines, so it cannot tell the machine's load from a limit set on the device"
    else:
        held = f"the ring of {dev or 'the device'}" if reason == "FULL_RING" else "a socket's receive buffer"
        why = f"{held} in {ns} was full ({reason}), from the machine's load or the reader's pace"
    return Finding(Cause.CONGESTION, Where(ns, dev), f"{said}: {why}", reason, claims=(Claim(ns, "drop reason", reason, dev=dev),))


def refused(ns: str, dev: str | None, what: str) -> Finding:
    """The sender's kernel refused to queue *what* (ENOBUFS), and no drop of it was read to say where."""
    return Finding(
        Cause.CONGESTION,
        Where(ns, dev),
        f"{ns}'s kernel could not queue the {what} (ENOBUFS): a queue on its way out, or the neighbour table that all "
        "namespaces of this machine share, was full; no drop of it was read to say which",
        claims=(Claim(ns, "errno", "ENOBUFS", dev=dev),),
    )
