"""Run a function in a forked child: the one place nslab forks.

    answer = child.run(read_links, "veth0", netns="/run/netns/ns1", timeout=5.0)

The child dies with its parent, leads a process group of its own, enters
*netns* when one is given (a path, an fd, or FRESH for a new, empty one), runs
the function and sends back, pickled through a pipe, what it returned or the
exception it raised; then it leaves with os._exit, so none of the parent's
atexit handlers (its drop monitor) runs twice. The parent gets the value, or
the child's exception raised again (with the child's traceback as a note), or
ChildError when the child died without a word. At the deadline the child's
process group is killed (it and whatever it started that stayed in its
group) and it is reaped: nothing is left running.

Several children at once (the grading run's graders): `start` each, wait on
their `fileno()`s, call `read()` when one is readable until it returns False,
then `result()`. Holders that speak a protocol of their own with their
parent (the grader's jail, the replay's stage) use `spawn`, and reap the
child themselves.
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import time
import traceback
from typing import Any, Callable, Final, Generic, TypeVar, cast

from nslab.kernel import linux

T = TypeVar("T")


class _Fresh:
    def __repr__(self) -> str:
        return "FRESH"


FRESH: Final = _Fresh()  # netns=FRESH: a new network namespace of the child's own
Netns = str | int | _Fresh | None


class ChildError(RuntimeError):
    """The child ended without an answer (killed, or its answer could not be read)."""


class ChildTimeout(ChildError, TimeoutError):
    """The child did not answer by its deadline; it was killed and reaped."""


def spawn(body: Callable[[], object]) -> int:
    """Fork a child that dies with this process and runs *body*; its PID.

    The child exits with status 0 if *body* returned, 1 if it raised; it never
    returns into the caller's code. The caller reaps it (os.waitpid)."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            linux.die_with_parent(parent)
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


class Child(Generic[T]):
    """A started child computing a T: its answer arrives on `fileno()`."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self._fd = pid, fd
        self._chunks: list[bytes] = []
        self._reaped = False
        self._status = "running"

    def fileno(self) -> int:
        return self._fd

    def read(self) -> bool:
        """Read what the child has written (call when fileno() is readable); False once it closed its end."""
        data = os.read(self._fd, 1 << 20)
        self._chunks.append(data)
        return bool(data)

    def wait(self, timeout: float) -> T:
        """Its answer within *timeout* seconds; else it is killed and ChildTimeout raised."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise ChildTimeout(f"the child (PID {self.pid}) did not answer within {timeout:g} s: killed")
                if selector.select(left) and not self.read():
                    return self.result()

    def result(self) -> T:
        """Reap the child; what it returned, or its exception raised again here."""
        self._reap()
        data = b"".join(self._chunks)
        try:
            raised, value = pickle.loads(data)
        except Exception:  # noqa: BLE001 - nothing, or half an answer: the child died writing it
            raise ChildError(f"the child (PID {self.pid}) ended without an answer ({self._status})") from None
        if raised:
            raise value
        return cast(T, value)

    def kill(self) -> None:
        """SIGKILL the child's process group (it leads it) and reap it. Safe to call twice."""
        if not self._reaped:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        if not self._reaped:
            self._reaped = True
            os.close(self._fd)
            status = os.waitpid(self.pid, 0)[1]
            self._status = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.waitstatus_to_exitcode(status)}"


def start(fn: Callable[..., T], *args: Any, netns: Netns = None) -> Child[T]:
    """Fork a child that runs fn(*args), inside *netns* when given; see `Child`."""
    r, w = os.pipe()

    def body() -> None:
        os.close(r)
        os.setpgid(0, 0)
        try:
            _enter(netns)
            answer: tuple[bool, object] = (False, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
            exc.add_note(f"in nslab's child process {os.getpid()}:\n{traceback.format_exc()}")
            answer = (True, exc)
        _send(w, answer)

    pid = spawn(body)
    os.close(w)
    try:
        os.setpgid(pid, pid)  # the child does it too: whichever runs first, the group exists before a kill
    except (PermissionError, ProcessLookupError):
        pass  # the child got there first, or it already ended
    return Child(pid, r)


def run(fn: Callable[..., T], *args: Any, netns: Netns = None, timeout: float) -> T:
    """fn(*args) in a forked child (inside *netns* when given), bounded by *timeout* seconds."""
    return start(fn, *args, netns=netns).wait(timeout)


def _enter(netns: Netns) -> None:
    if isinstance(netns, _Fresh):
        linux.unshare(linux.CLONE_NEWNET)
    elif isinstance(netns, str):
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd)
        finally:
            os.close(fd)
    elif isinstance(netns, int):
        linux.setns(netns)


def _send(fd: int, answer: tuple[bool, object]) -> None:
    try:
        data = pickle.dumps(answer)
        pickle.loads(data)  # an exception whose constructor takes other arguments pickles, but does not load
    except Exception as exc:  # noqa: BLE001 - an answer that does not travel: its words do
        raised, value = answer
        error = ChildError(f"{type(value).__name__}: {value}" if raised else f"the child's answer could not be sent: {type(exc).__name__}: {exc}")
        for note in getattr(value, "__notes__", []) if raised else []:
            error.add_note(note)
        data = pickle.dumps((True, error))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
