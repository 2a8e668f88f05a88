"""IPv4 and IPv6 packets, ARP and NDP frames, packed and read by hand: what the probes send and what the lab sees.

No scapy here: a probe builds its echo request, ARP who-has or NDP neighbour
solicitation in a few bytes, and every frame the lab captures is read just
far enough to say whose packet it carries (nslab.diagnosis.frames).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD
ICMP, TCP, UDP, ICMPV6 = 1, 6, 17, 58
ECHO_REPLY, UNREACHABLE, ECHO_REQUEST, TIME_EXCEEDED = 0, 3, 8, 11
# ICMPv6 (RFC 4443, RFC 4861): its own numbers, and Packet Too Big is a message of its own.
UNREACHABLE6, TOO_BIG6, TIME_EXCEEDED6, PARAM_PROBLEM6 = 1, 2, 3, 4
ECHO_REQUEST6, ECHO_REPLY6, SOLICIT6, ADVERT6 = 128, 129, 135, 136
ICMP_ERRORS6 = (UNREACHABLE6, TOO_BIG6, TIME_EXCEEDED6, PARAM_PROBLEM6)
EXTENSION_HEADERS6 = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped to reach L4


@dataclass(frozen=True)
class Packet:
    """The IP header fields of one frame, and its transport identifiers.

    For IPv6, *proto* is the upper-layer protocol (58 for ICMPv6, after any
    extension headers) and *ident* the flow label, which, like IPv4's id,
    stays the same along the packet's way.
    """

    src: str
    dst: str
    proto: int
    ident: int  # the IP id (IPv6: the flow label)
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None  # an echo's id, or the quoted echo's id inside an ICMP error
    icmp_seq: int | None = None
    sport: int | None = None  # TCP/UDP, or the quoted ports inside an ICMP error
    dport: int | None = None
    tcp_flags: int | None = None
    quoted: bool = False  # the identifiers are those of the packet an ICMP error quotes
    mtu: int | None = None  # an ICMPv6 Packet Too Big's MTU

    @property
    def version(self) -> int:
        return 6 if ":" in self.src else 4

    @property
    def is_echo_request(self) -> bool:
        return not self.quoted and (self.proto, self.icmp_type) in ((ICMP, ECHO_REQUEST), (ICMPV6, ECHO_REQUEST6))

    @property
    def is_echo_reply(self) -> bool:
        return not self.quoted and (self.proto, self.icmp_type) in ((ICMP, ECHO_REPLY), (ICMPV6, ECHO_REPLY6))


def parse_ip(data: bytes) -> Packet | None:
    """An IPv4 or IPv6 packet (from its first byte), or None if it is not one."""
    if len(data) >= 40 and data[0] >> 4 == 6:
        return parse_ipv6(data)
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


def parse_ipv6(data: bytes) -> Packet | None:
    """An IPv6 packet (from its first byte), its extension headers skipped, or None."""
    if len(data) < 40 or data[0] >> 4 != 6:
        return None
    label = int.from_bytes(data[1:4], "big") & 0xFFFFF
    src, dst = socket.inet_ntop(socket.AF_INET6, data[8:24]), socket.inet_ntop(socket.AF_INET6, data[24:40])
    proto, at = data[6], 40
    while proto in EXTENSION_HEADERS6 and len(data) >= at + 8:
        proto, at = data[at], at + (data[at + 1] + 1) * 8
    return _upper6(src, dst, proto, label, data[at:])


def _upper6(src: str, dst: str, proto: int, label: int, l4: bytes) -> Packet:
    if proto == ICMPV6 and len(l4) >= 8:
        kind, code = l4[0], l4[1]
        if kind in ICMP_ERRORS6:
            inner = parse_ipv6(l4[8:])
            mtu = int.from_bytes(l4[4:8], "big") if kind == TOO_BIG6 else None
            if inner is not None:
                return Packet(src, dst, proto, label, kind, code, inner.icmp_id, inner.icmp_seq, inner.sport, inner.dport, quoted=True, mtu=mtu)
            return Packet(src, dst, proto, label, kind, code, mtu=mtu)
        if kind in (ECHO_REQUEST6, ECHO_REPLY6):
            echo_id, seq = struct.unpack_from("!HH", l4, 4)
            return Packet(src, dst, proto, label, kind, code, echo_id, seq)
        return Packet(src, dst, proto, label, kind, code)
    if proto in (TCP, UDP) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4, 0)
        flags = l4[13] if proto == TCP and len(l4) >= 14 else None
        return Packet(src, dst, proto, label, sport=sport, dport=dport, tcp_flags=flags)
    return Packet(src, dst, proto, label)


def icmp6_message(src: str, dst: str, body: bytes) -> Packet | None:
    """An ICMPv6 message as a raw ICMPv6 socket reads it (no IPv6 header: the kernel
    gives *src*, and *dst* is the socket's own address)."""
    return _upper6(src, dst, ICMPV6, 0, body) if len(body) >= 8 else None


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


def echo_request6(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMPv6 echo request (type 128); a raw ICMPv6 socket fills in its checksum."""
    return struct.pack("!BBHHH", ECHO_REQUEST6, 0, 0, ident, seq) + payload


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


def solicited_node(address: str) -> str:
    """The solicited-node multicast group of *address* (ff02::1:ffXX:XXXX, RFC 4291)."""
    low = socket.inet_pton(socket.AF_INET6, address)[13:]
    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex("ff02" + "00" * 9 + "01ff") + low)


def ndp_solicit(mac: str, src: str, target: str) -> bytes:
    """An Ethernet frame 'neighbour solicitation for TARGET from SRC' (RFC 4861 4.3), to
    TARGET's solicited-node group, hop limit 255, with SRC's link-layer address."""
    group = solicited_node(target)
    group_bytes = socket.inet_pton(socket.AF_INET6, group)
    body = struct.pack("!BBHI", SOLICIT6, 0, 0, 0) + socket.inet_pton(socket.AF_INET6, target) + bytes((1, 1)) + mac_bytes(mac)
    saddr = socket.inet_pton(socket.AF_INET6, src)
    pseudo = saddr + group_bytes + struct.pack("!I3xB", len(body), ICMPV6)
    checksum = ~ones_sum(pseudo + body) & 0xFFFF
    body = body[:2] + struct.pack("!H", checksum) + body[4:]
    header = struct.pack("!IHBB", 6 << 28, len(body), ICMPV6, 255) + saddr + group_bytes
    return b"\x33\x33" + group_bytes[12:] + mac_bytes(mac) + struct.pack("!H", ETH_P_IPV6) + header + body


def ndp_fields(frame: bytes) -> tuple[int, str, str, str | None] | None:
    """(135 or 136, IPv6 source, target address, link-layer address option) of a neighbour
    solicitation or advertisement frame, else None."""
    if len(frame) < 14 + 40 + 24 or frame[12:14] != struct.pack("!H", ETH_P_IPV6) or frame[20] != ICMPV6:
        return None
    body = frame[54:]
    if body[0] not in (SOLICIT6, ADVERT6):
        return None
    option = body[24:32]
    lladdr = ":".join(f"{b:02x}" for b in option[2:8]) if len(option) == 8 and option[0] in (1, 2) else None
    return body[0], socket.inet_ntop(socket.AF_INET6, frame[22:38]), socket.inet_ntop(socket.AF_INET6, body[8:24]), lladdr


def ndp_answer(frame: bytes) -> tuple[str, str | None] | None:
    """(target address, its link-layer address) of a neighbour advertisement frame, else None."""
    fields = ndp_fields(frame)
    return (fields[2], fields[3]) if fields is not None and fields[0] == ADVERT6 else None
