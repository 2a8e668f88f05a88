"""What a killed run can leave outside its sandbox, and the sweep that removes it.

Inside the sandbox nothing outlives the run: the kernel drops its namespaces
with the process, and children die with it (PR_SET_PDEATHSIG). Outside it,
a run may own scratch directories (a CNI plugin's net.d and IPAM data, a
grader's workspace, a VM's module tree) and, if PDEATHSIG was defeated,
processes. Both carry the run's id, `<pid>-<start time>-<PID namespace>` of the
process that entered the sandbox, so a sweep removes exactly what dead runs left
and never touches a live run's lab. A PID and a start time mean something only
in the PID namespace they were read in: a run made in another one (`nslab why`
under `unshare --pid`, say) cannot be judged from here, so it counts as alive
and nothing of it is swept; its own namespace's sweep can judge it.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARKER = "NSLAB_RUN"  # in the environment of every process a run starts
PREFIX = "nslab-run-"  # scratch directories: nslab-run-<pid>-<start>-<pidns>-<purpose>-XXXX


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of stat), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_namespace() -> str:
    """This process's PID namespace (its inode number)."""
    return str(os.stat("/proc/self/ns/pid").st_ino)


def run_id(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid)}-{_pid_namespace()}"


def alive(run: str) -> bool:
    """Is the run's process still the same process (not a reused PID)? A run of another
    PID namespace is taken as alive: its PID cannot be looked up here."""
    pid, start, *pidns = run.split("-")
    if pidns and pidns[0] != _pid_namespace():
        return True
    return pid.isdigit() and _start_time(int(pid)) == start


def mark_this_run() -> str:
    """Record this process as a run, so that what it starts carries its id."""
    os.environ[MARKER] = run_id()
    return os.environ[MARKER]


def scratch_dir(purpose: str) -> str:
    """A temporary directory owned by this run, removed by a sweep once the run is dead."""
    run = os.environ.get(MARKER) or mark_this_run()
    return tempfile.mkdtemp(prefix=f"{PREFIX}{run}-{purpose}-")


def partial_in(cache: Path) -> Path:
    """Where this run builds something for *cache* before renaming it into place: an empty
    `.partial-<run>` path (not yet created), the partials of dead runs removed first."""
    cache.mkdir(parents=True, exist_ok=True)
    for partial in cache.glob(".partial-*"):  # left by a killed build
        if not alive(partial.name.split("-", 1)[1]):
            shutil.rmtree(partial, ignore_errors=True)
    partial = cache / f".partial-{run_id()}"
    shutil.rmtree(partial, ignore_errors=True)
    return partial


@dataclass(frozen=True)
class Leftover:
    kind: str  # 'directory' or 'process'
    what: str  # the path, or 'PID argv'
    run: str

    def __str__(self) -> str:
        return f"{self.kind} {self.what} (left by dead run {self.run})"


def find() -> list[Leftover]:
    """Everything a dead run left: scratch directories and marked processes."""
    found = []
    tmp = tempfile.gettempdir()
    for name in sorted(os.listdir(tmp)):
        if name.startswith(PREFIX):
            parts = name[len(PREFIX) :].split("-")
            run = "-".join(parts[:3] if len(parts) > 3 and parts[2].isdigit() else parts[:2])  # a directory of an older nslab: no PID namespace
            if not alive(run):
                found.append(Leftover("directory", os.path.join(tmp, name), run))
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        marked = _marker_of(int(entry))
        if marked and not alive(marked):
            found.append(Leftover("process", f"{entry} {_argv(int(entry))}", marked))
    return found


def sweep() -> list[Leftover]:
    """Remove what dead runs left (and only that); returns what was removed."""
    removed = []
    for item in find():
        if item.kind == "directory":
            shutil.rmtree(item.what, ignore_errors=True)
        else:
            try:
                os.kill(int(item.what.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                continue
        removed.append(item)
    return removed


def _marker_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    key = MARKER.encode() + b"="
    return next((v[len(key) :].decode() for v in env if v.startswith(key)), None)


def _argv(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
