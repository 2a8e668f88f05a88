"""What one drop report says: the packet's headers, where it died, and why (the kernel's reason name)."""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass, fields
from typing import Any, Literal

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD
RAW_WORDS = 12  # 96 bytes from the network header: IPv4 (+ options) or IPv6, L4, and an ICMP error's quoted header
ICMP_ERRORS = {3, 4, 5, 11, 12}  # unreachable, source quench, redirect, time exceeded, parameter problem
ICMP_ECHOES = {0, 8}
ICMP6_ERRORS = {1, 2, 3, 4}  # unreachable, packet too big, time exceeded, parameter problem
ICMP6_ECHOES = {128, 129}
PORTS = {6, 17, 132, 136}  # tcp, udp, sctp, udplite: ports come first


@dataclass(frozen=True)
class Inner:
    """The header an ICMP error quotes (the packet that caused it), as far as it was read."""

    src: str
    dst: str
    proto: int
    ip_id: int
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None


@dataclass(frozen=True)
class Drop:
    """One packet the kernel dropped, with its reason, where, and its header fields.

    time_ns is CLOCK_MONOTONIC (bpf_ktime_get_ns), comparable with
    `time.monotonic_ns()`. For ARP, src and dst are the sender's and target's
    IPv4 addresses, proto is 0 and arp_op the opcode. For IPv6, proto is the
    next header (58 for ICMPv6; extension headers are not followed) and ip_id
    the flow label. Fields a packet does not have (or whose bytes were not in
    the skb's linear data) are None.
    """

    time_ns: int
    cpu: int
    netns: int  # inode of the network namespace (os.fstat(fd).st_ino), 0 if unknown
    ifindex: int  # 0 if unknown
    via: Literal["dev", "dst", "socket", "none"]  # how netns and ifindex were found (see the module docstring)
    reason: str  # the kernel's name, e.g. "IP_INADDRERRORS"
    kind: Literal["ipv4", "ipv6", "arp"]
    src: str
    dst: str
    proto: int  # IP protocol number (1 icmp, 6 tcp, 17 udp); 0 for ARP
    ip_id: int
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    arp_op: int | None = None
    inner: Inner | None = None
    mtu: int | None = None  # an ICMPv6 Packet Too Big's

    def matches(self, **want: object) -> bool:
        """True if every given field has the given value: `d.matches(proto=1, icmp_id=7, icmp_seq=1)`."""
        unknown = set(want) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"Drop has no field {sorted(unknown)[0]!r}")
        return all(getattr(self, k) == v for k, v in want.items())


@dataclass(frozen=True)
class Mark:
    """Where a caller started watching: drops read after `seq` that happened at or after `time_ns`."""

    seq: int
    time_ns: int


# -- the BPF side ----------------------------------------------------------------------


_SYMBOL = re.compile(r'\{\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*"([^"]+)"\s*\}')


LACKS_REASONS = "kernel lacks drop reasons: its skb:kfree_skb tracepoint has no reason field (Linux 5.17 added it)"


def lacking(format_text: str) -> str | None:
    """None if the tracepoint's format has the drop reason, else LACKS_REASONS (one line, in the
    words the kernel matrix reads as a missing kernel feature rather than a harness problem)."""
    return None if re.search(r"^\s*field:.*\breason;", format_text, re.MULTILINE) else LACKS_REASONS


def reason_names(format_text: str) -> dict[int, str]:
    """The reason table of the tracepoint's format file (`__print_symbolic(REC->reason, {2, "NOT_SPECIFIED"}, ...)`)."""
    for line in format_text.splitlines():
        if line.startswith("print fmt:") and "__print_symbolic(REC->reason" in line:
            table = line.split("__print_symbolic(REC->reason", 1)[1]
            return {int(num, 0): name for num, name in _SYMBOL.findall(table)}
    return {}


# -- decoding a drop line ----------------------------------------------------------------

_VIA = {0: "none", 1: "dev", 2: "dst", 3: "socket"}


def parse(line: str, reasons: dict[int, str]) -> Drop | None:
    """A `D ...` line from the BPF program as a Drop (None if it is not one)."""
    parts = line.split()
    if len(parts) != 10 + RAW_WORDS or parts[0] != "D":
        return None
    try:
        t, cpu, ns, ifi, by, reason, ethertype, nh, tail = (int(p) for p in parts[1:10])
        raw = struct.pack(f"={RAW_WORDS}Q", *(int(w, 16) for w in parts[10:]))
    except (ValueError, struct.error):
        return None
    length = tail - nh if nh != 0xFFFF and tail >= nh else 0
    head: dict[str, Any] = dict(time_ns=t, cpu=cpu, netns=ns, ifindex=ifi, via=_VIA.get(by, "none"), reason=reasons.get(reason, f"reason {reason}"))
    return Drop(**head, **decode(ethertype, raw[: max(0, min(length, len(raw)))]))


def _ip(b: bytes) -> str:
    return socket.inet_ntoa(b)


def _ip6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def _decode6(raw: bytes) -> dict[str, Any]:
    """An IPv6 header and what follows it directly (ICMPv6, TCP, UDP)."""
    if len(raw) < 40 or raw[0] >> 4 != 6:
        return dict(kind="ipv6", src="", dst="", proto=0, ip_id=0)
    out: dict[str, Any] = dict(kind="ipv6", src=_ip6(raw[8:24]), dst=_ip6(raw[24:40]), proto=raw[6], ip_id=int.from_bytes(raw[1:4], "big") & 0xFFFFF)
    l4 = raw[40:48]
    if out["proto"] in PORTS and len(l4) >= 4:
        out.update(sport=int.from_bytes(l4[0:2], "big"), dport=int.from_bytes(l4[2:4], "big"))
    elif out["proto"] == 58 and len(l4) >= 2:
        out.update(icmp_type=l4[0], icmp_code=l4[1])
        if l4[0] in ICMP6_ECHOES and len(l4) >= 8:
            out.update(icmp_id=int.from_bytes(l4[4:6], "big"), icmp_seq=int.from_bytes(l4[6:8], "big"))
        elif l4[0] in ICMP6_ERRORS:
            if l4[0] == 2 and len(l4) >= 8:
                out.update(mtu=int.from_bytes(l4[4:8], "big"))
            out.update(inner=_inner6(raw[48:]))
    return out


def _inner6(raw: bytes) -> Inner | None:
    if len(raw) < 40 or raw[0] >> 4 != 6:
        return None
    inner: dict[str, Any] = dict(src=_ip6(raw[8:24]), dst=_ip6(raw[24:40]), proto=raw[6], ip_id=int.from_bytes(raw[1:4], "big") & 0xFFFFF)
    l4 = raw[40:48]
    if inner["proto"] in PORTS and len(l4) >= 4:
        inner.update(sport=int.from_bytes(l4[0:2], "big"), dport=int.from_bytes(l4[2:4], "big"))
    elif inner["proto"] == 58 and len(l4) >= 8:
        inner.update(icmp_type=l4[0], icmp_id=int.from_bytes(l4[4:6], "big"), icmp_seq=int.from_bytes(l4[6:8], "big"))
    return Inner(**inner)


def decode(ethertype: int, raw: bytes) -> dict[str, Any]:
    """Header fields from the bytes at the network header (only those present in *raw*)."""
    if ethertype == ETH_P_ARP:
        if len(raw) < 28:
            return dict(kind="arp", src="", dst="", proto=0, ip_id=0)
        return dict(kind="arp", src=_ip(raw[14:18]), dst=_ip(raw[24:28]), proto=0, ip_id=0, arp_op=int.from_bytes(raw[6:8], "big"))
    if ethertype == ETH_P_IPV6:
        return _decode6(raw)
    if len(raw) < 20 or raw[0] >> 4 != 4:
        return dict(kind="ipv4", src="", dst="", proto=0, ip_id=0)
    ihl = (raw[0] & 0xF) * 4
    out: dict[str, Any] = dict(kind="ipv4", src=_ip(raw[12:16]), dst=_ip(raw[16:20]), proto=raw[9], ip_id=int.from_bytes(raw[4:6], "big"))
    first_fragment = int.from_bytes(raw[6:8], "big") & 0x1FFF == 0
    l4 = raw[ihl : ihl + 8] if ihl >= 20 and first_fragment else b""
    if out["proto"] in PORTS and len(l4) >= 4:
        out.update(sport=int.from_bytes(l4[0:2], "big"), dport=int.from_bytes(l4[2:4], "big"))
    elif out["proto"] == 1 and len(l4) >= 2:
        out.update(icmp_type=l4[0], icmp_code=l4[1])
        if l4[0] in ICMP_ECHOES and len(l4) >= 8:
            out.update(icmp_id=int.from_bytes(l4[4:6], "big"), icmp_seq=int.from_bytes(l4[6:8], "big"))
        elif l4[0] in ICMP_ERRORS:
            out.update(inner=_inner(raw[ihl + 8 :]))
    return out


def _inner(raw: bytes) -> Inner | None:
    if len(raw) < 20 or raw[0] >> 4 != 4:
        return None
    ihl = (raw[0] & 0xF) * 4
    inner: dict[str, Any] = dict(src=_ip(raw[12:16]), dst=_ip(raw[16:20]), proto=raw[9], ip_id=int.from_bytes(raw[4:6], "big"))
    l4 = raw[ihl : ihl + 8]
    if inner["proto"] in PORTS and len(l4) >= 4:
        inner.update(sport=int.from_bytes(l4[0:2], "big"), dport=int.from_bytes(l4[2:4], "big"))
    elif inner["proto"] == 1 and len(l4) >= 8:
        inner.update(icmp_type=l4[0], icmp_id=int.from_bytes(l4[4:6], "big"), icmp_seq=int.from_bytes(l4[6:8], "big"))
    return Inner(**inner)


# -- what is missing -----------------------------------------------------------------------
