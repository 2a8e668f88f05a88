"""Many echo requests in flight at once: does every source reach every destination?

`Netns.ping` reads counters, captures and links around each probe, which is
what explains a failure, and its cost grows with the number of namespaces in
the lab. An all-pairs check needs only the kernel's answer: one raw ICMP
socket per source namespace, every request sent before any reply is awaited,
routing, ARP and bridging all done by the kernel as usual. A pair that gets no
echo reply is probed again with `Netns.ping`, so the failure carries evidence
and an explanation.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nslab.kernel import linux
from nslab.probes.result import Result

if TYPE_CHECKING:
    from nslab.lab.live import Netns


@dataclass
class Sweep:
    pairs: int
    replied: int
    elapsed: float  # seconds from the first request sent to the last reply (or the deadline)
    failures: list[tuple[str, str]]  # (source namespace, destination) with no echo reply
    explained: list[Result] = field(default_factory=list)  # `ping` of the first failures, with evidence

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        text = f"{self.replied}/{self.pairs} pairs replied in {self.elapsed * 1000:.0f} ms"
        if self.failures:
            text += f"; no reply: {', '.join(f'{s} -> {d}' for s, d in self.failures[:10])}"
            text += "".join(f"\n  {r!r}" for r in self.explained)
        return text

    __repr__ = __str__


def ping_pairs(pairs: Iterable[tuple[Netns, str]], *, timeout: float = 1.0, explain: int = 3) -> Sweep:
    """One echo request per (source namespace, destination) pair, all at once;
    each has *timeout* seconds from the moment the last one was sent.
    The first *explain* failures are probed again with `Netns.ping`."""
    by_src: dict[Netns, list[str]] = {}
    for src, dst in pairs:
        by_src.setdefault(src, []).append(dst)
    senders = [_Sender(src, dsts) for src, dsts in by_src.items()]
    try:
        start = time.monotonic()
        for sender in senders:
            sender.send_all()
        deadline = time.monotonic() + timeout
        waiting = [s for s in senders if s.pending]
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select([s.sock for s in waiting], [], [], deadline - time.monotonic())
            for sender in waiting:
                if sender.sock in ready:
                    sender.read()
            waiting = [s for s in senders if s.pending]
        elapsed = time.monotonic() - start
    finally:
        for sender in senders:
            sender.sock.close()
    failures = [(s.src.name, dst) for s in senders for dst in s.failed()]
    sweep = Sweep(sum(len(s.dsts) for s in senders), sum(s.replied for s in senders), elapsed, failures)
    for sender in senders:
        retry = sender.failed()[: max(0, explain - len(sweep.explained))]
        if retry:
            # afresh: a neighbour left INCOMPLETE by the sweep would hold back the
            # new ARP request, and with it the evidence of where the request went
            sender.src.flush_neighbours()
        for dst in retry:
            sweep.explained.append(sender.src.ping(dst, timeout=timeout))
    return sweep


def all_pairs(hosts: dict[Netns, str], *, per_round: int = 4, timeout: float = 1.0, explain: int = 3) -> Sweep:
    """Every namespace in *hosts* pings every other's address: n x (n-1) pairs.

    Sources go *per_round* at a time, and every namespace's ARP cache is
    flushed after each round: the kernel's neighbour table is shared by all
    namespaces and capped (gc_thresh3, 1024 by default), so resolving all
    n x (n-1) pairs at once fails with ENOBUFS well before n = 50. A round
    leaves about 2 x per_round x (n-1) entries (both ends of each pair).
    The elapsed time includes the flushes."""
    if per_round < 1:
        raise ValueError(f"per_round={per_round!r}: must be at least 1 source per round")
    sources = list(hosts)
    total = Sweep(0, 0, 0.0, [])
    start = time.monotonic()
    for first in range(0, len(sources), per_round):
        pairs = [(src, dst) for src in sources[first : first + per_round] for other, dst in hosts.items() if other is not src]
        part = ping_pairs(pairs, timeout=timeout, explain=explain - len(total.explained))
        total.pairs += part.pairs
        total.replied += part.replied
        total.failures += part.failures
        total.explained += part.explained
        for ns in sources:
            ns.flush_neighbours()
    total.elapsed = time.monotonic() - start
    return total


class _Sender:
    """One source namespace: a raw ICMP socket, its requests, the replies matched to them."""

    def __init__(self, src: Netns, dsts: list[str]):
        self.src, self.dsts = src, dsts
        with linux.in_netns(src.handle.fd):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP)
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.pending: dict[int, str] = {}  # ICMP sequence number -> destination
        self.unsent: list[str] = []
        self.replied = 0

    def send_all(self) -> None:
        for seq, dst in enumerate(self.dsts, start=1):
            try:
                self.sock.sendto(_echo_request(self.ident, seq), (dst, 0))
            except OSError:  # e.g. ENETUNREACH: a failure, explained later by `ping`
                self.unsent.append(dst)
            else:
                self.pending[seq] = dst

    def read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error reported on the socket: that pair stays pending
                continue
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 8:
                continue
            kind, _, _, ident, seq = struct.unpack_from("!BBHHH", data, ihl)
            if kind == 0 and ident == self.ident and self.pending.get(seq) == socket.inet_ntoa(data[12:16]):
                del self.pending[seq]
                self.replied += 1

    def failed(self) -> list[str]:
        return self.unsent + list(self.pending.values())


def _echo_request(ident: int, seq: int) -> bytes:
    payload = b"nslab-sweep"
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return body[:2] + struct.pack("!H", _checksum(body)) + body[4:]


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
