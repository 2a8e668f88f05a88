"""Processes run inside a lab namespace (the tutorials' servers), owned by PID.

Each child is started with the calling thread inside the target namespace (so
it is born there), under `setpriv --pdeathsig KILL` so that it dies with the
test process however that ends, and is stopped by its own PID, never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from nslab.kernel import linux

T = TypeVar("T")


@dataclass
class Process:
    argv: list[str]
    ns: str
    popen: subprocess.Popen[bytes] = field(repr=False)
    _output: str = field(default="", repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 2.0) -> int:
        """SIGTERM, then SIGKILL at the deadline; returns the exit status. Keeps its output."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None and not self.popen.stdout.closed:
            self._output = self.popen.stdout.read().decode(errors="replace")
            self.popen.stdout.close()
        return self.popen.returncode

    def output(self) -> str:
        """What the process wrote (stdout and stderr), once it has been stopped."""
        return self._output


def _dies_with_us(argv: list[str]) -> list[str]:
    return ["setpriv", "--pdeathsig", "KILL", "--", *argv]


def spawn(netns_fd: int, ns_name: str, argv: list[str], *, env: dict[str, str] | None = None) -> Process:
    """Start *argv* inside the namespace; output is kept in a pipe (stderr merged)."""
    with linux.in_netns(netns_fd):
        popen = subprocess.Popen(
            _dies_with_us(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return Process(list(argv), ns_name, popen)


def run(netns_fd: int, argv: list[str], *, input: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    """Run *argv* inside the namespace to its end (bounded by *timeout*), output captured."""
    with linux.in_netns(netns_fd):
        return subprocess.run(
            _dies_with_us(argv), input=input, capture_output=True, env={**os.environ, **(env or {})}, timeout=timeout, check=False
        )


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.001) -> T:
    """Poll *condition* until it returns something truthy or the deadline passes.

    The kernel-side analogue of the selftests' `busywait`: no fixed sleep, a
    short backoff, and a TimeoutError that says what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what}: not true after {timeout:.1f} s")
        time.sleep(min(interval, left))
        interval = min(interval * 2, 0.05)
