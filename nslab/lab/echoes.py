"""Echo requests by the thousand: one ICMP (or ICMPv6) socket per source namespace, and
the rounds a sweep sends them in (nslab/lab/sweep.py decides which pairs go
in which round).

A round sends every request of its pairs at once, reads the answers as they
come (each socket takes only echo replies and the ICMP errors that quote a
request, through the kernel's ICMP_FILTER), asks again once, after
`RETRY_AFTER`, for what is still unanswered (a request the kernel dropped on
its way while the round was at its busiest), and stops when every pair is
answered or *timeout* seconds after its last request. Routing, ARP and
bridging are the kernel's, as for any ping. An IPv6 sender does the same with
ICMPv6 (its own types, its errors quoting an IPv6 header, the kernel's checksum).

A pair is also done when the kernel dropped its own request or reply at a
routing decision and said so (`RoutedDrops`: `IP_INNOROUTES`, `IP_INADDRERRORS`,
`IP_RPFILTER` through the drop monitor, matched by echo id, sequence number and
address): that packet is gone and no reply can come for it, as when an ICMP error
came back. Reasons a packet may meet by chance (a full queue, a neighbour not yet
resolved) or on one copy of several (a bridge's flood: `OTHERHOST`, a bridge
family rule: `NETFILTER_DROP`) settle nothing: the pair waits, and is asked again.
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
import os
import selectors
import socket
import struct
import time
from typing import TYPE_CHECKING

from nslab.kernel import linux
from nslab.probes import packets
from nslab.probes.icmp import IP_RECVERR, IPV6_RECVERR, MSG_ERRQUEUE, SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, recverr, replies_and_errors6
from nslab.probes.result import IcmpError

if TYPE_CHECKING:
    from nslab.kernel.drops import Drop, DropMonitor, Mark
    from nslab.lab.live import Netns

SOL_RAW, ICMP_FILTER = 255, 1
PING_GROUP_RANGE = "/proc/sys/net/ipv4/ping_group_range"
SO_RCVBUFFORCE = 33
ECHO_REPLY, UNREACHABLE, TIME_EXCEEDED, ECHO_REQUEST = 0, 3, 11, 8
RETRY_AFTER = 0.05  # seconds after the last request before the unanswered ones are asked again
DROPS_EVERY = 0.01  # seconds between looks at the drop monitor while pairs are unanswered
# Drop reasons decided by the route lookup of the one packet that reached an IP layer addressed to it:
# that packet, request or reply, is gone (see the module).
ROUTED = ("IP_INNOROUTES", "IP_INADDRERRORS", "IP_RPFILTER")
PAYLOAD = b"nslab-sweep"
# What makes the kernel refuse a request at once: final for that pair.
FINAL_ERRNOS = {errno_mod.ENETUNREACH, errno_mod.EHOSTUNREACH, errno_mod.EACCES, errno_mod.EPERM, errno_mod.EINVAL, errno_mod.EMSGSIZE, errno_mod.ENETDOWN}
UNREACH = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable", 9: "net prohibited", 10: "host prohibited", 13: "administratively prohibited"}


class Sender:
    """One source namespace: an ICMP socket, its requests in flight, their answers.

    A ping socket (SOCK_DGRAM, IPPROTO_ICMP) where the kernel allows one: its
    echo replies are delivered to it, where a raw socket only gets a copy and
    the kernel drops the reply itself as unclaimed (NO_SOCKET), which every
    drop monitor on the machine (bpftrace on skb:kfree_skb) would then have to
    report, a million times for a thousand containers. Ping sockets need
    net.ipv4.ping_group_range to hold our group when the socket is made, so
    the namespace's value is widened for that moment and put back at once.
    Elsewhere (an older kernel, a refused sysctl), a raw socket."""

    def __init__(self, src: Netns, rcvbuf: int, version: int = 4):
        self.src = src
        self.v6 = version == 6
        with linux.in_netns(src.handle.fd):
            self.sock, self.datagram = _open(self.v6)
        try:
            self.grow(rcvbuf)
            if self.datagram:
                # errors quote the request they are about
                recverr(self.sock)
                self.sock.bind(("::" if self.v6 else "0.0.0.0", 0))
                self.ident = self.sock.getsockname()[1]  # the kernel puts the socket's "port" in every request
            elif self.v6:
                replies_and_errors6(self.sock)
                self.ident = int.from_bytes(os.urandom(2), "big")
            else:
                # echo replies and the errors that quote a request; not the echo requests others send here
                self.sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", 0xFFFFFFFF & ~(1 << ECHO_REPLY | 1 << UNREACHABLE | 1 << TIME_EXCEEDED)))
                self.ident = int.from_bytes(os.urandom(2), "big")
        except BaseException:
            self.sock.close()
            raise
        self._base = packets.ones_sum(struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, 0, 0) + PAYLOAD)
        self._seq = 0
        self.pending: dict[int, str] = {}  # sequence number -> destination
        self.replied: list[str] = []
        self.failed: list[tuple[str, str]] = []  # (destination, why): refused at once or an ICMP error came back
        self.busy: list[str] = []  # refused for want of resources (ENOBUFS): worth asking again later
        self.asked_again: set[str] = set()

    def close(self) -> None:
        self.sock.close()

    def grow(self, rcvbuf: int) -> None:
        """Room for *rcvbuf* bytes of answers (beyond net.core.rmem_max where this process may)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.rcvbuf = rcvbuf

    def send(self, dst: str, seq: int | None = None) -> None:
        if seq is None:
            self._seq = self._seq % 0xFFFF + 1
            seq = self._seq
        to: tuple[str, int] | tuple[str, int, int, int]
        if self.v6:
            packet, to = packets.echo_request6(self.ident, seq, PAYLOAD), (dst, 0, 0, 0)  # the kernel sums ICMPv6
        else:
            total = self._base + self.ident + seq  # a ping socket writes its own id and checksum
            total = (total & 0xFFFF) + (total >> 16)
            total = (total & 0xFFFF) + (total >> 16)
            packet, to = struct.pack("!BBHHH", ECHO_REQUEST, 0, ~total & 0xFFFF, self.ident, seq) + PAYLOAD, (dst, 0)
        try:
            try:
                self.sock.sendto(packet, to)
            except OSError:
                # An ICMP error for an earlier request leaves its errno on the socket, and the
                # next send reports it (and clears it): that error is not this request's, so
                # send again; what the kernel says now is.
                self.sock.sendto(packet, to)
        except OSError as exc:
            self.pending.pop(seq, None)
            if exc.errno in FINAL_ERRNOS:
                self.failed.append((dst, f"{errno_mod.errorcode.get(exc.errno or 0, exc.errno)} at once ({exc.strerror})"))
            else:
                self.busy.append(dst)
            return
        self.pending[seq] = dst

    def resend(self) -> None:
        for seq, dst in list(self.pending.items()):
            self.asked_again.add(dst)
            self.send(dst, seq)

    def reset(self) -> None:
        self.pending.clear()
        self.replied, self.failed, self.busy = [], [], []
        self.asked_again = set()

    def read(self) -> None:
        if self.datagram:
            self._read_errors()
        while self.pending:
            try:
                data, peer = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an error the kernel queued on the socket; the pair stays pending
                continue
            if self.v6:
                self._answer6(data, peer[0].split("%")[0])
            elif self.datagram:
                self._answer(data, 0, peer[0])
            elif len(data) >= 20:
                self._answer(data, (data[0] & 0x0F) * 4, socket.inet_ntoa(data[12:16]))

    def _answer(self, data: bytes, at: int, source: str) -> None:
        if len(data) < at + 8:
            return
        kind, code, _, ident, seq = struct.unpack_from("!BBHHH", data, at)
        if kind == ECHO_REPLY:
            if (self.datagram or ident == self.ident) and self.pending.get(seq) == source:
                self.replied.append(self.pending.pop(seq))
            return
        inner = at + 8  # a raw socket's ICMP error: the quoted request's IP header, then its first 8 bytes
        if len(data) < inner + 20:
            return
        quoted = inner + (data[inner] & 0x0F) * 4
        if len(data) >= quoted + 8:
            qkind, _, _, qident, qseq = struct.unpack_from("!BBHHH", data, quoted)
            if qkind == ECHO_REQUEST and qident == self.ident and qseq in self.pending:
                self.failed.append((self.pending.pop(qseq), _error(kind, code, source)))

    def _answer6(self, data: bytes, source: str) -> None:
        """An ICMPv6 message (no IPv6 header, ping socket or raw): a reply, or an error quoting our request."""
        packet = packets.icmp6_message(source, "", data)
        if packet is None:
            return
        if packet.icmp_type == packets.ECHO_REPLY6:
            dst = self.pending.get(packet.icmp_seq or 0)
            if (self.datagram or packet.icmp_id == self.ident) and dst is not None and _same(dst, source):
                self.replied.append(self.pending.pop(packet.icmp_seq or 0))
        elif packet.quoted and packet.icmp_id == self.ident and packet.icmp_seq in self.pending:
            self.failed.append((self.pending.pop(packet.icmp_seq or 0), _error6(packet.icmp_type or 0, packet.icmp_code or 0, source)))

    def _read_errors(self) -> None:
        """A ping socket's ICMP errors: each quotes our request (its sequence number)."""
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(2048, 512, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            for level, kind, payload in ancillary:
                if (level, kind) in ((socket.SOL_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)) and len(data) >= 8:
                    _, origin, icmp_type, icmp_code = struct.unpack_from("=IBBB", payload)
                    seq = struct.unpack_from("!H", data, 6)[0]
                    if seq in self.pending:
                        if origin == SO_EE_ORIGIN_ICMP6:
                            offender = socket.inet_ntop(socket.AF_INET6, payload[24:40]) if len(payload) >= 40 else "?"
                            why = _error6(icmp_type, icmp_code, offender)
                        else:
                            offender = socket.inet_ntoa(payload[20:24]) if len(payload) >= 24 else "?"
                            why = _error(icmp_type, icmp_code, offender) if origin == SO_EE_ORIGIN_ICMP else f"local error (origin {origin})"
                        self.failed.append((self.pending.pop(seq), why))


def _open(v6: bool = False) -> tuple[socket.socket, bool]:
    """(socket, is a ping socket), in the calling thread's namespace (ICMPv6 for *v6*:
    IPv6's ping sockets obey the same net.ipv4.ping_group_range)."""
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    try:
        with open(PING_GROUP_RANGE) as f:
            original = f.read().strip()
        low, high = (int(x) for x in original.split())
        gid = os.getegid()
        if not low <= gid <= high:
            _write(PING_GROUP_RANGE, original)  # can it be put back? (a group not mapped into a user namespace cannot)
            _write(PING_GROUP_RANGE, f"{gid} {gid}")
            try:
                return socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto), True
            finally:
                _write(PING_GROUP_RANGE, original)
        return socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto), True
    except (OSError, ValueError):
        return socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto), False


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _error(kind: int, code: int, source: str) -> str:
    what = f"ICMP {UNREACH.get(code, f'unreachable code {code}')}" if kind == UNREACHABLE else "ICMP time exceeded" if kind == TIME_EXCEEDED else f"ICMP type {kind}"
    return f"{what} from {source}"


def _error6(kind: int, code: int, source: str) -> str:
    return str(IcmpError(kind, code, source, v6=True))


def _same(a: str, b: str) -> bool:
    return a == b or socket.inet_pton(socket.AF_INET6, a) == socket.inet_pton(socket.AF_INET6, b)


class RoutedDrops:
    """The drop monitor's reports of a round's own echoes, dropped at a routing decision in one
    of *spaces* (inode -> namespace name): each settles its pair as failed, with the reason."""

    def __init__(self, monitor: DropMonitor, spaces: dict[int, str]):
        self.monitor = monitor
        self.spaces = spaces
        self._mark: Mark | None = None
        self._start = 0

    def begin(self) -> None:
        """From now on: what was dropped before is not this round's."""
        self._mark = self.monitor.position()
        self._start = self._mark.time_ns

    @property
    def watching(self) -> bool:
        return self._mark is not None and self.monitor.available

    def settle(self, senders: list[Sender]) -> None:
        """Move every pending pair of *senders* whose request or reply was dropped to `failed`."""
        if self._mark is None or not self.monitor.available:
            return
        from nslab.kernel.drops import Mark

        upto = self.monitor.position()
        drops = self.monitor.since(self._mark, netns=self.spaces)
        self._mark = Mark(upto.seq, self._start)  # the next look starts where this one surely read
        by_ident: dict[int, list[Sender]] = {}
        for drop in drops:
            found = _echo_of(drop)
            if found is None:
                continue
            if not by_ident:
                for s in senders:
                    by_ident.setdefault(s.ident, []).append(s)
            request, peer, ident, seq = found
            owners = [s for s in by_ident.get(ident, ()) if seq in s.pending and _equal(s.pending[seq], peer)]
            if len(owners) == 1:  # two senders sharing an echo id and a sequence number to one address: not told apart
                sender = owners[0]
                what = "echo request" if request else "echo reply"
                sender.failed.append((sender.pending.pop(seq), f"{what} dropped in {self.spaces[drop.netns]} ({drop.reason})"))


def _echo_of(drop: Drop) -> tuple[bool, str, int, int] | None:
    """(is the request, the pair's destination, echo id, sequence number) of a sweep's echo
    dropped at a routing decision; None for any other drop."""
    if drop.reason not in ROUTED or drop.inner is not None or drop.icmp_id is None or drop.icmp_seq is None:
        return None
    kinds = {(packets.ICMP, ECHO_REQUEST): True, (packets.ICMP, ECHO_REPLY): False, (packets.ICMPV6, packets.ECHO_REQUEST6): True, (packets.ICMPV6, packets.ECHO_REPLY6): False}
    request = kinds.get((drop.proto, drop.icmp_type or 0))
    if request is None or drop.kind not in ("ipv4", "ipv6"):
        return None
    return request, drop.dst if request else drop.src, drop.icmp_id, drop.icmp_seq


def _equal(a: str, b: str) -> bool:
    """Two addresses of either family, however written."""
    try:
        return a == b or ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def round_trip(work: list[tuple[Sender, list[str]]], timeout: float, drops: RoutedDrops | None = None) -> tuple[int, int]:
    """Send every request of *work* ((sender, destinations) each), then wait as the
    module says (with *drops*, a pair whose echo the kernel dropped at a routing decision
    is failed at once). Answers land on the senders; returns (requests sent, sent again)."""
    for sender, _ in work:
        sender.reset()
    if drops is not None:
        drops.begin()
    sent = 0
    for sender, dsts in work:
        for dst in dsts:
            sender.send(dst)
        sent += len(dsts)
        sender.read()  # most answers are back already: the kernel forwards within the send
    last = time.monotonic()
    deadline = last + timeout
    again = 0
    with selectors.DefaultSelector() as selector:
        for sender, _ in work:
            if sender.pending:
                selector.register(sender.sock, selectors.EVENT_READ, sender)
        retry_at: float | None = last + min(RETRY_AFTER, timeout / 2)
        while selector.get_map():
            now = time.monotonic()
            if retry_at is not None and now >= retry_at:
                retry_at = None
                for key in list(selector.get_map().values()):
                    again += len(key.data.pending)
                    key.data.resend()
                now = time.monotonic()
            if now >= deadline:
                break
            wake = deadline if retry_at is None else retry_at
            looking = drops is not None and drops.watching
            for key, _ in selector.select(min(wake - now, DROPS_EVERY) if looking else wake - now):
                key.data.read()
                if not key.data.pending:
                    selector.unregister(key.fileobj)
            if looking and drops is not None:
                senders = [key.data for key in selector.get_map().values()]
                drops.settle(senders)
                for sender in senders:
                    if not sender.pending:
                        selector.unregister(sender.sock)
    return sent, again


__all__ = ["RoutedDrops", "Sender", "round_trip"]
