"""`ss -ltn`: the TCP listeners of a namespace and the address each is bound to, read
from /proc/net/tcp and tcp6."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from nslab.kernel import linux

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
    """Every TCP listener in the namespace of *netns_fd*."""
    with linux.in_netns(netns_fd):
        with open("/proc/thread-self/net/tcp") as f4, open("/proc/thread-self/net/tcp6") as f6:
            tables = f4.read(), f6.read()
    return [listener for table in tables for listener in parse(table)]


def listening(netns_fd: int, port: int) -> bool:
    """Is anything in the namespace of *netns_fd* listening on TCP *port*?"""
    return any(listener.port == port for listener in listeners(netns_fd))
