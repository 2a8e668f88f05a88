"""`ss -ltn`: the TCP listeners of a namespace and the address each is bound to, asked
of the kernel's socket diagnostics as ss asks (else read from /proc/net/tcp and tcp6)."""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

from nslab.kernel import linux, rtnl

LISTEN = "0A"  # the `st` column of a socket in state LISTEN


@dataclass(frozen=True)
class Listener:
    address: str  # '0.0.0.0' or '::' for any address
    port: int

    @property
    def any(self) -> bool:
        return ipaddress.ip_address(self.address).is_unspecified

    def accepts(self, address: str) -> bool:
        """Would a SYN to *address* on this port find this socket (the kernel's lookup by bound address)?
        An IPv6 socket on :: also takes IPv4 unless it is v6only, which /proc does not show: counted as taking it."""
        if self.any:
            return ":" in self.address or ":" not in address
        return ipaddress.ip_address(self.address) == ipaddress.ip_address(address)

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def parse(table: str, state: str = LISTEN) -> list[Listener]:
    """The sockets in *state* (the `st` column) in *table*, the text of a /proc/.../net/tcp,
    tcp6, udp or udp6 file, with their bound address and port."""
    out = []
    for line in table.splitlines()[1:]:
        fields = line.split()  # sl local_address rem_address st ...
        if len(fields) > 3 and fields[3] == state:
            hexaddr, hexport = fields[1].split(":")
            out.append(Listener(_address(hexaddr), int(hexport, 16)))
    return out


def _address(hexaddr: str) -> str:
    """An address as /proc/net/tcp prints it: each 32-bit word in host byte order."""
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # four host-order 32-bit words
    return socket.inet_ntop(socket.AF_INET6, words)


def listens_in(table: str, port: int) -> bool:
    """Does *table* list a listener on *port* (any address)?"""
    return any(listener.port == port for listener in parse(table))


def listeners(netns_fd: int) -> list[Listener]:
    """Every TCP listener in the namespace of *netns_fd*.

    Asked with a sock_diag dump of LISTEN sockets, which walks only the listening hash: a read of
    /proc/net/tcp and tcp6 walks every bucket of the established hash, which is the machine's, not
    the namespace's, and sized by its memory (11 ms of kernel CPU a read with 24 GiB, where a
    copy of a lab reads each namespace). /proc is read where the kernel has no TCP diagnostics."""
    with linux.in_netns(netns_fd):
        return [listener for family in (socket.AF_INET, socket.AF_INET6) for listener in _family_listeners(family)]


def _family_listeners(family: int) -> list[Listener]:
    try:
        return _diag_listeners(family)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EOPNOTSUPP, errno.EPROTONOSUPPORT, errno.EINVAL):
            raise
    try:
        with open("/proc/thread-self/net/tcp" if family == socket.AF_INET else "/proc/thread-self/net/tcp6") as f:
            return parse(f.read())
    except FileNotFoundError:
        return []  # no IPv6 in this kernel


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
TCP_LISTEN = 10
# struct inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid (48 bytes, zero: any)
_REQ = struct.Struct("=BBBxI48x")
# struct inet_diag_msg: family, state, timer, retrans; sockid: sport, dport (big-endian), src, dst (16 bytes each), ...
_MSG = struct.Struct("=BBBB2s2s16s16s")


def _diag_listeners(family: int) -> list[Listener]:
    """The TCP sockets of *family* in LISTEN, from one NETLINK_SOCK_DIAG dump in this thread's namespace."""
    size = 4 if family == socket.AF_INET else 16
    out: list[Listener] = []
    for answer in rtnl.dump_once(NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, _REQ.pack(family, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN)):
        _, state, _, _, sport, _, src, _ = _MSG.unpack_from(answer)
        if state == TCP_LISTEN:
            out.append(Listener(socket.inet_ntop(family, src[:size]), int.from_bytes(sport, "big")))
    return out


def listening(netns_fd: int, port: int) -> bool:
    """Is anything in the namespace of *netns_fd* listening on TCP *port*?"""
    return any(listener.port == port for listener in listeners(netns_fd))
