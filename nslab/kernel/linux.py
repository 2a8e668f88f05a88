"""Thin wrappers over the Linux system calls nslab needs and Python 3.11 lacks.

unshare(2), setns(2), mount(2), umount2(2) and prctl(PR_SET_PDEATHSIG), with
errors raised as OSError naming the call, so a failure reads like the man page.
"""

from __future__ import annotations

import ctypes
import os
import signal
from contextlib import contextmanager
from typing import Iterator

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, call: str, detail: str = "") -> None:
    if ret != 0:
        err = ctypes.get_errno()
        where = f"{call}({detail})" if detail else call
        raise OSError(err, f"{where}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare", hex(flags))


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_libc.setns(fd, nstype), "setns", str(fd))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), "mount", target)


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(target.encode(), flags), "umount2", target)


def die_with_parent(parent: int | None, sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to kill the calling process when its parent thread dies.

    Used in children we spawn, so that a `kill -9` of the test process takes
    its servers with it and nothing outlives the run. *parent* is the parent's
    PID, read before the fork: a parent that died before the request took is
    never signalled for, so a child that finds another parent ends itself.
    None where the caller was not told it (an xdist worker): then that window stays open.
    """
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl", "PR_SET_PDEATHSIG")
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def root_of_new_namespaces() -> None:
    """In a child whose ids the parent has just mapped into its new user namespace:
    become that namespace's root, keep dying with the parent (changing credentials
    clears it), and take private network, mount and PID namespaces with a private
    mount tree. What a jail (nslab grade) and a stage (nslab replay) start from."""
    parent = os.getppid()  # still dying with it here (child.spawn asked), so this is the parent, alive
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    die_with_parent(parent)
    unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def netns_fd() -> int:
    """An fd of the calling thread's current network namespace."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def in_netns(fd: int) -> Iterator[None]:
    """Run the block with the calling thread in network namespace *fd*.

    Sockets and /proc/thread-self/net files opened inside stay bound to that
    namespace after the block returns the thread to where it was (nesting is
    safe: the previous namespace is saved, not assumed).
    """
    prev = netns_fd()
    try:
        setns(fd)
        yield
    finally:
        setns(prev)
        os.close(prev)
