"""ICMP echo through the kernel: a raw IPv4 (or ICMPv6) socket in the source namespace.

The kernel routes the request (and says ENETUNREACH at once when it cannot);
the echo is packed, and what comes back read, by hand (nslab.probes.packets).
Replies, ICMP errors from the path (or the local "host unreachable" an ARP
failure produces) and socket errors are all told apart.
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
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
IPV6_RECVERR, SO_EE_ORIGIN_ICMP6, IPV6_MTU_DISCOVER = 25, 3, 23
ICMP6_FILTER = 1  # SOL_ICMPV6: a bitmap of the ICMPv6 types the socket does not want


def recverr(sock: socket.socket, on: bool = True) -> None:
    """Have the kernel queue the errors about what *sock* sends (IP_RECVERR, IPV6_RECVERR by its family)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, int(on))
    else:
        sock.setsockopt(socket.SOL_IP, IP_RECVERR, int(on))


def open_socket() -> socket.socket:
    """A raw ICMP socket in the calling thread's namespace, reused across probes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP)
    recverr(sock)
    sock.setsockopt(socket.SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # DF set: too big is an error, not fragments
    return sock


def open_socket6() -> socket.socket:
    """A raw ICMPv6 socket in the calling thread's namespace that hears echo replies and
    errors only (not the NDP, MLD and router traffic every IPv6 link carries)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMPV6)
    recverr(sock)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IP_PMTUDISC_DO)
    replies_and_errors6(sock)
    return sock


def replies_and_errors6(sock: socket.socket) -> None:
    """Let a raw ICMPv6 socket hear echo replies and errors only (ICMP6_FILTER blocks the rest)."""
    blocked = bytearray(b"\xff" * 32)
    for kind in (packets.ECHO_REPLY6, *packets.ICMP_ERRORS6):
        blocked[kind >> 3] &= ~(1 << (kind & 7)) & 0xFF
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, bytes(blocked))


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
    sock: socket.socket,
    src_ns: str,
    dst: str,
    *,
    ident: int,
    size: int = 0,
    timeout: float = 1.0,
    settle: wait.Settle | None = None,
    scope_id: int = 0,
    label: str | None = None,
) -> Result:
    """One echo request to *dst* with id *ident* (and *size* more payload bytes);
    the verdict comes as soon as it is known.

    *settle* is asked between reads; when it returns True the evidence already
    proves no reply can come, and the probe stops without waiting out *timeout*.
    On an ICMPv6 socket, *scope_id* is the interface index of a link-local *dst*,
    and *label* how the result names it (`fe80::1%eth0`).
    """
    drain(sock)
    nonce = os.urandom(8)
    v6 = sock.family == socket.AF_INET6
    pack = packets.echo_request6 if v6 else packets.echo_request
    request = pack(ident, 1, b"nslab" + nonce + bytes(size))
    start = time.monotonic()

    def result(outcome: Outcome, **kw) -> Result:
        return Result("ping", src_ns, label or dst, outcome, time.monotonic() - start, **kw)

    try:
        sock.sendto(request, (dst, 0, 0, scope_id) if v6 else (dst, 0))
    except OSError as exc:
        return result(Outcome.LOCAL_ERROR, errno=exc.errno)
    read = _read6 if v6 else _read
    state, found = wait.until(sock, start + timeout, lambda: read(sock, dst, ident, nonce), settle)
    if found is not None:
        return result(**found)
    return result(Outcome.TIMEOUT, decided_early=state == "settled")


def queued_error(sock: socket.socket, nonce: bytes = b"") -> dict | None:
    """The error the kernel attached to our request (IP_RECVERR, IPV6_RECVERR): an ICMP or
    ICMPv6 error from the path (a Packet Too Big's MTU in ee_info), or a local one.
    *nonce*: what the quoted request carries (an echo's; a TCP socket's queue is its own)."""
    v6 = sock.family == socket.AF_INET6
    while True:
        try:
            data, anc, _, _ = sock.recvmsg(65535, 512, MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            return None
        if nonce not in data:
            continue
        for level, kind, payload in anc:
            if (level, kind) == ((socket.IPPROTO_IPV6, IPV6_RECVERR) if v6 else (socket.SOL_IP, IP_RECVERR)):
                ee_errno, origin, icmp_type, icmp_code, _, info = struct.unpack_from("=IBBBBI", payload)
                if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
                    return {"outcome": Outcome.LOCAL_ERROR, "errno": ee_errno}
                if v6:
                    offender = socket.inet_ntop(socket.AF_INET6, payload[24:40]) if len(payload) >= 40 else "?"
                    icmp = IcmpError(icmp_type, icmp_code, offender, v6=True, mtu=info if icmp_type == packets.TOO_BIG6 else None)
                else:
                    icmp = IcmpError(icmp_type, icmp_code, socket.inet_ntoa(payload[20:24]) if len(payload) >= 24 else "?")
                return {"outcome": Outcome.ICMP_ERROR, "icmp": icmp, "errno": ee_errno}


def _read(sock: socket.socket, dst: str, ident: int, nonce: bytes) -> dict | None:
    queued = queued_error(sock, nonce)
    if queued is not None:
        return queued
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


def _read6(sock: socket.socket, dst: str, ident: int, nonce: bytes) -> dict | None:
    """_read for an ICMPv6 socket: it reads messages without their IPv6 header, and
    errors carry ICMPv6's own types (a Packet Too Big with the MTU in ee_info)."""
    queued = queued_error(sock, nonce)
    if queued is not None:
        return queued
    while True:
        try:
            data, peer = sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno in (errno_mod.EHOSTUNREACH, errno_mod.ENETUNREACH, errno_mod.EHOSTDOWN, errno_mod.EADDRNOTAVAIL):
                return {"outcome": Outcome.LOCAL_ERROR, "errno": exc.errno}
            raise
        source = peer[0].split("%")[0]
        packet = packets.icmp6_message(source, "", data)
        if packet is None or nonce not in data:
            continue
        if packet.icmp_type == packets.ECHO_REPLY6 and packet.icmp_id == ident and same_address(source, dst):
            return {"outcome": Outcome.REPLY}
        if packet.quoted and packet.icmp_type is not None:
            return {"outcome": Outcome.ICMP_ERROR, "icmp": IcmpError(packet.icmp_type, packet.icmp_code or 0, source, v6=True, mtu=packet.mtu)}


def same_address(a: str, b: str) -> bool:
    """The same IP address however written (`fd00::0:2` is `fd00::2`)."""
    try:
        return ipaddress.ip_address(a.split("%")[0]) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return a == b
