"""Reading Ethernet frames just enough to tell whose packet they carry (no scapy).

A probe's packet is named by a `Flow`: its protocol and the identifiers that
survive routing and NAT (the ICMP echo id and sequence, the TCP client port,
the ARP target). Every sighting and every drop is kept only if it carries the
probe's own packet, its answer, or an ICMP error that quotes it.
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


def ethertype(frame: bytes) -> int:
    return int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0


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


def parse(frame: bytes) -> Packet | None:
    return parse_ip(frame[14:]) if ethertype(frame) == ETH_P_IP else None


def arp_fields(frame: bytes) -> tuple[int, str, str] | None:
    """(op, sender IP, target IP) of an ARP frame, or None."""
    if ethertype(frame) != ETH_P_ARP or len(frame) < 42:
        return None
    return int.from_bytes(frame[20:22], "big"), socket.inet_ntoa(frame[28:32]), socket.inet_ntoa(frame[38:42])


def kind(frame: bytes) -> str:
    """'echo-request', 'echo-reply', 'icmp', 'tcp', 'udp', 'ip', 'arp-request', 'arp-reply' or 'other'."""
    arp = arp_fields(frame)
    if arp is not None:
        return "arp-request" if arp[0] == 1 else "arp-reply"
    packet = parse(frame)
    if packet is None:
        return "other"
    if packet.proto == ICMP:
        if packet.quoted:
            return "icmp"
        return {ECHO_REQUEST: "echo-request", ECHO_REPLY: "echo-reply"}.get(packet.icmp_type, "icmp")  # type: ignore[arg-type]
    return {TCP: "tcp", UDP: "udp"}.get(packet.proto, "ip")


@dataclass(frozen=True)
class Flow:
    """The probe's packet, by what survives routing and NAT.

    ping: the echo's id and sequence; tcp: the client's port (a port forward
    changes the server's); arp: the address asked for. `hops` are the
    addresses whose ARP traffic belongs to the probe (its next hop, the target).
    """

    probe: str  # 'ping', 'tcp', 'http', 'arp'
    dst: str
    icmp_id: int | None = None
    icmp_seq: int | None = None
    client_port: int | None = None
    hops: tuple[str, ...] = ()

    def matches_packet(self, p: Packet) -> bool:
        if self.probe == "ping":
            return p.proto == ICMP and p.icmp_id == self.icmp_id and p.icmp_seq == self.icmp_seq and (p.quoted or p.icmp_type in (ECHO_REQUEST, ECHO_REPLY))
        if self.client_port is not None:
            ours = p.proto == TCP or (p.proto == ICMP and p.quoted)
            return ours and self.client_port in (p.sport, p.dport)
        return False

    def matches(self, frame: bytes) -> bool:
        arp = arp_fields(frame)
        if arp is not None:
            return bool({arp[1], arp[2]} & set(self.hops))
        packet = parse(frame)
        return packet is not None and self.matches_packet(packet)

    def is_request(self, p: Packet) -> bool:
        """The probe's own packet (not its answer, not an error about it)."""
        if p.quoted:
            return False
        if self.probe == "ping":
            return p.icmp_type == ECHO_REQUEST
        return p.proto == TCP and p.sport == self.client_port

    def is_answer(self, p: Packet) -> bool:
        if p.quoted:
            return False
        if self.probe == "ping":
            return p.icmp_type == ECHO_REPLY
        return p.proto == TCP and p.dport == self.client_port
