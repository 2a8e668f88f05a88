"""NDP neighbour solicitation on one interface, the IPv6 twin of the ARP probe: the
solicitation packed by hand, a packet socket bound to that interface carries it to
the target's solicited-node group, and the advertisement says which MAC has the IP."""

from __future__ import annotations

import socket

from nslab.probes import packets, wait
from nslab.probes.arp import exchange
from nslab.probes.icmp import same_address
from nslab.probes.result import Outcome, Result

ETH_P_IPV6 = packets.ETH_P_IPV6


def open_socket(dev: str) -> socket.socket:
    """A packet socket for IPv6 frames on *dev*, in the calling thread's namespace."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.htons(packets.ETH_P_IPV6))
    sock.bind((dev, packets.ETH_P_IPV6))
    return sock


def solicit(
    sock: socket.socket,
    src_ns: str,
    dev: str,
    mac: str,
    src: str,
    target: str,
    *,
    timeout: float = 1.0,
    settle: wait.Settle | None = None,
) -> Result:
    """`ndisc6 TARGET DEV`: who has TARGET? Sent from address *src* (a link-local or any address of *dev*)."""
    state, answer, elapsed = exchange(sock, packets.ndp_solicit(mac, src, target), lambda frame: _answer_of(frame, target), timeout, settle)
    outcome = Outcome.REPLY if answer is not None else Outcome.TIMEOUT
    return Result("ndp", src_ns, target, outcome, elapsed, mac=answer, decided_early=state == "settled", dev=dev)


def _answer_of(frame: bytes, target: str) -> str | None:
    answer = packets.ndp_answer(frame)
    return (answer[1] or "?") if answer is not None and same_address(answer[0], target) else None
