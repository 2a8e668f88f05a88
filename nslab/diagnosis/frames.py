"""Reading Ethernet frames just enough to tell whose packet they carry (no scapy).

A probe's packet is named by a `Flow`: its protocol and the identifiers that
survive routing and NAT (the ICMP echo id and sequence, the TCP client port,
the ARP or NDP target). Every sighting and every drop is kept only if it carries
the probe's own packet, its answer, or an ICMP error that quotes it. IPv6 is read
like IPv4: ICMPv6 echoes and errors, TCP over IPv6, and NDP's solicitations and
advertisements, the twins of ARP's who-has and is-at.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from nslab.probes import packets
from nslab.probes.packets import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMP, ICMPV6, TCP, UDP, Packet, parse_ip

IP_TYPES = (ETH_P_IP, ETH_P_IPV6)
# ICMPv6 every IPv6 link carries on its own (MLD, router and neighbour discovery):
# it moves no counter a verdict reads but ICMPv6's own per-type ones.
LINK_CHATTER6 = frozenset(range(130, 138)) | {143}


def ethertype(frame: bytes) -> int:
    return int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0


def destination(frame: bytes) -> str:
    """The frame's destination MAC, as ip(8) prints one."""
    return frame[:6].hex(":")


def parse(frame: bytes) -> Packet | None:
    return parse_ip(frame[14:]) if ethertype(frame) in IP_TYPES else None


def is_chatter(frame: bytes) -> bool:
    """An IPv6 link's own MLD, router or neighbour discovery, not anyone's traffic."""
    packet = parse(frame) if ethertype(frame) == ETH_P_IPV6 else None
    return packet is not None and packet.proto == ICMPV6 and packet.icmp_type in LINK_CHATTER6


def neighbour_fields(frame: bytes) -> tuple[int, str, str] | None:
    """(op, sender, target) of an ARP frame, or of an NDP one read the same way: a
    solicitation is op 1 (sender: its source address), an advertisement op 2 (sender:
    the address it advertises, target: where it goes)."""
    arp = arp_fields(frame)
    if arp is not None:
        return arp
    ndp = packets.ndp_fields(frame)
    if ndp is None:
        return None
    kind, src, target, _ = ndp
    if kind == packets.SOLICIT6:
        return 1, src, target
    return 2, target, socket.inet_ntop(socket.AF_INET6, frame[38:54])


def fields_of(frame: bytes) -> tuple[int, str, str]:
    """`neighbour_fields` of a frame already classified as ARP or NDP (its fields were read to classify it)."""
    fields = neighbour_fields(frame)
    if fields is None:
        raise ValueError(f"not an ARP or NDP frame: {frame[:64].hex()}")
    return fields


def arp_fields(frame: bytes) -> tuple[int, str, str] | None:
    """(op, sender IP, target IP) of an ARP frame, or None."""
    if ethertype(frame) != ETH_P_ARP or len(frame) < 42:
        return None
    return int.from_bytes(frame[20:22], "big"), socket.inet_ntoa(frame[28:32]), socket.inet_ntoa(frame[38:42])


def kind(frame: bytes) -> str:
    """'echo-request', 'echo-reply', 'icmp', 'tcp', 'udp', 'ip', 'arp-request', 'arp-reply',
    'ndp-solicit', 'ndp-advert' or 'other' (ICMPv6 echoes are echoes, its errors 'icmp')."""
    arp = arp_fields(frame)
    if arp is not None:
        return "arp-request" if arp[0] == 1 else "arp-reply"
    ndp = packets.ndp_fields(frame)
    if ndp is not None:
        return "ndp-solicit" if ndp[0] == packets.SOLICIT6 else "ndp-advert"
    packet = parse(frame)
    if packet is None:
        return "other"
    if packet.proto in (ICMP, ICMPV6):
        return "echo-request" if packet.is_echo_request else "echo-reply" if packet.is_echo_reply else "icmp"
    return {TCP: "tcp", UDP: "udp"}.get(packet.proto, "ip")


SOLICITS, ADVERTS = ("arp-request", "ndp-solicit"), ("arp-reply", "ndp-advert")  # a neighbour's resolution, either family


def resolver(address: str) -> str:
    """How *address*'s link-layer address is asked for: 'ARP' or 'NDP'."""
    return "NDP" if ":" in address else "ARP"


TCP_FLAGS = "FSRPAUEC"  # bit 0 first, as tcpdump names them
ICMP_NAMES = {packets.ECHO_REPLY: "echo-reply", packets.UNREACHABLE: "dest-unreach", packets.ECHO_REQUEST: "echo-request", packets.TIME_EXCEEDED: "time-exceeded"}
ICMP6_NAMES = {
    packets.ECHO_REQUEST6: "echo-request",
    packets.ECHO_REPLY6: "echo-reply",
    packets.UNREACHABLE6: "dest-unreach",
    packets.TOO_BIG6: "packet-too-big",
    packets.TIME_EXCEEDED6: "time-exceeded",
    packets.PARAM_PROBLEM6: "param-problem",
}


def describe(frame: bytes) -> str:
    """One line about a frame, for a trace: 'IP / ICMP 10.0.0.1 > 10.0.0.2 echo-request id=7 seq=1'."""
    arp = arp_fields(frame)
    if arp is not None:
        op, sender, target = arp
        mac = ":".join(f"{b:02x}" for b in frame[22:28])
        return f"ARP who has {target} says {sender}" if op == 1 else f"ARP {sender} is at {mac}"
    ndp = packets.ndp_fields(frame)
    if ndp is not None:
        kind, src, target, lladdr = ndp
        return f"NDP who has {target} says {src}" if kind == packets.SOLICIT6 else f"NDP {target} is at {lladdr or '?'}"
    p = parse(frame)
    if p is None:
        return f"ethertype 0x{ethertype(frame):04x}"
    ip = "IPv6" if p.version == 6 else "IP"
    if p.proto in (packets.ICMP, packets.ICMPV6):
        names, icmp = (ICMP6_NAMES, "ICMPv6") if p.proto == packets.ICMPV6 else (ICMP_NAMES, "ICMP")
        name = names.get(p.icmp_type, f"type {p.icmp_type}")  # type: ignore[arg-type]
        about = f" code {p.icmp_code} about id={p.icmp_id} seq={p.icmp_seq}" if p.quoted and p.icmp_id is not None else f" code {p.icmp_code}" if p.quoted else ""
        about += f" mtu {p.mtu}" if p.mtu is not None else ""
        ids = f" id={p.icmp_id} seq={p.icmp_seq}" if not p.quoted and p.icmp_id is not None else ""
        return f"{ip} / {icmp} {p.src} > {p.dst} {name}{ids}{about}"
    if p.proto in (packets.TCP, packets.UDP) and not p.quoted:
        flags = "".join(c for i, c in enumerate(TCP_FLAGS) if (p.tcp_flags or 0) >> i & 1)
        return f"{ip} / {'TCP' if p.proto == packets.TCP else 'UDP'} {p.src}:{p.sport} > {p.dst}:{p.dport}{' ' + flags if flags else ''}"
    return f"{ip} {p.src} > {p.dst} proto {p.proto}"


@dataclass(frozen=True)
class Flow:
    """The probe's packet, by what survives routing and NAT.

    ping: the echo's id and sequence; tcp: the client's port (a port forward
    changes the server's); arp, ndp: the address asked for. `hops` are the
    addresses whose ARP or NDP traffic belongs to the probe (its next hop, the
    target). IPv6 addresses are kept as the kernel writes them (`fd00::2`).
    """

    probe: str  # 'ping', 'tcp', 'http', 'arp', 'ndp'
    dst: str
    icmp_id: int | None = None
    icmp_seq: int | None = None
    client_port: int | None = None
    hops: tuple[str, ...] = ()

    @property
    def resolves(self) -> bool:
        """The probe is a neighbour resolution itself (ARP or NDP), not a packet routed to dst."""
        return self.probe in ("arp", "ndp")

    @property
    def v6(self) -> bool:
        return ":" in self.dst

    def matches_packet(self, p: Packet) -> bool:
        if self.probe == "ping":
            echo = p.quoted or p.is_echo_request or p.is_echo_reply
            return p.proto in (ICMP, ICMPV6) and p.icmp_id == self.icmp_id and p.icmp_seq == self.icmp_seq and echo
        if self.client_port is not None:
            ours = p.proto == TCP or (p.proto in (ICMP, ICMPV6) and p.quoted)
            return ours and self.client_port in (p.sport, p.dport)
        return False

    def matches(self, frame: bytes) -> bool:
        asked = neighbour_fields(frame)
        if asked is not None:
            return bool({asked[1], asked[2]} & set(self.hops))
        packet = parse(frame)
        return packet is not None and self.matches_packet(packet)

    def is_request(self, p: Packet) -> bool:
        """The probe's own packet (not its answer, not an error about it)."""
        if p.quoted:
            return False
        if self.probe == "ping":
            return p.is_echo_request
        return p.proto == TCP and p.sport == self.client_port

    def is_answer(self, p: Packet) -> bool:
        if p.quoted:
            return False
        if self.probe == "ping":
            return p.is_echo_reply
        return p.proto == TCP and p.dport == self.client_port
