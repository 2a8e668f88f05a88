"""ARP who-has on one interface: the request packed by hand, a packet socket
bound to that interface carries it, and the answer says which MAC has the IP."""

from __future__ import annotations

import socket
import time

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
    while True:  # drop what arrived before this probe
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    request = packets.arp_request(mac, psrc, target)
    start = time.monotonic()
    sock.send(request)

    def look() -> str | None:
        while True:
            try:
                answer = packets.arp_answer(sock.recv(65535))
            except BlockingIOError:
                return None
            if answer is not None and answer[0] == target:
                return answer[1]

    state, answer = wait.until(sock, start + timeout, look, settle)
    outcome = Outcome.REPLY if answer is not None else Outcome.TIMEOUT
    return Result("arp", src_ns, target, outcome, time.monotonic() - start, mac=answer, decided_early=state == "settled", dev=dev)
