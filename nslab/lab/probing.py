"""The probes of a lab namespace: ping, arp, TCP and HTTP, each under a watch.

Every probe runs through `Probing._probe`: the watch gets a read-only view of
the lab and the probe's packet identity, the probe runs with the watch as its
`settle`, and the result comes back explained and recorded in `lab.probes`.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Callable

from nslab.diagnosis.frames import Flow
from nslab.probes import arp as arp_probe
from nslab.probes import icmp as icmp_probe
from nslab.probes import tcp as tcp_probe
from nslab.probes.result import Result

if TYPE_CHECKING:
    from nslab.lab.live import Lab, Netns


class Probing:
    """Mixed into Netns: its probes. Needs `lab`, `name`, `_inside`, `_resolve`."""

    lab: "Lab"
    name: str
    _icmp: socket.socket | None
    _arp: dict[str, socket.socket]
    _open: list[socket.socket]

    def _probe(self, flow: Flow, run: Callable[[Callable[[], bool]], Result], *, timeout: float, dev: str | None = None) -> Result:
        from nslab.diagnosis.watch import Watch, explained  # a lab that is only built never loads the diagnosis

        with Watch(self.lab.view(), self.name, flow, dev=dev, timeout=timeout) as watch:
            result = run(watch.settled)
            explained(result, watch)
        self.lab.probes.append(result)
        return result

    def ping(self, dst: str, *, timeout: float | None = None, size: int = 0) -> Result:
        """`ping -c1 -W TIMEOUT [-s SIZE] -M do DST`, decided as soon as the evidence settles it."""
        if self._icmp is None:
            self._icmp = self._inside(icmp_probe.open_socket)
        sock, ident = self._icmp, icmp_probe.new_ident()
        deadline = timeout or self.lab.timeout
        flow = Flow("ping", dst, icmp_id=ident, icmp_seq=1)
        return self._probe(flow, lambda settle: icmp_probe.ping(sock, self.name, dst, ident=ident, size=size, timeout=deadline, settle=settle), timeout=deadline)

    def arp(self, target: str, dev: str, *, timeout: float | None = None) -> Result:
        """`arping -c1 -I DEV TARGET`: who has TARGET on DEV? (answers with the MAC)."""
        if dev not in self._arp:
            self._arp[dev] = self._inside(lambda: arp_probe.open_socket(dev))
        link = self.link(dev)  # type: ignore[attr-defined]
        psrc = next((a.cidr.split("/")[0] for a in self.addresses(dev, version=4)), "0.0.0.0")  # type: ignore[attr-defined]
        sock, deadline = self._arp[dev], timeout or self.lab.timeout
        run = lambda settle: arp_probe.who_has(sock, self.name, dev, link.mac, psrc, target, timeout=deadline, settle=settle)  # noqa: E731
        return self._probe(Flow("arp", target), run, timeout=deadline, dev=dev)

    def listen(self, port: int, addr: str = "0.0.0.0") -> socket.socket:
        """A TCP listener here (`nc -l -p PORT`), closed with the lab."""
        sock = self._inside(lambda: tcp_probe.listen(port, addr))
        self._open.append(sock)
        return sock

    def chat(
        self,
        server: "Netns | str",
        dst: str,
        port: int,
        *,
        timeout: float | None = None,
        to_server: bytes | None = None,
        to_client: bytes | None = None,
        server_port: int | None = None,
    ) -> Result:
        """The tutorial's netcat chat: `nc -l -p PORT` in *server*, `nc DST PORT` here, a line each way.
        *server_port*: the server listens there instead (DST:PORT is forwarded to it, e.g. by a DNAT rule)."""
        srv = self._resolve(server)  # type: ignore[attr-defined]
        listener = srv.listen(server_port or port)
        to_server = to_server if to_server is not None else f"hello from {self.name}\n".encode()
        to_client = to_client if to_client is not None else f"hello from {srv.name}\n".encode()
        client, deadline = self._client(), timeout or self.lab.timeout
        run = lambda settle: tcp_probe.chat(client, listener, self.name, dst, port, to_server=to_server, to_client=to_client, timeout=deadline, settle=settle)  # noqa: E731
        try:
            return self._probe(Flow("tcp", dst, client_port=tcp_probe.port(client)), run, timeout=deadline)
        finally:  # like `nc -l`, the server is gone after its one chat: the port is free for the next
            srv._open.remove(listener)
            listener.close()

    def connect(self, dst: str, port: int, *, timeout: float | None = None) -> Result:
        """`nc -z DST PORT`: does a TCP handshake complete? (refused vs. timed out told apart)"""
        client, deadline = self._client(), timeout or self.lab.timeout
        run = lambda settle: tcp_probe.handshake(client, self.name, dst, port, timeout=deadline, settle=settle)  # noqa: E731
        return self._probe(Flow("tcp", dst, client_port=tcp_probe.port(client)), run, timeout=deadline)

    def http_get(self, host: str, port: int, path: str = "/", *, timeout: float = 2.0) -> Result:
        """`curl http://HOST:PORT/PATH`"""
        client = self._client()
        run = lambda settle: tcp_probe.http_get(client, self.name, host, port, path, timeout=timeout, settle=settle)  # noqa: E731
        return self._probe(Flow("http", host, client_port=tcp_probe.port(client)), run, timeout=timeout)

    def _client(self) -> socket.socket:
        sock = self._inside(tcp_probe.client)
        self._open.append(sock)
        return sock

    @property
    def inode(self) -> int:
        """This namespace's inode (`ls -iL /run/netns/NAME`): how the kernel's drop reasons name it."""
        return os.fstat(self.handle.fd).st_ino  # type: ignore[attr-defined]
