"""ARP who-has on one interface: scapy crafts the request, a packet socket
bound to that interface carries it, and the answer says which MAC has the IP."""

from __future__ import annotations

import select
import socket
import time
from typing import Callable

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
    settle: Callable[[], bool] | None = None,
) -> Result:
    from scapy.layers.l2 import ARP, Ether

    while True:  # drop what arrived before this probe
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    request = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(op=1, hwsrc=mac, psrc=psrc, pdst=target))
    start = time.monotonic()
    deadline = start + timeout
    sock.send(request)
    wait = 0.0002
    while True:
        while True:
            try:
                frame = Ether(sock.recv(65535))
            except BlockingIOError:
                break
            arp = frame.getlayer(ARP)
            if arp is not None and arp.op == 2 and arp.psrc == target:
                return Result("arp", src_ns, f"{target} on {dev}", Outcome.REPLY, time.monotonic() - start, mac=arp.hwsrc)
        if settle is not None and settle():
            return Result("arp", src_ns, f"{target} on {dev}", Outcome.TIMEOUT, time.monotonic() - start, decided_early=True)
        left = deadline - time.monotonic()
        if left <= 0:
            return Result("arp", src_ns, f"{target} on {dev}", Outcome.TIMEOUT, time.monotonic() - start)
        select.select([sock], [], [], min(wait, left))
        wait = min(wait * 2, 0.02)
