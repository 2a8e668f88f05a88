"""A small rtnetlink codec: the messages nslab sends and reads, packed by hand.

Only what a lab needs (links, addresses, routes, neighbours, namespace ids),
so that building a lab costs a few system calls and no library import: the
whole of pyroute2 takes about 100 ms to import, this module about 1 ms.
Numbers and layouts are the kernel's uapi headers (linux/netlink.h,
linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/neighbour.h,
linux/net_namespace.h); the names keep the kernel's spelling so that they can
be looked up there.

    sock = RtnlSocket()                               # in the calling thread's namespace
    for msg in sock.dump(RTM_GETLINK, ifinfomsg()):
        print(msg.index, msg.text(IFLA_IFNAME))
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Iterable

# -- netlink (linux/netlink.h) ----------------------------------------------------
NLMSG_HDR = struct.Struct("=IHHII")  # length, type, flags, seq, pid
NLA_HDR = struct.Struct("=HH")  # length, type
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLM_F_ACK_TLVS = 0x200  # on an error message: extended-ack attributes follow
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 1, 2, 10, 11
NLMSGERR_ATTR_MSG = 1

# -- rtnetlink message types (linux/rtnetlink.h) ------------------------------------
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID = 88, 89, 90
RTNLGRP_NSID = 28

# -- bodies ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Body:
    """A message's fixed part, declared as data the way pyroute2 declares it: (name, struct
    format) per field, in order, padding as `__pad`. Read and written by name, never by position."""

    name: str
    fields: tuple[tuple[str, str], ...]
    struct: struct.Struct = field(init=False, repr=False, compare=False)
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "struct", struct.Struct("=" + "".join(fmt for _, fmt in self.fields)))
        object.__setattr__(self, "names", tuple(name for name, _ in self.fields if not name.startswith("__")))

    def read(self, data: bytes, start: int) -> dict[str, int]:
        return dict(zip(self.names, self.struct.unpack_from(data, start)))

    def pack(self, **values: int) -> bytes:
        """The body with *values* by name, every other field 0."""
        unknown = set(values) - set(self.names)
        if unknown:
            raise TypeError(f"{self.name} has no field {sorted(unknown)[0]!r}; its fields: {self.names}")
        return self.struct.pack(*(values.get(name, 0) for name in self.names))


IFINFOMSG = Body("ifinfomsg", (("family", "B"), ("__pad", "x"), ("ifi_type", "H"), ("index", "i"), ("flags", "I"), ("change", "I")))
IFADDRMSG = Body("ifaddrmsg", (("family", "B"), ("prefixlen", "B"), ("flags", "B"), ("scope", "B"), ("index", "I")))
RTMSG = Body("rtmsg", (("family", "B"), ("dst_len", "B"), ("src_len", "B"), ("tos", "B"), ("table", "B"), ("proto", "B"), ("scope", "B"), ("type", "B"), ("flags", "I")))
NDMSG = Body("ndmsg", (("family", "B"), ("__pad", "xxx"), ("ifindex", "i"), ("state", "H"), ("flags", "B"), ("ndm_type", "B")))
RTGENMSG = Body("rtgenmsg", (("family", "B"), ("__pad", "xxx")))
FIB_RULE_HDR = Body("fib_rule_hdr", (("family", "B"), ("dst_len", "B"), ("src_len", "B"), ("tos", "B"), ("table", "B"), ("res1", "B"), ("res2", "B"), ("action", "B"), ("flags", "I")))

# -- attributes -----------------------------------------------------------------------
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_EXT_MASK, IFLA_LINK_NETNSID = 16, 18, 28, 29, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_AF_SPEC, IFLA_INET6_FLAGS, IF_READY = 26, 1, 0x80000000  # AF_INET6's flags in AF_SPEC; IF_READY: addrconf set the link up
IFLA_INET6_CONF, DEVCONF_ACCEPT_DAD = 2, 27  # AF_INET6's sysctls in AF_SPEC: an array of s32 indexed by DEVCONF_*
VETH_INFO_PEER = 1
RTEXT_FILTER_BRVLAN, RTEXT_FILTER_SKIP_STATS = 1 << 1, 1 << 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_SRC, RTA_IIF, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE, RTA_MARK = 1, 2, 3, 4, 5, 6, 7, 15, 16
FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_GOTO, FRA_PRIORITY, FRA_FWMARK, FRA_TABLE, FRA_FWMASK, FRA_OIFNAME = 1, 2, 3, 4, 6, 10, 15, 16, 17
NDA_DST, NDA_LLADDR, NDA_MASTER = 1, 2, 9
NETNSA_NSID, NETNSA_FD = 1, 3

# -- values -----------------------------------------------------------------------------
IFF_UP, IFF_NOARP, IFF_LOWER_UP = 0x1, 0x80, 0x10000
IFA_F_NODAD = 0x2
IFA_FLAGS = 8  # u32: all of an address's flags (the header's byte holds the low 8)
IFA_STATES = {0x40: "tentative", 0x08: "dadfailed", 0x20: "deprecated", 0x02: "nodad"}  # as `ip -6 addr` prints them
RT_TABLE_MAIN = 254
TABLES = {253: "default", 254: "main", 255: "local"}
RTM_F_FIB_MATCH = 0x2000  # RTM_GETROUTE: answer with the FIB entry that matched, not the result
RTPROT_BOOT = 3  # what `ip route add` sets
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 0, 253, 254, 255
RTNH_F_ONLINK, RTNH_F_LINKDOWN = 0x4, 0x10
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80

# ip(8)'s words for the kernel's numbers
SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
PROTOCOLS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp"}
RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
ROUTE_TYPES = {0: "unspec", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve"}
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
NUD_STATES = (("INCOMPLETE", 0x1), ("REACHABLE", 0x2), ("STALE", 0x4), ("DELAY", 0x8), ("PROBE", 0x10), ("FAILED", 0x20), ("NOARP", 0x40), ("PERMANENT", 0x80))

RECV_SIZE = 1 << 16
BATCH = 64  # requests per write whose answers are read before the next write
QUIET_BYTES, QUIET_COUNT = 32 << 10, 128  # per write of unacknowledged requests: under any sk_sndbuf, and
# few enough that all of them refused (an error each) fit a default receive buffer
SO_RCVBUFFORCE = 33


class NetlinkError(OSError):
    """The kernel refused a request: its errno, and its extended-ack message if it gave one."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(code, message or os.strerror(code))
        self.code = code
        self.message = message


# -- packing --------------------------------------------------------------------------
def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """One attribute (type-length-value), padded to 4 bytes."""
    size = NLA_HDR.size + len(value)
    return NLA_HDR.pack(size, kind) + value + b"\0" * (_align(size) - size)


def attrs(*parts: bytes) -> bytes:
    return b"".join(parts)


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def s32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=i", value))


def text(kind: int, value: str, *, nul: bool = True) -> bytes:
    return attr(kind, value.encode() + (b"\0" if nul else b""))


def ip(kind: int, address: str) -> bytes:
    return attr(kind, socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address))


def ifinfomsg(index: int = 0, *, flags: int = 0, change: int = 0, family: int = socket.AF_UNSPEC) -> bytes:
    return IFINFOMSG.pack(family=family, index=index, flags=flags, change=change)


def ifaddrmsg(family: int, prefixlen: int, index: int, *, flags: int = 0, scope: int = 0) -> bytes:
    return IFADDRMSG.pack(family=family, prefixlen=prefixlen, flags=flags, scope=scope, index=index)


def rtmsg(family: int, *, dst_len: int = 0, src_len: int = 0, table: int = 0, protocol: int = 0, scope: int = 0, kind: int = 0, flags: int = 0) -> bytes:
    return RTMSG.pack(family=family, dst_len=dst_len, src_len=src_len, table=table, proto=protocol, scope=scope, type=kind, flags=flags)


def ndmsg(family: int, index: int = 0, state: int = 0) -> bytes:
    return NDMSG.pack(family=family, ifindex=index, state=state)


def rtgenmsg(family: int = socket.AF_UNSPEC) -> bytes:
    return RTGENMSG.pack(family=family)


def message(kind: int, flags: int, seq: int, payload: bytes) -> bytes:
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), kind, flags, seq, 0) + payload


# -- unpacking ------------------------------------------------------------------------
def parse_attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """type -> value of each attribute in data[start:end] (the last one wins)."""
    out: dict[int, bytes] = {}
    while start + NLA_HDR.size <= end:
        size, kind = NLA_HDR.unpack_from(data, start)
        if size < NLA_HDR.size:
            break
        out[kind & NLA_TYPE_MASK] = data[start + NLA_HDR.size : start + size]
        start += _align(size)
    return out


class Message:
    """One netlink message: its header, its fixed body (unpacked) and its attributes."""

    __slots__ = ("kind", "flags", "seq", "body", "attrs")

    def __init__(self, kind: int, flags: int, seq: int, body: dict[str, int], attrs: dict[int, bytes]):
        self.kind, self.flags, self.seq, self.body, self.attrs = kind, flags, seq, body, attrs

    def u32(self, kind: int) -> int | None:
        value = self.attrs.get(kind)
        return struct.unpack("=I", value[:4])[0] if value is not None and len(value) >= 4 else None

    def s32(self, kind: int) -> int | None:
        value = self.attrs.get(kind)
        return struct.unpack("=i", value[:4])[0] if value is not None and len(value) >= 4 else None

    def u8(self, kind: int) -> int | None:
        value = self.attrs.get(kind)
        return value[0] if value else None

    def text(self, kind: int) -> str | None:
        value = self.attrs.get(kind)
        return value.split(b"\0", 1)[0].decode(errors="replace") if value is not None else None

    def ip(self, kind: int) -> str | None:
        value = self.attrs.get(kind)
        if value is None or len(value) not in (4, 16):
            return None
        return socket.inet_ntop(socket.AF_INET if len(value) == 4 else socket.AF_INET6, value)

    def mac(self, kind: int) -> str | None:
        value = self.attrs.get(kind)
        return ":".join(f"{b:02x}" for b in value) if value is not None else None

    def nested(self, kind: int) -> dict[int, bytes]:
        value = self.attrs.get(kind)
        return parse_attrs(value, 0, len(value)) if value is not None else {}


def _inet6(link: Message) -> dict[int, bytes]:
    """A link's AF_INET6 attributes in IFLA_AF_SPEC; none where IPv6 is off on it."""
    inet6 = link.nested(IFLA_AF_SPEC).get(socket.AF_INET6)
    return parse_attrs(inet6, 0, len(inet6)) if inet6 else {}


def inet6_flags(link: Message) -> int:
    """A link's IPv6 flags (IFLA_INET6_FLAGS); 0 where IPv6 is off on it."""
    flags = _inet6(link).get(IFLA_INET6_FLAGS)
    return struct.unpack("=I", flags[:4])[0] if flags is not None and len(flags) >= 4 else 0


def inet6_conf(link: Message, index: int) -> int | None:
    """One of a link's IPv6 sysctls (IFLA_INET6_CONF[*index*], a DEVCONF_*); None where IPv6 is off on it."""
    conf = _inet6(link).get(IFLA_INET6_CONF)
    return struct.unpack_from("=i", conf, 4 * index)[0] if conf is not None and len(conf) >= 4 * (index + 1) else None


# message type -> its fixed body; the attributes follow it
BODIES = {
    RTM_NEWLINK: IFINFOMSG, RTM_DELLINK: IFINFOMSG,
    RTM_NEWADDR: IFADDRMSG, RTM_DELADDR: IFADDRMSG,
    RTM_NEWROUTE: RTMSG, RTM_DELROUTE: RTMSG,
    RTM_NEWNEIGH: NDMSG, RTM_DELNEIGH: NDMSG,
    RTM_NEWRULE: FIB_RULE_HDR, RTM_DELRULE: FIB_RULE_HDR,
    RTM_NEWNSID: RTGENMSG, RTM_DELNSID: RTGENMSG,
}  # fmt: skip


def parse(data: bytes) -> Iterable[tuple[int, int, int, int, int]]:
    """(type, flags, seq, payload start, message end) of each message in a datagram."""
    off = 0
    while off + NLMSG_HDR.size <= len(data):
        length, kind, flags, seq, _ = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDR.size:
            return
        yield kind, flags, seq, off + NLMSG_HDR.size, off + length
        off += _align(length)


def decode(data: bytes, kind: int, flags: int, seq: int, start: int, end: int) -> Message:
    body = BODIES.get(kind)
    if body is None:
        return Message(kind, flags, seq, {}, {})
    return Message(kind, flags, seq, body.read(data, start), parse_attrs(data, start + body.struct.size, end))


def error_of(data: bytes, flags: int, start: int, end: int) -> NetlinkError | None:
    """None for an acknowledgement, else the error with the kernel's extended-ack message."""
    code = -struct.unpack_from("=i", data, start)[0]
    if code == 0:
        return None
    text_ = ""
    if flags & NLM_F_ACK_TLVS:
        # nlmsgerr: the error, then the request's header (capped: no payload), then attributes
        tlvs = parse_attrs(data, start + 4 + NLMSG_HDR.size, end)
        text_ = tlvs.get(NLMSGERR_ATTR_MSG, b"").split(b"\0", 1)[0].decode(errors="replace")
    return NetlinkError(code, text_)


def dump_once(protocol: int, kind: int, payload: bytes) -> list[bytes]:
    """The payload of each answer to one dump, asked on a new socket of netlink *protocol* in this
    thread's namespace: for the families RtnlSocket does not speak (sock_diag, nf_tables). The
    kernel's refusal is raised as NetlinkError; a socket it cannot make, as OSError."""
    out: list[bytes] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol) as sock:
        sock.sendto(message(kind, NLM_F_REQUEST | NLM_F_DUMP, 1, payload), (0, 0))
        while True:
            data = sock.recv(65536)
            for mkind, flags, _, start, end in parse(data):
                if mkind == NLMSG_DONE:
                    return out
                if mkind == NLMSG_ERROR:
                    error = error_of(data, flags, start, end)
                    if error is not None:
                        raise error
                    continue
                out.append(data[start:end])


class RtnlSocket:
    """A NETLINK_ROUTE socket in the namespace of the thread that opens it.

    One request at a time: `request` returns the replies to one message and
    raises NetlinkError if the kernel refused it; `batch` sends many and
    returns each one's errno, `quiet` sends many unacknowledged and returns
    only the errors. What the kernel queues for us is bounded by what we ask
    for (BATCH answers at a time), so the receive buffer never overflows; a
    socket that also listens to a group (events) can, and then `recv` raises
    NetlinkError(ENOBUFS): the caller resynchronises from a dump."""

    def __init__(self, groups: tuple[int, ...] = (), *, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            if rcvbuf is not None:
                self.set_receive_buffer(rcvbuf)
            self.sock.bind((0, 0))
            for group in groups:
                self.join(group)
        except BaseException:
            self.sock.close()
            raise
        self._seq = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def join(self, group: int) -> None:
        """Hear the events of *group* (e.g. RTNLGRP_NSID) from now on."""
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def leave(self, group: int) -> None:
        self.sock.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, group)

    def set_receive_buffer(self, size: int) -> int:
        """Ask for *size* bytes of receive buffer (beyond net.core.rmem_max where
        this process may, as root may); returns what the kernel granted."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def _next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    def recv(self, flags: int = 0) -> bytes:
        try:
            data, _, msg_flags, _ = self.sock.recvmsg(RECV_SIZE, 0, flags)
        except OSError as exc:
            if exc.errno == errno_mod.ENOBUFS:
                raise NetlinkError(errno_mod.ENOBUFS, "the socket's receive buffer overflowed: messages were lost") from None
            raise
        if msg_flags & socket.MSG_TRUNC:
            raise NetlinkError(errno_mod.EMSGSIZE, f"a netlink message is larger than {RECV_SIZE} bytes")
        return data

    def request(self, kind: int, payload: bytes, flags: int = 0) -> list[Message]:
        """Send one request (acknowledged) and return what the kernel answered before the ack."""
        seq = self._next_seq()
        self.sock.send(message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, payload))
        out: list[Message] = []
        while True:
            data = self.recv()
            for mkind, mflags, mseq, start, end in parse(data):
                if mseq != seq:
                    continue  # a late answer to an earlier, abandoned request
                if mkind == NLMSG_ERROR:
                    error = error_of(data, mflags, start, end)
                    if error is not None:
                        raise error
                    return out
                out.append(decode(data, mkind, mflags, mseq, start, end))

    def dump(self, kind: int, payload: bytes) -> list[Message]:
        """Every object of a kind (`ip link`, `ip addr`, ...): the parts of one dump."""
        seq = self._next_seq()
        self.sock.send(message(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, payload))
        out: list[Message] = []
        while True:
            data = self.recv()
            for mkind, mflags, mseq, start, end in parse(data):
                if mseq != seq:
                    continue
                if mkind == NLMSG_DONE:
                    return out
                if mkind == NLMSG_ERROR:
                    error = error_of(data, mflags, start, end)
                    raise error if error is not None else NetlinkError(errno_mod.EPROTO, "dump acknowledged without NLMSG_DONE")
                out.append(decode(data, mkind, mflags, mseq, start, end))

    def batch(self, requests: list[tuple[int, int, bytes]]) -> list[NetlinkError | None]:
        """Send many requests, as (kind, flags, payload), BATCH per write (as `ip
        -batch` does), each acknowledged; return each one's error (None for
        success), in order. A refused request does not stop the ones after it."""
        out: list[NetlinkError | None] = []
        for first in range(0, len(requests), BATCH):
            chunk = requests[first : first + BATCH]
            seqs = [self._next_seq() for _ in chunk]
            self.sock.send(b"".join(message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, payload) for seq, (kind, flags, payload) in zip(seqs, chunk)))
            answers: dict[int, NetlinkError | None] = {}
            wanted = set(seqs)
            while not wanted <= answers.keys():
                data = self.recv()
                for mkind, mflags, mseq, start, end in parse(data):
                    if mkind == NLMSG_ERROR and mseq in wanted:
                        answers[mseq] = error_of(data, mflags, start, end)
            out += [answers[seq] for seq in seqs]
        return out

    def quiet(self, messages: list[tuple[int, int, bytes]]) -> list[tuple[int, NetlinkError]]:
        """Send many requests unacknowledged, as (kind, flags, payload), and return
        (position, error) for each one the kernel refused. The kernel answers only
        refusals; each write ends with an acknowledged no-op (RTM_GETLINK of lo)
        that says every request before it was handled. For thousands of requests
        that mostly succeed (a sweep's neighbour entries)."""
        errors: list[tuple[int, NetlinkError]] = []
        position = 0
        while position < len(messages):
            sent: dict[int, int] = {}  # seq -> position
            parts: list[bytes] = []
            size = 0
            while position < len(messages) and size < QUIET_BYTES and len(parts) < QUIET_COUNT:
                kind, flags, payload = messages[position]
                seq = self._next_seq()
                sent[seq] = position
                parts.append(message(kind, NLM_F_REQUEST | flags, seq, payload))
                size += len(parts[-1])
                position += 1
            barrier = self._next_seq()
            self.sock.send(b"".join(parts) + message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, barrier, ifinfomsg(1) + u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)))
            done = False
            while not done:
                data = self.recv()
                for mkind, mflags, mseq, start, end in parse(data):
                    if mkind == NLMSG_ERROR and mseq == barrier:
                        done = True
                    elif mkind == NLMSG_ERROR and mseq in sent:
                        error = error_of(data, mflags, start, end)
                        if error is not None:
                            errors.append((sent[mseq], error))
        return errors

    def events(self) -> list[Message]:
        """The messages of every datagram queued from the groups this socket joined
        (none: an empty list); NetlinkError(ENOBUFS) if some were lost."""
        out: list[Message] = []
        while True:
            try:
                data = self.recv(socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return out
            out += [decode(data, *fields) for fields in parse(data)]


__all__ = ["Message", "NetlinkError", "RtnlSocket"]
