"""TCP through the kernel: a real listener in one namespace, a real client in
another, data both ways (the tutorial's netcat chat), and an HTTP GET.

Refused (a reset, or an ICMP port unreachable), timed out (no answer), an ICMP
error from the path and local errors (ENETUNREACH) are told apart from the
connect's own result and the socket's error queue (IP_RECVERR), not guessed.
"""

from __future__ import annotations

import errno as errno_mod
import socket
import struct
import time

from nslab.probes import icmp as icmp_probe
from nslab.probes import wait
from nslab.probes.result import Outcome, Result

Settle = wait.Settle


def family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def listen(port: int, addr: str = "0.0.0.0") -> socket.socket:
    """A listening socket in the calling thread's namespace (`::` or an IPv6 *addr*:
    IPv6 only, so an IPv4 listener on the same port may live beside it)."""
    sock = socket.socket(family(addr), socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((addr, port))
        sock.listen(8)
    except BaseException:
        sock.close()  # else it lives on with the error's traceback, and holds its namespace
        raise
    return sock


def client(version: int = 4) -> socket.socket:
    """A client socket (IPv4, or IPv6 for *version* 6) in the calling thread's namespace,
    bound to a port of its own now (the evidence follows the connection by it; see `port`)."""
    sock = socket.socket(socket.AF_INET6 if version == 6 else socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    # Closed with a reset, never left behind as an orphan retrying unsent data,
    # which would keep its namespace alive after the lab is gone.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    icmp_probe.recverr(sock)  # an ICMP error that fails the connect is queued to the socket, with who sent it
    sock.bind(("::" if version == 6 else "0.0.0.0", 0))
    return sock


def _sockaddr(sock: socket.socket, dst: str, port: int, scope_id: int) -> tuple:
    return (dst, port, 0, scope_id) if sock.family == socket.AF_INET6 else (dst, port)


def port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


class _Clock:
    def __init__(self, timeout: float):
        self.start = time.monotonic()
        self.deadline = self.start + timeout

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _wait(sock: socket.socket, clock: _Clock, write: bool, settle: Settle | None) -> str:
    """'found' (ready), 'timeout' or 'settled'; checks evidence between short waits."""
    event = wait.WRITE if write else wait.READ
    state, _ = wait.until(sock, clock.deadline, wait.ready(sock, event), settle, event=event)
    return state


def target(dst: str, port: int) -> str:
    """How a result names an endpoint: `10.0.0.2:8080`, `[fd00::2]:8080`."""
    return f"[{dst}]:{port}" if ":" in dst else f"{dst}:{port}"


def _connect(sock: socket.socket, src_ns: str, dst: str, port: int, clock: _Clock, settle: Settle | None, scope_id: int = 0) -> Result | None:
    """None once connected; otherwise the failed verdict."""
    name = target(dst, port)
    err = sock.connect_ex(_sockaddr(sock, dst.split("%")[0], port, scope_id))
    if err not in (0, errno_mod.EINPROGRESS):
        return Result("tcp", src_ns, name, Outcome.LOCAL_ERROR, clock.elapsed(), errno=err)
    if err == errno_mod.EINPROGRESS:
        state = _wait(sock, clock, True, settle)
        if state != "found":
            return Result("tcp", src_ns, name, Outcome.TIMEOUT, clock.elapsed(), decided_early=state == "settled")
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        # The same errno comes from a reset (ECONNREFUSED), the local kernel, or an ICMP error from
        # the path (a port unreachable is ECONNREFUSED too, still a refusal): an ICMP error is in
        # the error queue, and says who sent it.
        queued = icmp_probe.queued_error(sock)
        icmp = queued["icmp"] if queued is not None and queued["outcome"] is Outcome.ICMP_ERROR else None
        if err == errno_mod.ECONNREFUSED:
            return Result("tcp", src_ns, name, Outcome.REFUSED, clock.elapsed(), errno=err, icmp=icmp)
        return Result("tcp", src_ns, name, Outcome.ICMP_ERROR if icmp else Outcome.LOCAL_ERROR, clock.elapsed(), errno=err, icmp=icmp)
    icmp_probe.recverr(sock, False)  # connected: later ICMP errors stay soft, as for any TCP socket
    return None


def handshake(
    sock: socket.socket, src_ns: str, dst: str, port: int, *, timeout: float = 1.0, settle: Settle | None = None, scope_id: int = 0
) -> Result:
    """`nc -z DST PORT`: does the three-way handshake complete?"""
    clock = _Clock(timeout)
    failed = _connect(sock, src_ns, dst, port, clock, settle, scope_id)
    return failed or Result("tcp", src_ns, target(dst, port), Outcome.REPLY, clock.elapsed())


def _recv_some(sock: socket.socket, clock: _Clock, want: int | None = None) -> bytes:
    """Read until *want* bytes, EOF, or the deadline."""
    data = b""
    while want is None or len(data) < want:
        if _wait(sock, clock, False, None) != "found":
            break
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def chat(
    client_sock: socket.socket,
    listener: socket.socket,
    src_ns: str,
    dst: str,
    port: int,
    *,
    to_server: bytes,
    to_client: bytes,
    timeout: float = 1.0,
    settle: Settle | None = None,
    scope_id: int = 0,
) -> Result:
    """Connect, say *to_server*, hear *to_client* back: data crossed both ways."""
    clock = _Clock(timeout)
    failed = _connect(client_sock, src_ns, dst, port, clock, settle, scope_id)
    if failed is not None:
        return failed
    if _wait(listener, clock, False, None) != "found":
        return Result("tcp", src_ns, target(dst, port), Outcome.TIMEOUT, clock.elapsed(), stage="accept")
    conn, peer = listener.accept()
    with conn:
        conn.setblocking(False)
        client_sock.sendall(to_server)
        heard = _recv_some(conn, clock, len(to_server))
        conn.sendall(to_client)
        got = _recv_some(client_sock, clock, len(to_client))
    outcome = Outcome.REPLY if (heard, got) == (to_server, to_client) else Outcome.TIMEOUT
    return Result(
        "tcp", src_ns, target(dst, port), outcome, clock.elapsed(), received=got, server_received=heard, client_address=peer[0].split("%")[0]
    )


def http_get(
    client_sock: socket.socket,
    src_ns: str,
    host: str,
    port: int,
    path: str = "/",
    *,
    timeout: float = 2.0,
    settle: Settle | None = None,
    scope_id: int = 0,
) -> Result:
    """`curl http://HOST:PORT/PATH`: the status line and body, or why not."""
    clock = _Clock(timeout)
    failed = _connect(client_sock, src_ns, host, port, clock, settle, scope_id)
    if failed is not None:
        failed.probe = "http"
        return failed
    client_sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {target(host, port)}\r\nUser-Agent: nslab\r\n\r\n".encode())
    response = _recv_some(client_sock, clock)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None
    outcome = Outcome.REPLY if status is not None else Outcome.TIMEOUT
    return Result("http", src_ns, f"{target(host, port)}{path}", outcome, clock.elapsed(), status=status, received=body)
