"""The probes of a lab namespace: ping, arp, ndp, TCP and HTTP, each under a watch.

Every probe runs through `Probing._probe`: the watch gets a read-only view of
the lab and the probe's packet identity, the probe runs with the watch as its
`settle`, and the result comes back explained and recorded in `lab.probes`.
Destinations are IPv4 or IPv6 addresses; a link-local IPv6 one carries its
interface as `ip` writes it (`fe80::1%eth0`), and the probe leaves by it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Callable, TypeVar

from nslab.diagnosis.capture import Capture
from nslab.diagnosis.frames import Flow
from nslab.kernel import linux
from nslab.model.checks import LabError
from nslab.probes import arp as arp_probe
from nslab.probes import icmp as icmp_probe
from nslab.probes import ndp as ndp_probe
from nslab.probes import tcp as tcp_probe
from nslab.probes.result import Cause, Result

if TYPE_CHECKING:
    from nslab.lab.netns import Netns

T = TypeVar("T")
Attempt = tuple[Flow, Callable[[Callable[[], bool]], Result]]  # a packet identity, and the probe that sends it under a settle


class Probing:
    """A namespace's probes (`ns.probing`, and the flat `ns.ping()`, ...), and the one owner of
    its sockets and its capture: they are opened here, kept for the next probe, closed here."""

    def __init__(self, ns: Netns):
        self.ns = ns
        self.name = ns.name
        self._icmp: socket.socket | None = None
        self._arp: dict[str, socket.socket] = {}
        self._open: list[socket.socket] = []
        self.watcher = Capture(ns.name, ns.handle.fd)  # opened when a probe first watches this namespace

    def forget(self, dev: str) -> None:
        """*dev* changed (`ip link set`): its ARP socket is opened anew at the next probe."""
        sock = self._arp.pop(dev, None)
        if sock is not None:
            sock.close()

    @property
    def slow_to_close(self) -> bool:
        """Holds packet sockets: each close waits for an RCU grace period (see Lab.close)."""
        return self.watcher.opened or bool(self._arp)

    def close(self) -> None:
        for sock in [self._icmp, *self._arp.values(), *self._open]:
            if sock is not None:
                sock.close()
        self._icmp, self._arp, self._open = None, {}, []
        self.watcher.close()

    def _inside(self, fn: Callable[[], T]) -> T:
        with linux.in_netns(self.ns.handle.fd):
            return fn()

    def _probe(self, attempt: Callable[[float], Attempt], *, timeout: float, dev: str | None = None) -> Result:
        """Run *attempt* (a new packet identity, and its probe with the deadline given) under a watch.

        A probe the kernel lost to congestion (a full queue or table: nslab/diagnosis/stages/queue.py)
        says nothing about the lab, so it is made once more, as the sweep asks a silent pair again; only
        a loss that repeats is reported, and a result that took a second try says so. The second try
        waits twice as long: a solicitation lost to congestion leaves the next hop's entry INCOMPLETE
        with the packet queued on it, and the kernel asks again only when its retransmit timer fires
        (net.ipv4.neigh.DEV.retrans_time_ms, 1 s by default)."""
        from nslab.diagnosis.watch import tried_again  # a lab that is only built never loads the diagnosis

        result = self._watched(attempt, timeout, dev)
        if result.cause is Cause.CONGESTION:
            result = tried_again(result, self._watched(attempt, 2 * timeout, dev))
        self.ns.lab.probes.append(result)
        return result

    def _watched(self, attempt: Callable[[float], Attempt], timeout: float, dev: str | None) -> Result:
        from nslab.diagnosis.watch import Watch, explained

        flow, run = attempt(timeout)
        with Watch(self.ns.lab.view(), self.name, flow, dev=dev, timeout=timeout) as watch:
            return explained(run(watch.settled), watch)

    def ping(self, dst: str, *, timeout: float | None = None, size: int = 0) -> Result:
        """`ping -c1 -W TIMEOUT [-s SIZE] -M do DST` (IPv6: `ping -6`, `fe80::1%eth0` for a
        link-local one), decided as soon as the evidence settles it."""
        address, dev, scope = self._destination(dst)
        sock = self._icmp_socket(":" in address)

        def attempt(deadline: float) -> Attempt:
            ident = icmp_probe.new_ident()
            run = lambda settle: icmp_probe.ping(sock, self.name, address, ident=ident, size=size, timeout=deadline, settle=settle, scope_id=scope, label=dst)  # noqa: E731
            return Flow("ping", address, icmp_id=ident, icmp_seq=1), run

        return self._probe(attempt, timeout=timeout or self.ns.lab.timeout, dev=dev)

    def _icmp_socket(self, v6: bool) -> socket.socket:
        if not v6:
            if self._icmp is None:
                self._icmp = self._inside(icmp_probe.open_socket)
            return self._icmp
        sock = next((s for s in self._open if s.family == socket.AF_INET6 and s.proto == socket.IPPROTO_ICMPV6), None)
        if sock is None:
            sock = self._inside(icmp_probe.open_socket6)
            self._open.append(sock)
        return sock

    def _destination(self, dst: str) -> tuple[str, str | None, int]:
        """(the address as the kernel writes it, the interface a scoped link-local one names,
        that interface's index): `fe80::1%eth0` -> ('fe80::1', 'eth0', 3)."""
        text, _, dev = dst.partition("%")
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise LabError("dst", f"{dst!r} is not an IPv4 or IPv6 address (a link-local one names its interface: fe80::1%eth0)") from None
        if not dev:
            if ip.version == 6 and ip.is_link_local:
                raise LabError("dst", f"{dst!r} is link-local: name the interface it is on, e.g. {text}%eth0")
            return ip.compressed, None, 0
        names = {link.name: link.index for link in self.ns.readback.links()}
        if ip.version != 6 or dev not in names:
            raise LabError("dst", f"{dst!r}: a scope is an interface of {self.name} ({', '.join(sorted(names))}) after an IPv6 address")
        return ip.compressed, dev, names[dev]

    def arp(self, target: str, dev: str, *, timeout: float | None = None) -> Result:
        """`arping -c1 -I DEV TARGET`: who has TARGET on DEV? (answers with the MAC)."""
        if dev not in self._arp:
            self._arp[dev] = self._inside(lambda: arp_probe.open_socket(dev))
        link = self.ns.readback.link(dev)
        psrc = next((a.cidr.split("/")[0] for a in self.ns.readback.addresses(dev, version=4)), "0.0.0.0")
        sock = self._arp[dev]

        def attempt(deadline: float) -> Attempt:
            return Flow("arp", target), lambda settle: arp_probe.who_has(sock, self.name, dev, link.mac, psrc, target, timeout=deadline, settle=settle)

        return self._probe(attempt, timeout=timeout or self.ns.lab.timeout, dev=dev)

    def ndp(self, target: str, dev: str, *, timeout: float | None = None) -> Result:
        """`ndisc6 TARGET DEV`: a neighbour solicitation for TARGET on DEV (answers with the MAC),
        sent from DEV's link-local address (else any IPv6 address it holds, else `::`)."""
        address, _, _ = self._destination(f"{target}%{dev}" if "%" not in target and ipaddress.ip_address(target).is_link_local else target)
        sock = next((s for s in self._open if s.family == socket.AF_PACKET and s.getsockname()[:2] == (dev, ndp_probe.ETH_P_IPV6)), None)
        if sock is None:
            sock = self._inside(lambda: ndp_probe.open_socket(dev))
            self._open.append(sock)
        link = self.ns.readback.link(dev)
        held = sorted(self.ns.readback.addresses(dev, version=6), key=lambda a: a.scope != "link")
        src = held[0].ip if held else "::"

        def attempt(deadline: float) -> Attempt:
            return Flow("ndp", address), lambda settle: ndp_probe.solicit(sock, self.name, dev, link.mac, src, address, timeout=deadline, settle=settle)

        return self._probe(attempt, timeout=timeout or self.ns.lab.timeout, dev=dev)

    def listen(self, port: int, addr: str = "0.0.0.0") -> socket.socket:
        """A TCP listener here (`nc -l -p PORT`; `addr="::"` for IPv6), closed with the lab."""
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
        srv = self.ns.resolve(server).probing
        address, dev, scope = self._destination(dst)
        listener = srv.listen(server_port or port, "::" if ":" in address else "0.0.0.0")
        to_server = to_server if to_server is not None else f"hello from {self.name}\n".encode()
        to_client = to_client if to_client is not None else f"hello from {srv.name}\n".encode()

        def attempt(deadline: float) -> Attempt:
            client = self._client(address)
            run = lambda settle: tcp_probe.chat(client, listener, self.name, address, port, to_server=to_server, to_client=to_client, timeout=deadline, settle=settle, scope_id=scope)  # noqa: E731
            return Flow("tcp", address, client_port=tcp_probe.port(client)), run

        try:
            return self._probe(attempt, timeout=timeout or self.ns.lab.timeout, dev=dev)
        finally:  # like `nc -l`, the server is gone after its one chat: the port is free for the next
            srv._open.remove(listener)
            listener.close()

    def connect(self, dst: str, port: int, *, timeout: float | None = None) -> Result:
        """`nc -z DST PORT`: does a TCP handshake complete? (refused vs. timed out told apart)"""
        address, dev, scope = self._destination(dst)

        def attempt(deadline: float) -> Attempt:
            client = self._client(address)
            run = lambda settle: tcp_probe.handshake(client, self.name, address, port, timeout=deadline, settle=settle, scope_id=scope)  # noqa: E731
            return Flow("tcp", address, client_port=tcp_probe.port(client)), run

        return self._probe(attempt, timeout=timeout or self.ns.lab.timeout, dev=dev)

    def http_get(self, host: str, port: int, path: str = "/", *, timeout: float = 2.0) -> Result:
        """`curl http://HOST:PORT/PATH` (an IPv6 HOST without brackets)"""
        address, dev, scope = self._destination(host)

        def attempt(deadline: float) -> Attempt:
            client = self._client(address)
            run = lambda settle: tcp_probe.http_get(client, self.name, address, port, path, timeout=deadline, settle=settle, scope_id=scope)  # noqa: E731
            return Flow("http", address, client_port=tcp_probe.port(client)), run

        return self._probe(attempt, timeout=timeout, dev=dev)

    def _client(self, dst: str) -> socket.socket:
        version = 6 if ":" in dst else 4
        sock = self._inside(lambda: tcp_probe.client(version))
        self._open.append(sock)
        return sock
