"""IPv4 packets and ARP frames, packed and read by hand: what the probes send and what the lab sees.

No scapy here: a probe builds its echo request or ARP who-has in a few
bytes, and every frame the lab captures is read just far enough to say whose
packet it carries (nslab.diagnosis.frames).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806
ICMP, TCP, UDP = 1, 6, 17
ECHO_REPLY, UNREACHABLE, ECHO_REQUEST, TIME_EXCEEDED = 0, 3, 8, 11


@dataclass(frozen=True)
class Packet:
    """The IPv4 header fields of one frame, and its transport identifiers."""

    src: str
    dst: str
    proto: int
    ident: int  # the IP id
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None  # an echo's id, or the quoted echo's id inside an ICMP error
    icmp_seq: int | None = None
    sport: int | None = None  # TCP/UDP, or the quoted ports inside an ICMP error
    dport: int | None = None
    tcp_flags: int | None = None
    quoted: bool = False  # the identifiers are those of the packet an ICMP error quotes


def parse_ip(data: bytes) -> Packet | None:
    """An IPv4 packet (from its first byte), or None if it is not one."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0xF) * 4
    ident, proto = struct.unpack_from("!H", data, 4)[0], data[9]
    src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
    l4 = data[ihl:]
    if proto == ICMP and len(l4) >= 8:
        kind, code = l4[0], l4[1]
        if kind in (UNREACHABLE, TIME_EXCEEDED):
            inner = parse_ip(l4[8:])
            if inner is not None:
                return Packet(src, dst, proto, ident, kind, code, inner.icmp_id, inner.icmp_seq, inner.sport, inner.dport, quoted=True)
            return Packet(src, dst, proto, ident, kind, code)
        echo_id, seq = struct.unpack_from("!HH", l4, 4)
        return Packet(src, dst, proto, ident, kind, code, echo_id, seq)
    if proto in (TCP, UDP) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4, 0)
        flags = l4[13] if proto == TCP and len(l4) >= 14 else None
        return Packet(src, dst, proto, ident, sport=sport, dport=dport, tcp_flags=flags)
    return Packet(src, dst, proto, ident)


def ones_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of *data* (RFC 1071), before the final complement."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request (type 8), checksummed, to send on a raw ICMP socket."""
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, ~ones_sum(header + payload) & 0xFFFF, ident, seq) + payload


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def arp_request(mac: str, psrc: str, pdst: str) -> bytes:
    """An Ethernet broadcast 'who has PDST, tell PSRC' from *mac*."""
    src = mac_bytes(mac)
    return (
        b"\xff" * 6 + src + struct.pack("!H", ETH_P_ARP)
        + struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + src + socket.inet_aton(psrc) + b"\0" * 6 + socket.inet_aton(pdst)
    )  # fmt: skip


def arp_answer(frame: bytes) -> tuple[str, str] | None:
    """(sender IP, sender MAC) of an ARP reply frame, else None."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP) or frame[20:22] != b"\x00\x02":
        return None
    return socket.inet_ntoa(frame[28:32]), ":".join(f"{b:02x}" for b in frame[22:28])
