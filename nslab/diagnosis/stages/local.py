"""Local delivery: what the namespace holding the destination does with the packet: the
ICMP echo sysctls for a ping, a listening socket bound to the address and port for a
TCP SYN (the kernel's socket lookup; /proc/net/tcp says what is bound where)."""

from __future__ import annotations

from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, address, set_sysctl, sysctl
from nslab.probes.result import Cause, Claim, Where


def ignored_echo(reads: Reads, at: At) -> Finding | None:
    """A ping the kernel consumes without answering: icmp_echo_ignore_all (IPv4) or
    net.ipv6.icmp.echo_ignore_all."""
    key = "net.ipv6.icmp.echo_ignore_all" if at.v == "ipv6" else "net.ipv4.icmp_echo_ignore_all"
    if reads.sysctl(at.ns, key) != "1":
        return None
    return Finding(
        Cause.NO_ANSWER,
        Where(at.ns, at.iif),
        f"the {at.what} reached {at.ns} on {at.iif}, which ignores every echo request: {key}=1 there",
        claims=(sysctl(reads, at.ns, key, blames=True),),
        fixes=(set_sysctl(reads, at.ns, key, 0),),
    )


def no_listener(reads: Reads, at: At, *, reason: str | None = None) -> Finding | None:
    """No socket takes a SYN for *at*.dst and port: the sockets on that port bound elsewhere, or none."""
    port = at.dport
    if port is None:
        return None
    on_port = [s for s in reads.listeners(at.ns) if s.port == port]
    if any(s.accepts(at.dst) for s in on_port):
        return None
    said = f" ({reason})" if reason else ""
    taken = address.stray(reads, at.ns, at.dst)
    if taken is not None:  # the SYN should not be here at all: the address is what to change
        return Finding(
            Cause.PORT_CLOSED,
            Where(at.ns, at.iif),
            f"the {at.what} reached {at.ns} on {at.iif}, and {taken.words}, so {at.ns} took it, and no socket there takes {at.dst}:{port}{said}",
            reason,
            claims=(*taken.claims, Claim(at.ns, f"socket tcp {at.dst}:{port}", "none")),
            fixes=taken.fixes,
        )
    if on_port:
        bound = ", ".join(str(s) for s in on_port)
        return Finding(
            Cause.PORT_CLOSED,
            Where(at.ns, at.iif),
            f"the {at.what} reached {at.ns} on {at.iif}, but no socket there takes {at.dst}:{port}{said}: the listener on port {port} is bound to {bound} only",
            reason,
            claims=tuple(Claim(at.ns, f"socket tcp {s}", "listening", blames=True) for s in on_port),
        )
    return Finding(
        Cause.PORT_CLOSED,
        Where(at.ns, at.iif),
        f"the {at.what} reached {at.ns} on {at.iif}, but nothing there listens on TCP port {port}{said}",
        reason,
        claims=(Claim(at.ns, f"socket tcp {at.dst}:{port}", "none", blames=True),),
    )
