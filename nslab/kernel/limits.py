"""The limits a large lab meets, each named in one line with its fix.

Open descriptors (RLIMIT_NOFILE). A lab namespace holds two at rest: its fd
and its netlink socket. A probe's watch opens three more in each namespace it
watches (a packet socket and two /proc files: nslab/diagnosis/capture.py), a
sweep one raw socket per source namespace. nslab never waits with select(),
so a high limit is safe: `ensure_descriptors` raises the soft limit up to the
hard one when a lab needs it, and when even the hard limit is short it raises
`LimitReached` saying how many are needed and how to allow them.

The neighbour table. The kernel keeps one ARP table for every namespace on
the machine, capped at net.ipv4.neigh.default.gc_thresh3 learnt entries (1024
by default). That value exists only in the initial namespace, which nslab
never changes: `neighbour_limit` reads it there when this process may (root),
else takes the kernel's default, and says which. `neighbour_entries` counts
the entries the table holds now (the kernel's /proc/net/stat/arp_cache, also
readable only there), so a sweep can keep its share. Permanent entries do not
count against the cap (the garbage collector never takes them).
"""

from __future__ import annotations

import os
import resource
from typing import Callable, NamedTuple, TypeVar

from nslab.kernel import linux, sandbox

T = TypeVar("T")

RESERVE = 64  # descriptors left for what a test opens beside the lab (files, servers, pipes)
DEFAULT_GC_THRESH3 = 1024  # the kernel's default (net/ipv4/arp.c)
GC_THRESH3 = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"
ARP_CACHE = "/proc/thread-self/net/stat/arp_cache"


class LimitReached(RuntimeError):
    """A lab would pass a limit of this machine; the message names it and the fix."""


def descriptors_open() -> int:
    return len(os.listdir("/proc/self/fd"))


def ensure_descriptors(more: int, what: str) -> None:
    """Make room for *more* open descriptors (for *what*, e.g. 'a lab of 1000
    namespaces'): the soft RLIMIT_NOFILE is raised toward the hard one if needed."""
    needed = descriptors_open() + more + RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise LimitReached(
            f"{what} needs about {needed} open descriptors, but RLIMIT_NOFILE allows {hard} (hard limit): "
            f"raise it, e.g. `ulimit -Hn {2 * needed}; ulimit -n {2 * needed}` as root before the run, or LimitNOFILE={2 * needed} in its systemd unit"
        )
    target = hard if hard != resource.RLIM_INFINITY else max(needed, 2 * soft)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class NeighbourLimit(NamedTuple):
    gc_thresh3: int
    read: bool  # False: this process cannot read the initial namespace's value; the kernel's default assumed
    family: str = "ipv4"  # the table: ARP's, or IPv6's neighbour discovery's ("ipv6")

    def __str__(self) -> str:
        how = "" if self.read else " (assumed: the kernel's default; the host's value is readable only as root)"
        return f"net.{self.family}.neigh.default.gc_thresh3={self.gc_thresh3}{how}"


_limits: dict[str, NeighbourLimit] = {}
_arp_cache: int | None = None


def neighbour_limit(family: str = "ipv4") -> NeighbourLimit:
    """The cap on learnt neighbour entries of *family*'s table ("ipv4": ARP's, "ipv6"), which
    all namespaces of this machine share."""
    if family not in _limits:
        text = _in_initial_namespace(lambda: open(GC_THRESH3.replace("ipv4", family)).read())
        value = text.strip() if text is not None else ""
        _limits[family] = NeighbourLimit(int(value), True, family) if value.isdigit() else NeighbourLimit(DEFAULT_GC_THRESH3, False, family)
    return _limits[family]


def neighbour_entries() -> int | None:
    """How many entries the kernel's ARP table holds now, all namespaces together
    (permanent ones included); None where it cannot be read."""
    global _arp_cache
    if _arp_cache is None:
        fd = _in_initial_namespace(lambda: os.open(ARP_CACHE, os.O_RDONLY | os.O_CLOEXEC))
        _arp_cache = fd if fd is not None else -1
    if _arp_cache < 0:
        return None
    lines = os.pread(_arp_cache, 4096, 0).decode().splitlines()
    if len(lines) < 2 or not lines[0].startswith("entries"):
        return None
    return int(lines[1].split()[0], 16)  # the first column, the same on every CPU's row


def _in_initial_namespace(read: Callable[[], T]) -> T | None:
    """*read()* in the network namespace this process came from (the host's), or
    None where it cannot enter it (not root there, or not in a sandbox)."""
    box = sandbox.current()
    if box is None:
        try:
            return read()
        except OSError:
            return None
    try:
        with linux.in_netns(box.outside[0]):
            return read()
    except OSError:
        return None


__all__ = ["LimitReached", "NeighbourLimit", "descriptors_open", "ensure_descriptors", "neighbour_entries", "neighbour_limit"]
