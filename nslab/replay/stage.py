"""A private world for a tutorial: its "host" is a fresh network namespace.

The stage is a fresh set of namespaces, made once per replay, as the
grader's jail is (nslab/grading/jail.py):

- a user namespace whose root is uid 65534 (nobody) outside: the tutorial
  may build anything in its own namespaces but cannot load modules, set
  the machine's sysctls or write root-owned files;
- network, mount and PID namespaces owned by it: the tutorial's "host" with
  lo up, a private tmpfs on /run/netns and /tmp (the working directory),
  its own /proc and /sys; `ip netns add` binds only there;
- PID 1 of the stage (this module's `_init`) dies with the replay (and with
  it every process the tutorial started).

Each command runs as `nsenter -t INIT -U -n -m -p -- bash -c ...`, bounded;
exported variables and the working directory carry over from one command to
the next, as in one terminal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

from nslab.kernel import child, linux
from nslab.probes import wait

JAIL_ID = 65534
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "TERM": "dumb"}
STATE = "/tmp/.nslab-replay"  # exported variables and the working directory, between commands
WRAP = f". {STATE}.env 2>/dev/null; cd \"$(cat {STATE}.cwd 2>/dev/null || echo /tmp)\"; trap 'export -p > {STATE}.env; pwd > {STATE}.cwd' EXIT; set -a\n"
OUTPUT_CAP = 64 * 1024


@dataclass
class Ran:
    """How a command ended: its status, what it wrote, and whether a bound stopped it."""

    status: int | None
    output: str
    elapsed: float
    interrupted: bool = False  # stopped by Ctrl-C at the bound for commands that run until interrupted
    hung: bool = False  # still running at the hang bound: killed


class Stage:
    """Use as a context manager; `run` a command, `start` a server."""

    def __init__(self) -> None:
        self.init = 0  # PID (outside) of the stage's PID 1
        self._holder = 0
        self._control = -1
        self.servers: list[subprocess.Popen] = []

    def __enter__(self) -> "Stage":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> "Stage":
        r, w = os.pipe()  # the holder reports the stage's init PID; EOF on `control` ends the stage
        control_r, control_w = os.pipe()
        ready_r, ready_w = os.pipe()

        def holder() -> None:
            for fd in (r, control_w, ready_w):
                os.close(fd)
            _holder(w, control_r, ready_r)

        pid = child.spawn(holder)
        os.close(w)
        os.close(control_r)
        os.close(ready_r)
        self._holder, self._control = pid, control_w
        self._map_ids(pid, r, ready_w)
        self.init = int(_read_line(r, 10.0) or "0")
        os.close(r)
        if not self.init:
            self.close()
            raise RuntimeError("the replay's sandbox did not start")
        done = self.run("ip link set lo up", timeout=10)
        if done.status != 0:
            raise RuntimeError(f"the replay's sandbox cannot bring lo up: {done.output.strip()}")
        return self

    def _map_ids(self, pid: int, r: int, ready_w: int) -> None:
        if _read_line(r, 10.0) != "userns":
            raise RuntimeError("the replay's sandbox did not start its user namespace")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"0 {JAIL_ID} 1")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(f"0 {JAIL_ID} 1")
        os.write(ready_w, b"mapped\n")
        os.close(ready_w)

    def close(self) -> None:
        """Stop the servers, end the stage (its PID 1, so every process in it), wait for the holder."""
        for server in self.servers:
            _stop(server)
        self.servers.clear()
        if self._control >= 0:
            os.close(self._control)
            self._control = -1
        if self._holder:
            os.waitpid(self._holder, 0)
            self._holder = 0

    # -- running ------------------------------------------------------------------------
    def argv(self, command: str) -> list[str]:
        return ["nsenter", "-t", str(self.init), "-U", "-n", "-m", "-p", "--", "bash", "-c", WRAP + command]

    def run(self, command: str, *, timeout: float, interrupt: float | None = None, stdin: bytes | None = None) -> Ran:
        """Run *command* to its end, Ctrl-C it at *interrupt* s, kill it at *timeout* s."""
        start = time.monotonic()
        proc = subprocess.Popen(
            self.argv(command),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=ENV,
            start_new_session=True,
        )
        if stdin:
            proc.stdin.write(stdin)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        output, interrupted, hung = _collect(proc, start, interrupt, timeout)
        return Ran(proc.returncode, output, time.monotonic() - start, interrupted, hung)

    def start(self, command: str) -> subprocess.Popen:
        """Start a server in the background; stopped (by its process group) when the stage closes."""
        # Its stdin stays open, as a terminal's would: `nc -l` keeps the connection while it waits for input.
        proc = subprocess.Popen(self.argv(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.servers.append(proc)
        return proc

    # -- what a verdict adopts ------------------------------------------------------------
    @property
    def host_path(self) -> str:
        return f"/proc/{self.init}/ns/net"

    def namespaces(self) -> dict[str, str]:
        """The tutorial's named namespaces: name -> a path that opens it (through the stage's mounts)."""
        root = f"/proc/{self.init}/root"
        where = f"{root}/run/netns"
        try:
            names = sorted(os.listdir(where))
        except OSError:
            return {}
        return {name: self._inside(root, os.path.join(where, name)) for name in names}

    @staticmethod
    def _inside(root: str, path: str) -> str:
        """*path*, a symlink's target read inside the stage (`ln -s /proc/57/ns/net /run/netns/c`:
        the stage's PID 57, never this machine's)."""
        try:
            target = os.readlink(path)
        except OSError:
            return path
        return root + target if target.startswith("/") else os.path.join(os.path.dirname(path), target)


def _collect(proc: subprocess.Popen, start: float, interrupt: float | None, timeout: float) -> tuple[str, bool, bool]:
    """Read the command's output until it ends; Ctrl-C at *interrupt*, kill at *timeout*
    (or 2 s after the Ctrl-C). A process it left in the background may hold the pipe:
    reading stops once the command itself has ended and nothing more is waiting."""
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    buf = bytearray()
    interrupted = hung = False
    while True:
        now = time.monotonic() - start
        if interrupt is not None and not interrupted and now >= interrupt:
            interrupted = True
            _signal_inside(proc.pid, signal.SIGINT)
        limit = min(timeout, interrupt + 2.0) if interrupted and interrupt is not None else timeout
        if now >= limit:
            hung = not interrupted
            _stop(proc)
            break
        ended = proc.poll() is not None
        wake = limit if interrupted or interrupt is None else min(limit, interrupt)
        if not wait.readable([fd], 0 if ended else min(wake - now, 0.5)):
            if ended:
                break
            continue
        data = os.read(fd, 65536)
        if not data:
            break
        buf += data
        del buf[: max(0, len(buf) - OUTPUT_CAP)]
    proc.wait()
    proc.stdout.close()  # type: ignore[union-attr]
    return buf.decode(errors="replace"), interrupted, hung


def _signal_inside(pid: int, sig: int) -> None:
    """Ctrl-C as a terminal sends it: to the processes nsenter started (not nsenter itself)."""
    for descendant in _descendants(pid):
        try:
            os.kill(descendant, sig)
        except ProcessLookupError:
            continue


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        here = todo.pop()
        try:
            with open(f"/proc/{here}/task/{here}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL to the process group we started (by its id), and reap it."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    if proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(1.0)
                break
            except subprocess.TimeoutExpired:
                continue
    proc.wait()


def _read_line(fd: int, timeout: float) -> str | None:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not wait.readable([fd], left):
            return None
        chunk = os.read(fd, 64)
        if not chunk:
            return None
        data += chunk
    return data.decode().strip()


# -- inside (the holder, then the stage's PID 1) -------------------------------------------
def _holder(report: int, control: int, ready: int) -> None:
    """In a child (kernel/child.spawn): the stage's namespaces, then its PID 1, until the replay ends it."""
    linux.unshare(linux.CLONE_NEWUSER)
    os.write(report, b"userns\n")
    if _read_line(ready, 10.0) != "mapped":
        raise RuntimeError("the replay did not map the stage's user ids")
    linux.root_of_new_namespaces()
    for where, size in (("/run/netns", "1m"), ("/tmp", "16m")):
        os.makedirs(where, exist_ok=True)
        linux.mount("tmpfs", where, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"mode=0755,size={size}")
    pid = child.spawn(lambda: _init(control))
    os.write(report, f"{pid}\n".encode())
    os.waitpid(pid, 0)


def _init(control: int) -> None:
    """PID 1 of the stage: its own /proc and /sys, then wait until the replay closes the control pipe."""
    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    linux.mount("sysfs", "/sys", "sysfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    while True:  # PID 1 reaps the orphans of the tutorial's processes
        readable = wait.readable([control], 0.5)
        _reap()
        if readable and not os.read(control, 64):
            break


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
