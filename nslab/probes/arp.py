"""ARP who-has on one interface: the request packed by hand, a packet socket
bound to that interface carries it, and the answer says which MAC has the IP."""

from __future__ import annotations

import socket
import time
from typing import Callable

from nslab.probes import packets, wait
from nslab.probes.result import Outcome, Result

ETH_P_ARP = 0x0806


def open_socket(dev: str) -> socket.socket:
    """A packet socket for ARP on *dev*, in the calling thread's namespace."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.htons(ETH_P_ARP))
    sock.bind((dev, ETH_P_ARP))
    return sock


def who_has(
    sock: socket.socket,
    src_ns: str,
    dev: str,
    mac: str,
    psrc: str,
    target: str,
    *,
    timeout: float = 1.0,
    settle: wait.Settle | None = None,
) -> Result:
    state, answer, elapsed = exchange(sock, packets.arp_request(mac, psrc, target), lambda frame: _answer_of(frame, target), timeout, settle)
    outcome = Outcome.REPLY if answer is not None else Outcome.TIMEOUT
    return Result("arp", src_ns, target, outcome, elapsed, mac=answer, decided_early=state == "settled", dev=dev)


def _answer_of(frame: bytes, target: str) -> str | None:
    answer = packets.arp_answer(frame)
    return answer[1] if answer is not None and answer[0] == target else None


def exchange(sock: socket.socket, frame: bytes, answer: Callable[[bytes], str | None], timeout: float, settle: wait.Settle | None) -> tuple[str, str | None, float]:
    """Send *frame* on a packet socket and read until *answer* finds the MAC in a frame:
    (the wait's state, the MAC or None, seconds taken). ARP's and NDP's one exchange."""
    while True:  # drop what arrived before this probe
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    start = time.monotonic()
    sock.send(frame)

    def look() -> str | None:
        while True:
            try:
                found = answer(sock.recv(65535))
            except BlockingIOError:
                return None
            if found is not None:
                return found

    state, found = wait.until(sock, start + timeout, look, settle)
    return state, found, time.monotonic() - start
