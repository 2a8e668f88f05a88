"""One bpftrace for many processes: a run's drop monitor, shared.

Starting bpftrace costs about 1.25 s of CPU and as long a wait (it compiles
its program), and every process that probes used to start its own: each
pytest-xdist worker, each `nslab why`, `nslab grade` or pytest that a test
runs, each forked grader. A `Broadcaster` is a DropMonitor whose reader
thread hands every report line on to its subscribers; a `Follower` is a
DropMonitor without a bpftrace of its own that reads those lines and answers
the same questions (`ready`, `position`, `since`, `flush`) with its own window
of drops and its own flush markers.

Two ways to subscribe:
- a forked grader gets one end of a socket pair (`subscribe()`, then
  `follow()` in the child), and shares the broadcaster's marker socket;
- any other process of the run connects to the run's socket (`serve()` in
  pytest's main process, its path in `$NSLAB_DROPS`): `monitor()` follows it
  when it is there, and makes its own marker namespace.

A subscriber that reads slower than drops come is given them later, not
never: each has a writer thread and a queue. A follower that reads only some
namespaces' drops (`narrow`, a grader once its lab is adopted) tells the
broadcaster, which then sends it only those and the flush markers: each drop
goes to the grader it concerns, not to every grader (most report lines are
another lab's), and waits until the broadcaster confirms in its stream. Past `QUEUED` lines its queue
drops the newest and the follower is told how many (`lost`, as for bpftrace's
own lost events). bpftrace starts with the first subscriber; the server's
socket sits in a scratch directory of the run (`leftovers.scratch_dir`),
which a later sweep removes if the run is killed.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import socket
import threading
from typing import Callable, Iterable

from nslab.kernel import leftovers
from nslab.kernel.drops.monitor import DropMonitor, _marker_socket, _privileged
from nslab.kernel.process import wait_until

ENV = "NSLAB_DROPS"  # the run's socket, for every process the run starts
READY, FAILED, LOST, SKIPPED = "nslab-ready", "nslab-fail ", "nslab-lost ", "nslab-skipped "
NARROW, NARROWED = "nslab-narrow ", "nslab-narrowed"  # a follower's request (the namespaces it reads), the broadcaster's answer in its stream
SPAWN = 10.0  # seconds for Popen to start bpftrace's child (milliseconds when the machine is idle)
QUEUED = 200_000  # report lines a slow subscriber may have waiting (about 50 MB)
_CLOSE = None  # what tells a writer thread to end


class _Subscriber:
    """One subscriber's socket, the thread that writes to it (in order) and the one that hears its requests."""

    def __init__(self, sock: socket.socket, ended: Callable[[_Subscriber], None], narrowed: Callable[[_Subscriber, frozenset[int]], None]) -> None:
        self.sock = sock
        self._ended = ended  # told when the subscriber is gone
        self._narrowed = narrowed  # told when the subscriber asks for fewer namespaces' drops
        self.kept: frozenset[int] | None = None  # the namespaces whose drops it reads (None: all); set under the broadcaster's lock
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._queued = 0  # approximate: read without a lock, only to bound the queue
        self._lost = 0
        self._listener = threading.Thread(target=self._listen, name="nslab-drops-listener", daemon=True)
        self._listener.start()
        threading.Thread(target=self._write, name="nslab-drops-writer", daemon=True).start()

    def wants(self, line: str) -> bool:
        """Is *line* for this subscriber (not a drop in a namespace it does not read)?"""
        kept = self.kept
        if kept is None or not line.startswith("D "):
            return True
        fields = line.split(" ", 4)  # "D nsecs cpu netns ..."
        return len(fields) < 5 or not fields[3].isdigit() or int(fields[3]) in kept

    def put(self, line: str) -> None:
        if self._queued >= QUEUED:
            self._lost += 1
            return
        self._queued += 1
        self._queue.put(line)

    def close(self) -> None:
        self._queue.put(_CLOSE)

    def _write(self) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < 512 and not self._queue.empty():
                    batch.append(self._queue.get())
                done = _CLOSE in batch
                lines = [line for line in batch if line is not _CLOSE]
                self._queued -= len(lines)
                if self._lost:
                    lost, self._lost = self._lost, 0
                    lines.append(f"{LOST}{lost}")
                if lines:
                    self.sock.sendall(("\n".join(lines) + "\n").encode())
                if done:
                    return
        except OSError:
            return  # the subscriber is gone
        finally:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # the subscriber reads to the end, and the listener's read ends
            except OSError:
                pass  # the subscriber is gone
            self._listener.join()  # the socket is closed once neither thread uses it
            self.sock.close()
            self._ended(self)

    def _listen(self) -> None:
        """The subscriber's requests, one a line: NARROW and the namespaces it reads from now on."""
        pending = b""
        try:
            while data := self.sock.recv(4096):
                *requests, pending = (pending + data).split(b"\n")
                for raw in requests:
                    line = raw.decode(errors="replace")
                    if line.startswith(NARROW):
                        self._narrowed(self, frozenset(json.loads(line[len(NARROW) :])))
        except (OSError, ValueError, TypeError):
            return  # the subscriber is gone (or spoke nonsense: it keeps what it had)


class Broadcaster(DropMonitor):
    """A bpftrace whose report lines go to every subscriber (none is kept here)."""

    def __init__(self) -> None:
        super().__init__()
        # A forked grader's by the fd of its end (unsubscribe() names it), a connection's by itself.
        self._subscribers: dict[object, _Subscriber] = {}
        self._subscribers_lock = threading.Lock()
        self._server: socket.socket | None = None
        self.path: str | None = None

    def subscribe(self) -> int:
        """One end of a socket pair for a grader about to be forked (close-on-exec, so no
        jail inherits it); the broadcaster writes the attach outcome first."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._add_subscriber(ours, theirs.fileno())
        return theirs.detach()

    def unsubscribe(self, fd: int) -> None:
        """The grader given *fd* ended: its writer stops, and *fd* is closed."""
        with self._subscribers_lock:
            sub = self._subscribers.pop(fd, None)
        if sub is not None:
            sub.close()
        os.close(fd)

    def forget_in_child(self, keep: int) -> None:
        """In a forked grader: close every subscriber's socket but its own end *keep* (the rest are the grading process's)."""
        for key, sub in self._subscribers.items():
            sub.sock.close()
            if isinstance(key, int) and key != keep:
                os.close(key)
        self._subscribers = {}
        if self._server is not None:
            self._server.close()  # the listening socket stays the grading process's
            self._server, self.path = None, None

    @property
    def marker(self) -> tuple[socket.socket | None, int]:
        """The socket flush() markers are sent from, and its namespace's inode (forked followers share them)."""
        return self._marker, self.marker_netns

    # -- the run's socket ---------------------------------------------------------------
    def serve(self) -> str:
        """Listen on a socket in a scratch directory of the run and return its path; bpftrace
        starts when the first process connects."""
        directory = leftovers.scratch_dir("drops")
        self.path = os.path.join(directory, "socket")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        server.bind(self.path)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), name="nslab-drops-server", daemon=True).start()
        return self.path

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # stop() closed it
            self.start()
            self._add_subscriber(conn, None, greeting=f"{SKIPPED}{json.dumps(sorted(self.skipped))}")

    def _add_subscriber(self, sock: socket.socket, key: int | None, *, greeting: str | None = None) -> None:
        sub = _Subscriber(sock, self._ended, self._narrow_subscriber)
        with self._subscribers_lock:
            if greeting is not None:
                sub.put(greeting)
            if self._settled.is_set():
                sub.put(self._verdict())
            self._subscribers[sub if key is None else key] = sub

    def _narrow_subscriber(self, sub: _Subscriber, netns: frozenset[int]) -> None:
        """*sub* reads only *netns*'s drops from now on: every line after the answer is filtered so, none before."""
        with self._subscribers_lock:
            sub.kept = netns
            sub.put(NARROWED)

    def _ended(self, sub: _Subscriber) -> None:
        with self._subscribers_lock:
            for key, held in list(self._subscribers.items()):
                if held is sub:
                    del self._subscribers[key]

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> Broadcaster:
        """Start bpftrace, and return once it is spawned (attaching goes on in the background).

        Graders are forked only after the spawn: a grader forked while the reader
        thread is inside Popen inherits Popen's exec-status pipe, and Popen then
        waits for that grader to exit (measured: the attach took 21 s, not 1.3 s)."""
        if self._thread is not None or self._settled.is_set():
            return self
        super().start()
        try:
            wait_until(lambda: self._proc is not None or self._settled.is_set(), SPAWN, "bpftrace to be spawned")
        except TimeoutError as exc:
            self._fail(str(exc))
            self.stop()
        threading.Thread(target=self._announce, name="nslab-drops-ready", daemon=True).start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the server's thread
            server.close()
        if self.path is not None:
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))
            self.path = None
        super().stop(timeout)
        with self._subscribers_lock:
            subs, self._subscribers = list(self._subscribers.values()), {}
        for sub in subs:
            sub.close()

    def _announce(self) -> None:
        if self._settled.wait() and self.available:
            self._broadcast(self._ready_line())

    def _verdict(self) -> str:
        return self._ready_line() if self.available else FAILED + (self.why or "bpftrace is unavailable")

    def _ready_line(self) -> str:
        """READY and the kernel's reason table (read before bpftrace attaches), for the followers' parsing."""
        return f"{READY} {json.dumps(self.reasons)}"

    def _broadcast(self, line: str) -> None:
        with self._subscribers_lock:
            for sub in self._subscribers.values():
                if sub.wants(line):
                    sub.put(line)

    # DropMonitor's reader thread calls these: the lines go on instead of being kept here.
    def _add(self, line: str) -> None:
        self._broadcast(line)

    def _fail(self, why: str) -> None:
        super()._fail(why)
        self._broadcast(FAILED + why)


class Follower(DropMonitor):
    """A subscriber's view of a broadcaster: the same questions as a DropMonitor, answered from a socket."""

    def __init__(self, sock: socket.socket, marker: socket.socket | None = None, marker_netns: int = 0) -> None:
        super().__init__()
        self._sock = sock
        self._own_marker = not marker_netns  # a process of the run makes its own; a forked grader shares the broadcaster's
        self._marker, self.marker_netns = marker, marker_netns
        self._kept: frozenset[int] | None = None  # the namespaces whose drops are read (None: all)
        self._narrowed = threading.Event()  # the broadcaster confirmed the last narrow()

    def narrow(self, netns: Iterable[int]) -> None:
        """From now on read only the drops in *netns* (inodes) and the flush markers. Returns once
        the broadcaster sends only those too (each drop that happens later reaches this follower)."""
        self._kept = frozenset(netns) | {self.marker_netns}
        self._narrowed.clear()
        try:
            self._sock.sendall(f"{NARROW}{json.dumps(sorted(self._kept))}\n".encode())
        except OSError:
            return  # the broadcaster is gone: no drop comes any more
        if not self._narrowed.wait(SPAWN) and self._why is None:
            self._fail(f"the run's drop monitor did not confirm within {SPAWN:g} s which namespaces this process reads")

    @property
    def available(self) -> bool:
        return self._attached and self._why is None

    @property
    def why(self) -> str | None:
        return self._why

    def start(self) -> Follower:
        if self._thread is not None:
            return self
        if self._own_marker:
            try:
                self._marker, self.marker_netns = _marker_socket()
            except OSError as exc:
                self._fail(f"the monitor's marker namespace cannot be made: {exc}")
                return self
        self._cpus = sorted(os.sched_getaffinity(0))
        self._thread = threading.Thread(target=self._run, name="nslab-drops-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._settled.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # the reader thread reads to the end and stops
        except OSError:
            pass  # already shut
        if self._own_marker and self._marker is not None:
            self._marker.close()
            self._marker = None

    def _add(self, line: str) -> None:
        kept = self._kept
        if kept is not None:
            fields = line.split(" ", 4)  # "D nsecs cpu netns ..."
            if len(fields) == 5 and fields[3].isdigit() and int(fields[3]) not in kept:
                return
        super()._add(line)

    def _run(self) -> None:
        with self._sock, self._sock.makefile("rb") as lines:
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\n")
                if line.startswith("D "):
                    self._add(line)
                elif line.startswith(READY):
                    self.reasons = {int(k): v for k, v in json.loads(line[len(READY) :]).items()}
                    self._attached = True
                    self._settled.set()
                elif line.startswith(FAILED):
                    self._fail(line[len(FAILED) :])
                elif line == NARROWED:
                    self._narrowed.set()
                elif line.startswith(LOST):
                    self.lost += int(line[len(LOST) :])
                elif line.startswith(SKIPPED):
                    self.skipped = set(json.loads(line[len(SKIPPED) :]))
        self._fail("the run's drop monitor stopped")
        self._narrowed.set()  # no answer comes any more
        with self._cond:
            self._cond.notify_all()


def follow(broadcaster: Broadcaster, fd: int) -> Follower:
    """In a forked grader: a follower of *fd* (from `subscribe()`), the drop monitor its lab is given (Lab(drops=...))."""
    broadcaster.forget_in_child(fd)
    # The broadcaster's marker socket and namespace serve every grader (a namespace fewer to
    # make and delete per grader): any grader's marker read after a flush began shows that
    # its CPU's earlier drops have been read, whoever sent it.
    return Follower(socket.socket(fileno=fd), *broadcaster.marker).start()


def narrow(monitor: DropMonitor, netns: Iterable[int]) -> None:
    """In a grader: its drop monitor, if it follows the run's, reads only the drops in *netns* from now on."""
    if isinstance(monitor, Follower):
        monitor.narrow(netns)


def serve() -> Broadcaster:
    """The run's shared monitor, for the processes it starts (`$NSLAB_DROPS`); stopped at exit."""
    broadcaster = Broadcaster()
    os.environ[ENV] = broadcaster.serve()
    atexit.register(broadcaster.stop)
    return broadcaster


def serving() -> bool:
    """Is this process part of a run that serves a shared monitor (`$NSLAB_DROPS` names a socket that is there)?"""
    return os.path.exists(os.environ.get(ENV, ""))


def join(*, host: bool = False) -> Follower | None:
    """A follower of the run's shared monitor, if this process is part of a run that serves one
    and could run bpftrace itself (else None). With *host*, only if the broadcaster reports the
    drops of this process's own namespace (it skips the namespaces of the process that serves it)."""
    path = os.environ.get(ENV)
    if not path or not _privileged():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None  # the run is over, or this process cannot reach its socket
    follower = Follower(sock).start()
    if host:
        own = os.stat("/proc/thread-self/ns/net").st_ino
        try:
            wait_until(lambda: follower.skipped or follower._settled.is_set(), SPAWN, "the run's drop monitor to answer")
        except TimeoutError:
            follower.stop()
            return None
        if own in follower.skipped:
            follower.stop()
            return None
    return follower


_lock = threading.Lock()
_monitor: DropMonitor | None = None
_monitor_pid = 0


def monitor() -> DropMonitor:
    """This process's monitor, started on first use: a follower of the run's shared one
    when there is one (`serve()`), else a bpftrace of its own (a forked child starts its own)."""
    global _monitor, _monitor_pid
    with _lock:
        if _monitor is None or _monitor_pid != os.getpid():
            _monitor, _monitor_pid = join() or DropMonitor().start(), os.getpid()
            atexit.register(_monitor.stop)
        return _monitor


__all__ = ["ENV", "Broadcaster", "Follower", "follow", "join", "monitor", "narrow", "serve", "serving"]
