"""At most N student scripts run at a time, across forked graders.

Running a script is where grading spends most CPU (the `ip` commands), though
even a script mostly waits for the kernel (runner.SCRIPTS_PER_CORE: N is two per
core by default); checking what it left waits more (probes, the kernel's
answers). So graders run several per slot, and each takes a jail slot only
while its script runs. A slot is an flock on one of N memfds made before the
graders are forked; each grader opens them anew (its own open file
description: flock is per description, so the copies a fork shares would not
exclude each other), and the kernel lets a slot go when its holder exits, even
when it is killed. A grader whose script was demoted as a runaway
(nslab/grading/jail.py) lets its slot go early: a script at the lowest
priority takes only the CPU nobody else wants, so it no longer counts among
the N.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Callable, Iterator


class JailSlots:
    def __init__(self, n: int) -> None:
        self.files = [os.memfd_create(f"nslab-jail-slot-{i}", os.MFD_CLOEXEC) for i in range(max(1, n))]

    @contextmanager
    def held(self, index: int) -> Iterator[Callable[[], None]]:
        """Hold a free slot while the body runs (in a grader; *index* picks the slot to wait for when none is free).
        The body gets a function that lets the slot go before the body ends."""
        mine = [os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC) for fd in self.files]
        try:
            slot = next((fd for fd in mine if _try_lock(fd)), None)
            if slot is None:
                slot = mine[index % len(mine)]
                fcntl.flock(slot, fcntl.LOCK_EX)
            try:
                yield lambda: fcntl.flock(slot, fcntl.LOCK_UN)
            finally:
                fcntl.flock(slot, fcntl.LOCK_UN)
        finally:
            for fd in mine:
                os.close(fd)

    def close(self) -> None:
        for fd in self.files:
            os.close(fd)
        self.files = []


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


__all__ = ["JailSlots"]
