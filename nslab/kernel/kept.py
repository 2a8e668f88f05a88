"""Reads of a lab kept until the kernel announces a change: `ip link`, `ip addr`, `ip route`, `ip rule`.

A probe's diagnosis asks the same questions again and again (each probe's
reads are its own: nslab/diagnosis/reads.py), and a lab that nobody changes
between probes answers the same: a graded student's namespaces once the
script has ended, a scenario between two steps. `Kernel.keep_reads` makes the
answers last across probes for as long as the kernel says nothing changed:
each namespace gets a netlink socket that hears the groups those reads cover
(`ip monitor link address route rule`), and a read first asks, without
waiting, whether any of them heard something. The kernel announces a change
to these groups before the request that made it returns, and a change it
makes by itself (IPv6 DAD done, linkwatch's operstate) when it makes it; an
address's or route's change drops the reads of its own namespace, a link's
drops every namespace's (a veth end moved to another namespace changes what
its peer's namespace reports, and only the two namespaces it left and
entered hear of it). A lost event (the socket's buffer overflowed) drops
everything.

What no such event announces is never kept: neighbours, the bridges' fdb,
route lookups (a redirect or a learnt path MTU changes them silently),
sysctls, listeners and counters are read anew every time.
"""

from __future__ import annotations

import errno as errno_mod
import select
import socket
from typing import Callable, TypeVar

from nslab.kernel import linux, rtnl
from nslab.kernel.handle import NsHandle

T = TypeVar("T")

# linux/rtnetlink.h: the groups whose events change what the kept reads return
RTNLGRP_LINK = 1
RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE = 5, 7, 8
RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE = 9, 11, 19
GROUPS = (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE)
LINK_EVENTS = (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK)


class KeptReads:
    """The kept answers of one lab's namespaces, and the sockets that say when they expire."""

    def __init__(self) -> None:
        self._poll = select.epoll()
        self._sockets: dict[NsHandle, rtnl.RtnlSocket] = {}  # the watched namespaces, each with the socket that hears it
        self._by_fd: dict[int, NsHandle] = {}
        self._answers: dict[tuple[NsHandle, str, int], object] = {}  # (namespace, read, family) -> its answer

    def watch(self, ns: NsHandle) -> None:
        """Keep the reads of *ns* from now on (its events are heard from now on too)."""
        if ns in self._sockets:
            return
        with linux.in_netns(ns.fd):
            sock = rtnl.RtnlSocket(GROUPS)
        self._sockets[ns] = sock
        self._by_fd[sock.fileno()] = ns
        self._poll.register(sock.fileno(), select.EPOLLIN)

    def unwatch(self, ns: NsHandle) -> None:
        sock = self._sockets.pop(ns, None)
        if sock is not None:
            self._poll.unregister(sock.fileno())
            del self._by_fd[sock.fileno()]
            sock.close()
        self._forget(ns)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._by_fd.clear()
        self._answers.clear()
        self._poll.close()

    def read(self, ns: NsHandle, what: str, family: int, fresh: Callable[[], T]) -> T:
        """*fresh()* if the kernel announced a change since it was last read (or *ns* is not watched), else its last answer."""
        if ns not in self._sockets:
            return fresh()
        self._expire()
        key = (ns, what, family)
        if key not in self._answers:
            self._answers[key] = fresh()
        return self._answers[key]  # type: ignore[return-value]

    def _expire(self) -> None:
        """Drop what the events heard since the last look make stale (no wait: one poll of every socket)."""
        for fd, _ in self._poll.poll(0):
            ns = self._by_fd[fd]
            if _heard_link_event(self._sockets[ns]):
                self._answers.clear()
            else:
                self._forget(ns)

    def _forget(self, ns: NsHandle) -> None:
        for key in [k for k in self._answers if k[0] is ns]:
            del self._answers[key]


def _heard_link_event(sock: rtnl.RtnlSocket) -> bool:
    """Read every queued event; True if one was about a link, or some were lost."""
    link = False
    while True:
        try:
            data = sock.recv(socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return link
        except rtnl.NetlinkError as exc:
            if exc.code != errno_mod.ENOBUFS:
                raise
            link = True  # lost: whatever it was
            continue
        link = link or any(kind in LINK_EVENTS for kind, *_ in rtnl.parse(data))


__all__ = ["KeptReads"]
