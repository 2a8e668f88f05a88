"""Reading Ethernet frames just enough to tell whose packet they carry (no scapy).

A probe's packet is named by a `Flow`: its protocol and the identifiers that
survive routing and NAT (the ICMP echo id and sequence, the TCP client port,
the ARP target). Every sighting and every drop is kept only if it carries the
probe's own packet, its answer, or an ICMP error that quotes it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from nslab.probes import packets
from nslab.probes.packets import ECHO_REPLY, ECHO_REQUEST, ETH_P_ARP, ETH_P_IP, ICMP, TCP, UDP, Packet, parse_ip


def ethertype(frame: bytes) -> int:
    return int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0


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


TCP_FLAGS = "FSRPAUEC"  # bit 0 first, as tcpdump names them
ICMP_NAMES = {packets.ECHO_REPLY: "echo-reply", packets.UNREACHABLE: "dest-unreach", packets.ECHO_REQUEST: "echo-request", packets.TIME_EXCEEDED: "time-exceeded"}


def describe(frame: bytes) -> str:
    """One line about a frame, for a trace: 'IP / ICMP 10.0.0.1 > 10.0.0.2 echo-request id=7 seq=1'."""
    arp = arp_fields(frame)
    if arp is not None:
        op, sender, target = arp
        mac = ":".join(f"{b:02x}" for b in frame[22:28])
        return f"ARP who has {target} says {sender}" if op == 1 else f"ARP {sender} is at {mac}"
    p = parse(frame)
    if p is None:
        return f"ethertype 0x{ethertype(frame):04x}"
    if p.proto == packets.ICMP:
        name = ICMP_NAMES.get(p.icmp_type, f"type {p.icmp_type}")  # type: ignore[arg-type]
        about = f" code {p.icmp_code} about id={p.icmp_id} seq={p.icmp_seq}" if p.quoted and p.icmp_id is not None else f" code {p.icmp_code}" if p.quoted else ""
        ids = f" id={p.icmp_id} seq={p.icmp_seq}" if not p.quoted and p.icmp_id is not None else ""
        return f"IP / ICMP {p.src} > {p.dst} {name}{ids}{about}"
    if p.proto in (packets.TCP, packets.UDP) and not p.quoted:
        flags = "".join(c for i, c in enumerate(TCP_FLAGS) if (p.tcp_flags or 0) >> i & 1)
        return f"IP / {'TCP' if p.proto == packets.TCP else 'UDP'} {p.src}:{p.sport} > {p.dst}:{p.dport}{' ' + flags if flags else ''}"
    return f"IP {p.src} > {p.dst} proto {p.proto}"


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
