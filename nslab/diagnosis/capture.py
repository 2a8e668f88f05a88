"""What one namespace sees: every frame on every interface, and its SNMP counters.

Frames carry the kernel's own receive or transmit timestamp, kept as integer
nanoseconds: a veth hop takes less time than a float of epoch seconds can
tell apart.

When a capture is open. A `Capture` costs nothing until a probe's watch first
reads it: then it opens, inside its namespace, a packet socket (1 MiB receive
buffer) and the namespace's three counter files (snmp, netstat, snmp6), and keeps them open for later
probes. A watch reads every capture it watches once before its probe sends
anything, and discards what it finds there (it is not this probe's), so every
frame and counter change of the probe itself is seen, exactly as if the
capture had been open since the namespace was made: the evidence is the same.
What changes is the cost of a large lab: a watch covers every namespace only
in labs of up to 8 (nslab/model/queries.py `watch_set`); in a larger one it
covers the probe's way (the sender, the next hop's and the target's holders,
the first hop, and the whole segment when nobody holds the next hop), so a
lab of a thousand namespaces holds two descriptors each (its fd and netlink
socket) plus four per namespace some probe has watched, never a packet
socket that floods with every frame of the lab. If the process runs out of
descriptors, the soft RLIMIT_NOFILE is raised to the hard one, or
`LimitReached` names the limit and the fix (nslab/kernel/limits.py).

The socket's filter leaves out IPv6's MLD and router discovery, which no probe
is made of (see `_SKIP_LINK_CHATTER`). `paused()` swaps it for one that takes
no frame (cheap: no RCU grace period, unlike closing the socket), for bulk
traffic that no probe watches (an all-pairs sweep): the frames are neither
copied nor queued, and their overflow is not reported as kernel drops.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import socket
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from nslab.diagnosis import frames
from nslab.kernel import limits, linux
from nslab.probes import packets

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SO_ATTACH_FILTER = 26
RCVBUF = 1 << 20
SNMP6_PROTOCOLS = ("Ip6", "Icmp6", "UdpLite6", "Udp6")  # /proc/net/snmp6 names run together: Icmp6InEchos
LD_H, LD_B, JEQ, JGE, JGT, JA, RET = 0x28, 0x30, 0x15, 0x35, 0x25, 0x05, 0x06  # classic BPF opcodes (absolute loads, constant tests)


def _program(*insns: tuple[int, int, int, int]) -> tuple[ctypes.Array[ctypes.c_char], bytes]:
    """A classic BPF program (each instruction: code, jump if true, jump if false, k) as
    SO_ATTACH_FILTER takes it; the buffer must live as long as the program may be attached."""
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *i) for i in insns), 8 * len(insns))
    return code, struct.pack("=HxxxxxxQ", len(insns), ctypes.addressof(code))


# `ret #0`: take no byte of any frame.
_TAKE_NOTHING, _TAKE_NOTHING_PROG = _program((RET, 0, 0, 0))
# Every frame but IPv6's MLD and router discovery (ICMPv6 130 to 134, and 143: MLDv2 reports, sent
# behind an 8-byte hop-by-hop header), which no probe's flow holds (frames.is_chatter's kinds less NDP's
# solicitations and advertisements). A fresh interface sends them unasked, router solicitations without
# end (net.ipv6.conf.*.router_solicitations=-1, backing off), and a bridge floods each to every port:
# right after a thousand containers were built, a capture on the bridge's side read 100,000 of them
# while one probe ran, and parsing them took 20 s.
_SKIP_LINK_CHATTER, _SKIP_LINK_CHATTER_PROG = _program(
    (LD_H, 0, 0, 12),  # 0: ethertype
    (JEQ, 0, 13, packets.ETH_P_IPV6),  # 1: else take
    (LD_B, 0, 0, 20),  # 2: next header
    (JEQ, 7, 0, packets.ICMPV6),  # 3: ICMPv6 at once: its type at 54
    (JEQ, 0, 10, 0),  # 4: hop-by-hop, else take
    (LD_B, 0, 0, 55),  # 5: its length
    (JEQ, 0, 8, 0),  # 6: 8 bytes, else take
    (LD_B, 0, 0, 54),  # 7: what follows it
    (JEQ, 0, 6, packets.ICMPV6),  # 8: ICMPv6, else take
    (LD_B, 0, 0, 62),  # 9: its type
    (JA, 0, 0, 1),  # 10
    (LD_B, 0, 0, 54),  # 11: the type
    (JGE, 0, 2, 130),  # 12: below 130: take
    (JGT, 0, 2, 134),  # 13: 130 to 134: skip
    (JEQ, 1, 0, 143),  # 14: 143: skip
    (RET, 0, 0, 0xFFFFFFFF),  # 15: take the whole frame
    (RET, 0, 0, 0),  # 16: skip
)


@dataclass(frozen=True)
class Counters:
    """A namespace's counter files as read. A probe changes a few of several hundred counters,
    so `since` parses only the lines that differ from an earlier reading."""

    snmp: str  # /proc/net/snmp and /proc/net/netstat: "Proto: Name Name ..." lines, each followed by "Proto: value value ..."
    netstat: str
    snmp6: str  # /proc/net/snmp6: one "Icmp6InEchos   3" per line

    def since(self, before: Counters) -> dict[str, int]:
        """The counters that changed since *before*, and by how much, as 'Proto.Name'
        (IPv6's as 'Ip6.InAddrErrors', 'Icmp6.InEchos', 'Icmp6.OutEchoReplies')."""
        out: dict[str, int] = {}
        for now, then in ((self.snmp, before.snmp), (self.netstat, before.netstat)):
            if now == then:
                continue
            earlier = dict(_pairs(then))
            for head, values in _pairs(now):
                was = earlier.get(head)
                if values == was:
                    continue
                proto, names = head.split(":", 1)
                old = dict(zip(names.split(), map(int, was.split(":", 1)[1].split()))) if was else {}
                for name, value in zip(names.split(), map(int, values.split(":", 1)[1].split())):
                    if value != old.get(name, 0):
                        out[f"{proto}.{name}"] = value - old.get(name, 0)
        if self.snmp6 != before.snmp6:
            now6, then6 = self.snmp6.splitlines(), before.snmp6.splitlines()
            if len(now6) == len(then6):  # the kernel prints its counters in a fixed order: only the lines that differ are parsed
                differ = [(n, t) for n, t in zip(now6, then6) if n != t]
                now6, then6 = [n for n, _ in differ], [t for _, t in differ]
            new6, old6 = _snmp6(now6), _snmp6(then6)
            for name, value in new6.items():
                if value != old6.get(name, 0):
                    out[name] = value - old6.get(name, 0)
        return out


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    lines = text.splitlines()
    return zip(lines[::2], lines[1::2])


def _snmp6(lines: Iterable[str]) -> dict[str, int]:
    out = {}
    for line in lines:
        name, _, value = line.partition(" ")
        proto = next((p for p in SNMP6_PROTOCOLS if name.startswith(p)), None)
        if proto is not None and value.strip().isdigit():
            out[f"{proto}.{name[len(proto):]}"] = int(value)
    return out


@dataclass(frozen=True)
class Sighting:
    """One frame on one interface: where the packet was seen, and which way it went."""

    ns: str
    dev: str
    direction: str  # 'in' or 'out'
    time_ns: int  # the kernel's timestamp (CLOCK_REALTIME)
    frame: bytes = field(repr=False)

    @property
    def kind(self) -> str:
        return frames.kind(self.frame)

    @property
    def packet(self) -> packets.Packet | None:
        return frames.parse(self.frame)

    def summary(self) -> str:
        return frames.describe(self.frame)


class Capture:
    """The packet socket and counter files of one namespace, opened in it on first use."""

    def __init__(self, name: str, netns: int):
        self.name = name
        self._netns = netns  # an fd of the namespace, held by its owner
        self._socket: socket.socket | None = None
        self._files: tuple[int, int, int] | None = None

    @property
    def opened(self) -> bool:
        return self._socket is not None

    @property
    def socket(self) -> socket.socket:
        if self._socket is None:
            self._open()
        return self._socket  # type: ignore[return-value]

    @property
    def snmp(self) -> int:
        return self._counter_files()[0]

    @property
    def netstat(self) -> int:
        return self._counter_files()[1]

    @property
    def snmp6(self) -> int:
        return self._counter_files()[2]

    def _counter_files(self) -> tuple[int, int, int]:
        if self._files is None:
            self._open()
        return self._files  # type: ignore[return-value]

    def _open(self) -> None:
        try:
            self._open_inside()
        except OSError as exc:
            if exc.errno not in (errno_mod.EMFILE, errno_mod.ENFILE):
                raise
            self.close()
            limits.ensure_descriptors(4, f"the capture of {self.name!r}")  # raises the soft limit, or says which limit is hit
            self._open_inside()

    def _open_inside(self) -> None:
        with linux.in_netns(self._netns):
            if self._socket is None:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.htons(ETH_P_ALL))
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _SKIP_LINK_CHATTER_PROG)
                except BaseException:
                    sock.close()
                    raise
                self._socket = sock
            if self._files is None:
                opened: list[int] = []
                try:
                    for name in ("snmp", "netstat", "snmp6"):
                        opened.append(os.open(f"/proc/thread-self/net/{name}", os.O_RDONLY | os.O_CLOEXEC))
                except BaseException:
                    for fd in opened:
                        os.close(fd)
                    raise
                self._files = (opened[0], opened[1], opened[2])

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._files is not None:
            for fd in self._files:
                os.close(fd)
            self._files = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take no frame inside the block (if open); what was queued before is dropped."""
        if self._socket is None:
            yield
            return
        sock = self._socket
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _TAKE_NOTHING_PROG)
        try:
            yield
        finally:
            if self._socket is sock:
                sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _SKIP_LINK_CHATTER_PROG)

    def counters(self, *, ipv6: bool = True) -> Counters:
        """`nstat -a`: every SNMP, netstat and SNMP6 counter of this namespace, as read (parsed by `Counters.since`).
        *ipv6=False*: SNMP6 is not read (an IPv4 probe's counters, TCP's included, are all in snmp and netstat)."""
        snmp6 = os.pread(self.snmp6, 1 << 16, 0).decode() if ipv6 else ""
        return Counters(os.pread(self.snmp, 1 << 16, 0).decode(), os.pread(self.netstat, 1 << 16, 0).decode(), snmp6)

    def read(self) -> list[Sighting]:
        """The IPv4, IPv6 and ARP frames seen since the last read (lo included)."""
        out: list[Sighting] = []
        while True:
            try:
                frame, ancillary, _, addr = self.socket.recvmsg(65535, 64)
            except BlockingIOError:
                return out
            if frames.ethertype(frame) not in (packets.ETH_P_IP, packets.ETH_P_ARP, packets.ETH_P_IPV6):
                continue
            stamp = next((struct.unpack("=qq", data[:16]) for _, kind, data in ancillary if kind == SO_TIMESTAMPNS), None)
            when = stamp[0] * 1_000_000_000 + stamp[1] if stamp else time.time_ns()
            out.append(Sighting(self.name, addr[0], "out" if addr[2] == PACKET_OUTGOING else "in", when, frame))
