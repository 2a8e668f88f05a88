"""The one wait of every probe: read, ask the evidence, back off, until a deadline.

Waits on the socket with `selectors` (epoll), never `select()`, so a lab with
thousands of open descriptors waits like a small one.
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import Callable, TypeVar

T = TypeVar("T")
Settle = Callable[[], bool]
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
FIRST_WAIT, LONGEST_WAIT = 0.0002, 0.02  # seconds; doubled between looks


def until(sock: socket.socket, deadline: float, look: Callable[[], T | None], settle: Settle | None = None, *, event: int = READ) -> tuple[str, T | None]:
    """('found', what *look* returned) | ('settled', None) | ('timeout', None).

    *look* is called first and after every wake-up; *settle* (the evidence) is
    asked between looks, and when it says no answer can come, *look* gets one
    last chance: the answer may have arrived while the evidence was read.
    """
    wait = FIRST_WAIT
    with selectors.DefaultSelector() as selector:
        selector.register(sock, event)
        while True:
            found = look()
            if found is not None:
                return "found", found
            if settle is not None and settle():
                found = look()
                return ("found", found) if found is not None else ("settled", None)
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None
            selector.select(min(wait, left))
            wait = min(wait * 2, LONGEST_WAIT)


def ready(sock: socket.socket, event: int) -> Callable[[], bool | None]:
    """A *look* for `until`: True once *sock* is readable (or writable), else None."""

    def look() -> bool | None:
        with selectors.DefaultSelector() as selector:
            selector.register(sock, event)
            return True if selector.select(0) else None

    return look


def readable(fds: list, timeout: float) -> list:
    """Those of *fds* (descriptors or file objects) readable within *timeout* seconds:
    `select()` without its ceiling of 1,024 descriptors."""
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, READ)
        return [key.fileobj for key, _ in selector.select(max(timeout, 0))]
