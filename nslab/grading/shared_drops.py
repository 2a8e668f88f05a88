"""One drop monitor (bpftrace) per grading run, shared by its forked graders.

A drop monitor of its own in each grader cost about a second per submission:
bpftrace is spawned and attached again in every forked grader (the process's
monitor is per process), and the grader's first probe waits for it. Here the
grading process runs bpftrace once; its reader thread copies every report
line to a pipe per grader, and each grader reads its pipe with a `Follower`,
a DropMonitor without a bpftrace of its own (its own flush markers, its own
window of drops, so graders never see each other's state). Attaching overlaps
the first jails: a follower is ready when the broadcaster says it attached.
Once its lab is adopted, a grader narrows its follower to the lab's namespaces
(`narrow`): the machine's other drops (every other grader's labs and jails,
anything else running) still pass its pipe, but are no longer parsed (a
class's run broadcasts some 80,000 lines, and a grader parsed each in about
40 us).

The broadcaster is stopped (and its bpftrace reaped) when the run ends.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Iterable

from nslab.kernel.drops.monitor import DropMonitor
from nslab.kernel.process import wait_until

READY, FAILED = "nslab-ready", "nslab-fail "
SPAWN = 10.0  # seconds for Popen to start bpftrace's child (milliseconds when the machine is idle)


class Broadcaster(DropMonitor):
    """The grading run's bpftrace: its report lines go to every subscribed grader's pipe."""

    def __init__(self) -> None:
        super().__init__()
        self._pipes: dict[int, int] = {}  # write fd -> read fd, one pair per grader
        self._pipes_lock = threading.Lock()
        self.overflowed = 0  # lines a grader's full pipe could not take (that grader lacks them)

    def subscribe(self) -> int:
        """A pipe for a grader about to be forked: returns its read end (close-on-exec,
        so no jail inherits it); the broadcaster writes the attach outcome first."""
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(w, False)
        with self._pipes_lock:
            self._pipes[w] = r
            if self._settled.is_set():
                self._send(w, self._verdict())
        return r

    def unsubscribe(self, r: int) -> None:
        """The grader behind read end *r* ended: close both ends."""
        with self._pipes_lock:
            for w, read in list(self._pipes.items()):
                if read == r:
                    del self._pipes[w]
                    os.close(w)
        os.close(r)

    def forget_in_child(self, keep: int) -> None:
        """In a forked grader: close every pipe end but its own read end *keep* (the rest belong to the grading process)."""
        for w, r in self._pipes.items():
            os.close(w)
            if r != keep:
                os.close(r)
        self._pipes = {}

    @property
    def marker(self) -> tuple[socket.socket | None, int]:
        """The socket flush() markers are sent from, and its namespace's inode (followers share them)."""
        return self._marker, self.marker_netns

    def _verdict(self) -> str:
        self._settled.wait()
        return self._ready_line() if self.available else FAILED + (self.why or "bpftrace is unavailable")

    def _ready_line(self) -> str:
        """READY and the kernel's reason table (read before bpftrace attaches), for the followers' parsing."""
        return f"{READY} {json.dumps(self.reasons)}"

    def _send(self, w: int, line: str) -> None:
        try:
            os.write(w, (line + "\n").encode())
        except BlockingIOError:
            self.overflowed += 1
        except OSError:
            pass  # the grader is gone

    def _broadcast(self, line: str) -> None:
        with self._pipes_lock:
            for w in self._pipes:
                self._send(w, line)

    # DropMonitor's reader thread calls these: the lines go on instead of being kept here.
    def _add(self, line: str) -> None:
        self._broadcast(line)

    def _fail(self, why: str) -> None:
        super()._fail(why)
        self._broadcast(FAILED + why)

    def start(self) -> Broadcaster:
        """Start bpftrace, and return once it is spawned (attaching goes on in the background).

        Graders are forked only after the spawn: a grader forked while the reader
        thread is inside Popen inherits Popen's exec-status pipe, and Popen then
        waits for that grader to exit (measured: the attach took 21 s, not 1.3 s)."""
        super().start()
        try:
            wait_until(lambda: self._proc is not None or self._settled.is_set(), SPAWN, "bpftrace to be spawned")
        except TimeoutError as exc:
            self._fail(str(exc))
            self.stop()
        threading.Thread(target=self._announce, name="nslab-drops-ready", daemon=True).start()
        return self

    def _announce(self) -> None:
        if self._settled.wait() and self.available:
            self._broadcast(self._ready_line())


class Follower(DropMonitor):
    """A grader's view of the broadcaster: the same questions as a DropMonitor, answered from a pipe."""

    def __init__(self, pipe: int, marker: socket.socket | None, marker_netns: int) -> None:
        super().__init__()
        self._pipe = pipe
        self._marker, self.marker_netns = marker, marker_netns
        self._kept: frozenset[int] | None = None  # the namespaces whose drops are read (None: all)

    def narrow(self, netns: Iterable[int]) -> None:
        """From now on read only the drops in *netns* (inodes) and the flush markers."""
        self._kept = frozenset(netns) | {self.marker_netns}

    @property
    def available(self) -> bool:
        return self._attached and self._why is None

    @property
    def why(self) -> str | None:
        return self._why

    def start(self) -> Follower:
        self._cpus = sorted(os.sched_getaffinity(0))
        self._thread = threading.Thread(target=self._run, name="nslab-drops-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._settled.set()

    def _add(self, line: str) -> None:
        kept = self._kept
        if kept is not None:
            fields = line.split(" ", 4)  # "D nsecs cpu netns ..."
            if len(fields) == 5 and fields[3].isdigit() and int(fields[3]) not in kept:
                return
        super()._add(line)

    def _run(self) -> None:
        with os.fdopen(self._pipe, "rb") as pipe:
            for raw in pipe:
                line = raw.decode(errors="replace").rstrip("\n")
                if line.startswith("D "):
                    self._add(line)
                elif line.startswith(READY):
                    self.reasons = {int(k): v for k, v in json.loads(line[len(READY) :]).items()}
                    self._attached = True
                    self._settled.set()
                elif line.startswith(FAILED):
                    self._fail(line[len(FAILED) :])
        self._fail("the grading run's drop monitor stopped")
        with self._cond:
            self._cond.notify_all()


def follow(broadcaster: Broadcaster, pipe: int) -> Follower:
    """In a forked grader: a follower of *pipe*, the drop monitor its lab is given (Lab(drops=...))."""
    broadcaster.forget_in_child(pipe)
    # The broadcaster's marker socket and namespace serve every grader (a namespace fewer to
    # make and delete per grader): any grader's marker read after a flush began shows that
    # its CPU's earlier drops have been read, whoever sent it.
    return Follower(pipe, *broadcaster.marker).start()


def narrow(monitor: DropMonitor, netns: Iterable[int]) -> None:
    """In a grader: its drop monitor, if it follows the run's, reads only the drops in *netns* from now on."""
    if isinstance(monitor, Follower):
        monitor.narrow(netns)


__all__ = ["Broadcaster", "Follower", "follow", "narrow"]
