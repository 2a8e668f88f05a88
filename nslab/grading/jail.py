"""Runs a student's shell script in a jail of its own, and hands back its namespaces.

The jail is a fresh set of namespaces per submission:

- a user namespace in which the script is root, mapped to the unprivileged
  uid/gid 65534 outside: it may build anything *inside* its own namespaces,
  but cannot enter or change any namespace it did not create (setns(2) into
  the host's network namespace fails with EPERM even through `nsenter -t 1`
  on an unmounted /proc), nor write root-owned files;
- network, mount and PID namespaces owned by it: its own links, a private
  tmpfs on /run/netns, /tmp and its own /proc and /sys, so `nsenter -t 1 -n`
  enters the script's own starting namespace and `ip netns exec` sees only
  the script's namespaces;
- limits: a wall-clock deadline, an output cap, RLIMIT_NPROC (a fork bomb
  stops at the cap) and RLIMIT_DATA (not RLIMIT_AS: Go programs such as the
  CNI plugins reserve far more address space than they use, and die at start
  under RLIMIT_AS=512M); when the deadline passes, the PID
  namespace's init is killed, which takes every process of the script with it;
- a runaway's demotion: a script whose processes have used more CPU in user
  mode than a correct solution ever needs (`Limits.runaway`) runs on at the lowest
  priority (its autogroup's nice 19: the CPU no other jail or grader wants)
  until it ends or reaches its deadline, and the grader is told
  (`run_script`'s *runaway*), so it can let its jail slot go.

The process tree: the grader G forks a holder W (this module's `_holder`),
which enters the namespaces and forks the script as PID 1 of the new PID
namespace. W outlives the script so that the script's namespaces, bound in
W's mount namespace, can be opened after it ends; W sends them to G as file
descriptors (SCM_RIGHTS) and G checks that each one is a network namespace
owned by this jail's user namespace before using it.
"""

from __future__ import annotations

import errno as errno_mod
import fcntl
import json
import os
import resource
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from nslab.kernel import linux
from nslab.kernel.child import spawn
from nslab.probes import wait

JAIL_ID = 65534  # "nobody": what the script's root is, seen from outside
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1)
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
REPORTED_OUTPUT = 16384  # characters of the script's output sent back (its tail)
START = 30.0  # seconds for the jail's holder to make its user namespace (milliseconds when the machine is not overloaded)
REPORT = 10.0  # seconds after the script's time limit for the holder to send its namespaces
RUNAWAY = b"runaway"  # the holder to the grader: the script was demoted (see Limits.runaway)
TICK = 0.25  # seconds between two reads of the script's CPU time


@dataclass(frozen=True)
class Limits:
    time: float = 10.0  # seconds of wall clock for the whole script
    output: int = 64 * 1024  # bytes of stdout+stderr
    processes: int = 64  # RLIMIT_NPROC inside the jail
    memory: int = 512 * 1024 * 1024  # RLIMIT_DATA per process (heap and private writable mappings)
    # CPU seconds in user mode (every process of the script) after which it runs at the lowest priority:
    # a correct solution's `ip` commands take some 0.05 s, a busy loop reaches it within seconds. Not
    # the kernel's time: on a machine whose rtnl lock is contended, `ip` spins there for seconds.
    runaway: float = 1.0


@dataclass
class Run:
    """How the script ended, and the network namespaces it left (name -> fd)."""

    status: int | None  # exit status; None when killed by a limit
    reason: str | None  # why it was stopped ('time limit ...'), None if it ended by itself
    output: str
    elapsed: float
    namespaces: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)  # entries of /run/netns that were not usable

    def close(self) -> None:
        for fd in self.namespaces.values():
            os.close(fd)
        self.namespaces.clear()


class JailError(RuntimeError):
    """The jail could not be set up here (not the student's fault)."""


def unavailable() -> str | None:
    """None when jails can be built here, else one sentence saying how to grade.

    Mapping the script's root to uid 65534 takes real root (root of the
    initial user namespace), not root of a user namespace."""
    with open("/proc/self/uid_map") as f:
        initial = f.read().split() == ["0", "0", "4294967295"]
    if os.geteuid() != 0 or not initial:
        return "grading runs each submission in a jail of its own, which needs real root: run it with sudo"
    return None


def run_script(script: str, *, given: str = "", root_name: str | None = "host", limits: Limits | None = None, runaway: Callable[[], None] | None = None) -> Run:
    """Run *given* (the exercise's starting point) then *script* in a fresh jail.

    Returns the run with an fd per network namespace the script left: one per
    entry of its /run/netns, and its starting namespace under *root_name*
    (unless None). The caller owns the fds. *runaway* is called (once) when the
    script is demoted for its CPU use, while it goes on running.
    """
    limits = limits or Limits()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)

    def holder() -> None:  # W
        parent.close()
        try:
            _holder(child, script, given, limits)
        except BaseException as exc:  # report it; spawn's child never returns into the caller's code
            try:
                child.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            except OSError:
                pass
            raise

    pid = spawn(holder)
    child.close()
    try:
        return _supervise(parent, pid, root_name, limits, runaway)
    finally:
        parent.close()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def _supervise(sock: socket.socket, pid: int, root_name: str | None, limits: Limits, runaway: Callable[[], None] | None) -> Run:
    sock.settimeout(START)
    try:
        started = sock.recv(16)
    except TimeoutError:
        raise JailError(f"the jail did not start within {START:g} s") from None
    if started != b"userns":
        raise JailError("the jail did not start its user namespace")
    # Only a privileged parent may map the script's root to an unprivileged id.
    with open(f"/proc/{pid}/uid_map", "w") as f:
        f.write(f"0 {JAIL_ID} 1")
    with open(f"/proc/{pid}/gid_map", "w") as f:
        f.write(f"0 {JAIL_ID} 1")
    userns = os.stat(f"/proc/{pid}/ns/user").st_ino
    sock.send(b"mapped")
    deadline = time.monotonic() + limits.time + REPORT
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 256)
        except TimeoutError:
            raise JailError(f"the jail sent no report within {limits.time + REPORT:g} s (its time limit and {REPORT:g} s more)") from None
        if msg != RUNAWAY:
            break
        if runaway is not None:
            runaway()
    report = json.loads(msg)
    if "error" in report:
        for fd in fds:
            os.close(fd)
        raise JailError(f"the jail failed: {report['error']}")
    run = Run(report["status"], report["reason"], report["output"], report["elapsed"])
    for name, fd in zip(report["names"], fds):
        why = _not_ours(fd, userns)
        if name == root_name:
            why = f"the exercise calls your starting namespace {root_name!r}; a namespace of that name is ignored"
        key = root_name if name == "" else name
        if why or key is None:
            if why:
                run.rejected[name] = why
            os.close(fd)
        else:
            run.namespaces[key] = fd
    return run


def _not_ours(fd: int, userns: int) -> str | None:
    """Why *fd* is not a network namespace this jail created (None if it is)."""
    try:
        if fcntl.ioctl(fd, NS_GET_NSTYPE) != linux.CLONE_NEWNET:
            return "not a network namespace"
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
    except OSError as exc:
        return "not a namespace" if exc.errno == errno_mod.ENOTTY else f"unreadable ({exc.strerror})"
    try:
        if os.fstat(owner).st_ino != userns:
            return "a namespace the script did not create"
    finally:
        os.close(owner)
    return None


# -- inside the jail (W, then the script as PID 1) ------------------------------
def _holder(sock: socket.socket, script: str, given: str, limits: Limits) -> None:
    linux.unshare(linux.CLONE_NEWUSER)
    sock.send(b"userns")
    if sock.recv(16) != b"mapped":
        raise JailError("no id mapping")
    linux.root_of_new_namespaces()
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    for where, size in (("/run/netns", "1m"), ("/tmp", "8m")):
        os.makedirs(where, exist_ok=True)
        linux.mount("tmpfs", where, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"mode=0755,size={size}")
    with open("/tmp/given.sh", "w") as f:
        f.write(given)
    with open("/tmp/solution.sh", "w") as f:
        f.write(script)
    out_r, out_w = os.pipe()
    # The machine's /proc, opened before the script's own is mounted over it: where its CPU time is read.
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    start = time.monotonic()
    pid = spawn(lambda: _exec_script(out_w, limits))
    os.close(out_w)
    status, reason, output = _watch(pid, out_r, limits, Runaway(proc, pid, limits.runaway, lambda: _tell(sock)))
    os.close(proc)
    names, fds = [""], [home]
    for name in sorted(os.listdir("/run/netns")):
        try:
            fds.append(os.open(os.path.join("/run/netns", name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK))
            names.append(name)
        except OSError:
            continue
    # The tail of the output is what a report shows; it also keeps the message within the socket's buffer.
    report = {"status": status, "reason": reason, "output": output[-REPORTED_OUTPUT:], "elapsed": time.monotonic() - start, "names": names}
    socket.send_fds(sock, [json.dumps(report).encode()], fds)
    sock.recv(16)  # until G has them (it closes its end)


def _exec_script(out: int, limits: Limits) -> None:
    """PID 1 of the jail: its own /proc and /sys, the limits, then the script.

    It dies with the holder W (which dies with its grader, which dies with
    the CLI), and with PID 1 dies every process of the script: killing
    `nslab grade` however leaves nothing running (spawn makes each die with its parent)."""
    # A session of its own is a scheduling group of its own (the kernel's autogroup): all the
    # script's processes share one group's CPU, so a fork bomb's 64 busy processes weigh as
    # much as one process of another jail or grader, not 64 times as much.
    os.setsid()
    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    linux.mount("sysfs", "/sys", "sysfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory, limits.memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.chdir("/tmp")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    # The exercise's starting point first (it must succeed), then the student's lines.
    cmd = "ip link set lo up && sh -e /tmp/given.sh || { echo 'nslab: the exercise setup failed' >&2; exit 125; }; exec sh /tmp/solution.sh"
    os.execve("/bin/sh", ["sh", "-c", cmd], env)


def _tell(sock: socket.socket) -> None:
    sock.send(RUNAWAY)


class Runaway:
    """Reads the user CPU time of the script's processes (from the machine's /proc, *proc*) every TICK
    and demotes them once it passes *cpu* seconds: their autogroup's nice becomes 19, then *told*."""

    def __init__(self, proc: int, pid: int, cpu: float, told: Callable[[], None]) -> None:
        self.proc, self.pid, self.cpu, self.told = proc, pid, cpu, told
        self.next = time.monotonic() + TICK
        self.done = False  # demoted, or impossible here (no autogroup)

    def check(self) -> None:
        if self.done or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + TICK
        if self._seconds() <= self.cpu:
            return
        try:
            fd = os.open(f"{self.pid}/autogroup", os.O_WRONLY, dir_fd=self.proc)
            try:
                os.write(fd, b"19")
            finally:
                os.close(fd)
        except BlockingIOError:
            return  # the kernel takes one autogroup change per 0.1 s from the unprivileged: at the next tick
        except OSError:
            self.done = True  # no autogroup (or the script is ending): it keeps its priority and its slot
            return
        self.done = True
        self.told()

    def _seconds(self) -> float:
        """User CPU seconds of the script's PID 1 and its descendants: the live ones, and those they waited for."""
        ticks, todo = 0, [str(self.pid)]
        while todo:
            pid = todo.pop()
            try:
                with open(f"{pid}/stat", opener=self._opener) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"{pid}/task/{pid}/children", opener=self._opener) as f:
                    todo += f.read().split()
            except OSError:
                continue  # it ended meanwhile
            ticks += int(fields[11]) + int(fields[13])  # utime and cutime (proc(5) fields 14 and 16)
        return ticks / os.sysconf("SC_CLK_TCK")

    def _opener(self, path: str, flags: int) -> int:
        return os.open(path, flags, dir_fd=self.proc)


def _watch(pid: int, out: int, limits: Limits, runaway: Runaway) -> tuple[int | None, str | None, str]:
    """Collect the script's output until it exits or breaks a limit (then kill its PID namespace)."""
    deadline = time.monotonic() + limits.time
    pidfd = os.pidfd_open(pid)
    chunks, size, reason, status = [], 0, None, None
    watched = [out, pidfd]
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = f"time limit: still running after {limits.time:g} s, stopped (every process of the script was killed)"
            break
        runaway.check()
        ready = wait.readable(watched, min(left, TICK))
        if out in ready:
            data = os.read(out, 65536)
            if not data:
                watched.remove(out)
            size += len(data)
            if size > limits.output:
                chunks.append(data[: max(0, limits.output - (size - len(data)))])
                reason = f"output limit: wrote more than {limits.output} bytes, stopped (every process of the script was killed)"
                break
            chunks.append(data)
        elif pidfd in ready:
            # PID 1 is gone, so is every process of the script; drain what they wrote.
            status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            while size <= limits.output and (data := os.read(out, 65536)):
                chunks.append(data)
                size += len(data)
    if status is None:
        os.kill(pid, signal.SIGKILL)  # PID 1: the kernel kills the whole namespace
        os.waitpid(pid, 0)
    os.close(pidfd)
    os.close(out)
    return status, reason, b"".join(chunks)[: limits.output].decode(errors="replace")


__all__ = ["JailError", "Limits", "Run", "run_script", "unavailable"]
