"""What one namespace sees: every frame on every interface, and its SNMP counters.

A `Capture` is opened inside its namespace when the namespace is made (so no
frame is missed) and read around each probe. Frames carry the kernel's own
receive or transmit timestamp, kept as integer nanoseconds: a veth hop takes
less time than a float of epoch seconds can tell apart.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field

from nslab.diagnosis import frames

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35


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
    def packet(self) -> frames.Packet | None:
        return frames.parse(self.frame)

    def summary(self) -> str:
        from scapy.layers.l2 import Ether

        return Ether(self.frame).summary()


class Capture:
    """The packet socket and counter files of one namespace; opened inside it."""

    def __init__(self, name: str):
        self.name = name
        self.socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.htons(ETH_P_ALL))
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.snmp = os.open("/proc/thread-self/net/snmp", os.O_RDONLY | os.O_CLOEXEC)
        self.netstat = os.open("/proc/thread-self/net/netstat", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        self.socket.close()
        os.close(self.snmp)
        os.close(self.netstat)

    def counters(self) -> dict[str, int]:
        """`nstat -a`: every SNMP and netstat counter of this namespace, as 'Proto.Name'."""
        out: dict[str, int] = {}
        for fd in (self.snmp, self.netstat):
            lines = os.pread(fd, 1 << 16, 0).decode().splitlines()
            for head, values in zip(lines[::2], lines[1::2]):
                proto, names = head.split(":", 1)
                for name, value in zip(names.split(), values.split(":", 1)[1].split()):
                    out[f"{proto}.{name}"] = int(value)
        return out

    def read(self) -> list[Sighting]:
        """The IPv4 and ARP frames seen since the last read (lo included)."""
        out = []
        while True:
            try:
                frame, ancillary, _, addr = self.socket.recvmsg(65535, 64)
            except BlockingIOError:
                return out
            if frames.ethertype(frame) not in (frames.ETH_P_IP, frames.ETH_P_ARP):
                continue
            stamp = next((struct.unpack("=qq", data[:16]) for _, kind, data in ancillary if kind == SO_TIMESTAMPNS), None)
            when = stamp[0] * 1_000_000_000 + stamp[1] if stamp else time.time_ns()
            out.append(Sighting(self.name, addr[0], "out" if addr[2] == PACKET_OUTGOING else "in", when, frame))
