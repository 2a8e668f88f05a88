"""The TCP listeners of a namespace, asked of the kernel's socket diagnostics as `ss -ltn`
asks (nslab.kernel.listeners), against what /proc/net/tcp and tcp6 list."""

from __future__ import annotations

import errno
import socket
from contextlib import ExitStack

from nslab.kernel import linux, listeners
from nslab.lab.live import Lab

WANTED = {"127.0.0.1:8080", "[::1]:9090", "[::]:7070"}


def _sockets(lab: Lab, stack: ExitStack) -> int:
    """In namespace b: three listeners, a bound socket that does not listen, a UDP socket, and a
    connection to the first listener; the namespace's fd."""
    fd = lab.ns("b").handle.fd
    with linux.in_netns(fd):
        for family, address, port, listen in [
            (socket.AF_INET, "127.0.0.1", 8080, True), (socket.AF_INET6, "::1", 9090, True),
            (socket.AF_INET6, "::", 7070, True), (socket.AF_INET, "0.0.0.0", 6060, False),
        ]:
            sock = stack.enter_context(socket.socket(family))
            sock.bind((address, port))
            if listen:
                sock.listen()
        stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).bind(("0.0.0.0", 5353))
        stack.enter_context(socket.create_connection(("127.0.0.1", 8080), timeout=5))
    return fd


def _in_proc(fd: int) -> set[str]:
    with linux.in_netns(fd):
        with open("/proc/thread-self/net/tcp") as f4, open("/proc/thread-self/net/tcp6") as f6:
            return {str(li) for table in (f4.read(), f6.read()) for li in listeners.parse(table)}


def test_the_listeners_are_the_sockets_in_listen_that_proc_lists(nslab_sandbox):
    with Lab() as lab, ExitStack() as stack:
        lab.add_namespace("b", lo_up=True)
        fd = _sockets(lab, stack)
        got = listeners.listeners(fd)
        assert {str(li) for li in got} == WANTED == _in_proc(fd)
        assert len(got) == len(WANTED)
        assert listeners.listening(fd, 7070) and not listeners.listening(fd, 6060)


def test_a_kernel_without_socket_diagnostics_is_read_through_proc(nslab_sandbox, monkeypatch):
    def refused(family: int) -> list:
        raise OSError(errno.ENOENT, "no sock_diag handler")

    monkeypatch.setattr(listeners, "_diag_listeners", refused)
    with Lab() as lab, ExitStack() as stack:
        lab.add_namespace("b", lo_up=True)
        fd = _sockets(lab, stack)
        assert {str(li) for li in listeners.listeners(fd)} == WANTED
