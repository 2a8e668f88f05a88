"""Kill real runs at random moments; nothing may be left behind.

A run of the scenarios (two xdist workers, web servers spawned in lab
namespaces, and tests/fault_holder.py keeping a process and labs alive) is
interrupted by Ctrl-C, SIGTERM, or `kill -9` of a worker or of
the controller, at a moment drawn from a seeded generator (the seed is in the
failure message). Afterwards every process of that run must be gone, and,
after the sweep `nslab clean` does, the real host's network state must be
what it was before.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nslab.kernel import leftovers
from nslab.kernel.process import wait_until
from tests.host import host_state

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("NSLAB_FAULT_SEED", time.time_ns() % 100_000))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="reading the real host's state needs root")


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":  # a zombie has ended; only its parent has yet to reap it
                table[int(entry)] = (int(fields[1]), fields[19])
    return table


def descendants(root: int) -> dict[int, str]:
    """pid -> start time of *root* and everything below it."""
    table = processes()
    found = {root: table[root][1]} if root in table else {}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, start) in table.items():
            if ppid in found and pid not in found:
                found[pid] = start
                changed = True
    return found


def still_alive(procs: dict[int, str]) -> list[int]:
    table = processes()
    return [pid for pid, start in procs.items() if pid in table and table[pid][1] == start]


def describe(procs: dict[int, str]) -> str:
    return "; ".join(f"{pid} {leftovers._argv(pid)}" for pid in still_alive(procs)) or "none"


def start_run(log: Path) -> subprocess.Popen:
    # SIGINT at its default, as in a terminal: a run started from a background job of a
    # script inherits it ignored, and then Ctrl-C would test nothing.
    argv = ["env", "--default-signal=INT", sys.executable, "-m", "pytest", "tests/fault_holder.py", "scenarios/", "-n", "2", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
            "-p", "no:hypothesispytest", "--nslab-reports=/tmp/nslab-fault-reports"]  # hypothesis's plugin: 0.5 s per process, unused here
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def workers(run: subprocess.Popen) -> list[int]:
    return [pid for pid, (ppid, _) in processes().items() if ppid == run.pid]


def holders(run: subprocess.Popen) -> dict[int, str]:
    """The holder test's `sleep 300` (pid -> start time), once it runs."""
    return {pid: start for pid, start in descendants(run.pid).items() if leftovers._argv(pid) == "sleep 300"}


def tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-5:]) or "no output"


# What the run's exit status must be after each kill: proof that our signal ended it.
EXPECTED_EXIT = {"Ctrl-C": 2, "SIGTERM to the run": -signal.SIGTERM, "kill -9 of a worker": -signal.SIGKILL, "kill -9 of the run": -signal.SIGKILL}


@pytest.mark.parametrize("how", list(EXPECTED_EXIT))
def test_killed_run_leaves_nothing(how, tmp_path):
    rng = random.Random(f"{SEED}-{how}")
    delay = rng.uniform(0.5, 3.0)
    where = f"{how} at {delay:.2f} s (seed {SEED})"
    before = host_state()
    log = tmp_path / "run.log"
    run = start_run(log)
    try:
        wait_until(lambda: holders(run) or run.poll() is not None, timeout=30, what="the holder's process started")
        assert run.poll() is None, f"{where}: the run ended (exit {run.returncode}) before its holder started, so there was nothing to kill: {tail(log)}"
        deadline = time.monotonic() + delay
        wait_until(lambda: time.monotonic() >= deadline or run.poll() is not None, timeout=delay + 1, what="the random moment")
        assert run.poll() is None, f"{where}: the run ended by itself (exit {run.returncode}) before the kill: {tail(log)}"
        tree, held = descendants(run.pid), holders(run)
        assert held, f"{where}: the holder's process is gone before the kill: {tail(log)}"
        if how == "Ctrl-C":  # a terminal sends SIGINT to the whole foreground process group
            os.killpg(run.pid, signal.SIGINT)
        elif how == "SIGTERM to the run":
            run.send_signal(signal.SIGTERM)
        elif how == "kill -9 of a worker":
            victims = [w for w in workers(run) if set(held) & set(descendants(w))]
            assert victims, f"{where}: no worker runs the holder (workers: {workers(run)})"
            victim_tree = descendants(victims[0])
            os.kill(victims[0], signal.SIGKILL)
            # xdist carries on with a new worker; what the dead one started must be gone
            wait_until(lambda: not still_alive(victim_tree), timeout=10, what=f"every process of the killed worker gone (left: {describe(victim_tree)})")
            assert run.poll() is None, f"{where}: the run ended with its worker (exit {run.returncode}); xdist should carry on: {tail(log)}"
            tree = descendants(run.pid) | victim_tree
            run.kill()
        else:
            run.kill()
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()  # Ctrl-C lets the run finish its teardown; it must still end in time
            pytest.fail(f"{where}: the run did not end within 60 s")
        assert run.returncode == EXPECTED_EXIT[how], f"{where}: the run exited {run.returncode}, not {EXPECTED_EXIT[how]} as our signal would make it: {tail(log)}"
        wait_until(lambda: not still_alive(tree), timeout=10, what=f"every process of the run gone after {how} (left: {describe(tree)})")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    leftovers.sweep()
    after = host_state()
    assert after == before, f"{where} changed the host's network state"
    assert not [item for item in leftovers.find() if item.kind == "process"]


MARKED_IN_OWN_PID_NAMESPACE = (
    "import os; from nslab.kernel import leftovers; run = leftovers.mark_this_run(); "
    "print(run, flush=True); os.execvp('sleep', ['sleep', '60'])"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace of its own (unshare --pid) needs root here")
def test_a_live_run_of_another_pid_namespace_is_not_a_leftover():
    """`nslab why` under `unshare --pid --mount-proc` (tests/test_why.py) marks its processes
    with PIDs of its own namespace; a sweep in this one once took its `nft -f -` for a dead
    run's and would have killed it. Such a run is not judged here, so nothing of it is swept."""
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-c", MARKED_IN_OWN_PID_NAMESPACE],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        run = proc.stdout.readline().strip()
        pid, _, pidns = run.split("-")
        assert pid == "1" and pidns != leftovers.run_id().split("-")[2], run  # PID 1 of a namespace that is not ours
        wait_until(lambda: any(leftovers._argv(int(p)) == "sleep 60" for p in os.listdir("/proc") if p.isdigit() and leftovers._marker_of(int(p)) == run),
                   timeout=10, what="the marked sleep running")
        assert leftovers.alive(run)
        assert not [item for item in leftovers.find() if item.run == run]
    finally:
        proc.kill()
        proc.wait()
