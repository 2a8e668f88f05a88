"""ICMP echo through the kernel: a raw IPv4 socket in the source namespace.

The kernel routes the request (and says ENETUNREACH at once when it cannot);
the echo is packed, and what comes back read, by hand (nslab.probes.packets).
Replies, ICMP errors from the path (or the local "host unreachable" an ARP
failure produces) and socket errors are all told apart.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
import struct
import time

from nslab.probes import packets, wait
from nslab.probes.result import IcmpError, Outcome, Result

IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2
MSG_ERRQUEUE = 0x2000
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2


def open_socket() -> socket.socket:
    """A raw ICMP socket in the calling thread's namespace, reused across probes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
    sock.setsockopt(socket.SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # DF set: too big is an error, not fragments
    return sock


def new_ident() -> int:
    """An echo id for one probe (the evidence follows the packet by it)."""
    return int.from_bytes(os.urandom(2), "big")


def drain(sock: socket.socket) -> None:
    for flags in (MSG_ERRQUEUE, 0):
        while True:
            try:
                sock.recvmsg(65535, 512, flags)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # a pending socket error is consumed by the read


def ping(
    sock: socket.socket, src_ns: str, dst: str, *, ident: int, size: int = 0, timeout: float = 1.0, settle: wait.Settle | None = None
) -> Result:
    """One echo request to *dst* with id *ident* (and *size* more payload bytes);
    the verdict comes as soon as it is known.

    *settle* is asked between reads; when it returns True the evidence already
    proves no reply can come, and the probe stops without waiting out *timeout*.
    """
    drain(sock)
    nonce = os.urandom(8)
    request = packets.echo_request(ident, 1, b"nslab" + nonce + bytes(size))
    start = time.monotonic()

    def result(outcome: Outcome, **kw) -> Result:
        return Result("ping", src_ns, dst, outcome, time.monotonic() - start, **kw)

    try:
        sock.sendto(request, (dst, 0))
    except OSError as exc:
        return result(Outcome.LOCAL_ERROR, errno=exc.errno)
    state, found = wait.until(sock, start + timeout, lambda: _read(sock, dst, ident, nonce), settle)
    if found is not None:
        return result(**found)
    return result(Outcome.TIMEOUT, decided_early=state == "settled")


def _read(sock: socket.socket, dst: str, ident: int, nonce: bytes) -> dict | None:
    # Errors the kernel attached to our request (IP_RECVERR) first.
    while True:
        try:
            data, anc, _, _ = sock.recvmsg(65535, 512, MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        if nonce not in data:
            continue
        for level, kind, payload in anc:
            if level == socket.SOL_IP and kind == IP_RECVERR:
                ee_errno, origin, icmp_type, icmp_code = struct.unpack_from("=IBBB", payload)
                offender = socket.inet_ntoa(payload[20:24]) if len(payload) >= 24 else "?"
                if origin == SO_EE_ORIGIN_ICMP:
                    return {"outcome": Outcome.ICMP_ERROR, "icmp": IcmpError(icmp_type, icmp_code, offender), "errno": ee_errno}
                return {"outcome": Outcome.LOCAL_ERROR, "errno": ee_errno}
    while True:
        try:
            data = sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno in (errno_mod.EHOSTUNREACH, errno_mod.ENETUNREACH, errno_mod.EHOSTDOWN):
                return {"outcome": Outcome.LOCAL_ERROR, "errno": exc.errno}
            raise
        packet = packets.parse_ip(data)
        if packet is None or packet.proto != packets.ICMP or nonce not in data:
            continue
        if packet.icmp_type == packets.ECHO_REPLY and packet.icmp_id == ident and packet.src == dst:
            return {"outcome": Outcome.REPLY}
        if packet.quoted and packet.icmp_type in (packets.UNREACHABLE, packets.TIME_EXCEEDED):
            return {"outcome": Outcome.ICMP_ERROR, "icmp": IcmpError(packet.icmp_type, packet.icmp_code or 0, packet.src)}
