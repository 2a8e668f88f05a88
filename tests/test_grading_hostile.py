"""Hostile submissions are contained, stopped and graded zero, and the machine
does not notice: its links, addresses, routes, namespaces and /run/netns are
the same after (read from PID 1's namespaces), the test's own sandbox
namespace that a script tries to enter is untouched, no process of a jail
survives, and the host stays responsive while a fork bomb runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import tomllib

import pytest

from nslab.grading import exercise as ex
from nslab.grading import jail
from nslab.grading.slots import JailSlots
from nslab.kernel.process import wait_until
from tests.host import host_state as read_host_state

pytestmark = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))

HOSTILE = ex.EXERCISES / "veth-two-namespaces" / "samples" / "hostile"
EXPECTED = tomllib.loads((HOSTILE / "expected.toml").read_text())
JAIL_UID = 65534
REAP_BOUND = 30  # s the subreaper waits for orphans to die (generous: see SUBREAPER)

# Runs a command as a child subreaper: whatever the command leaves behind is
# reparented here, and listed (after reaping the dead) in the file argv[1].
SUBREAPER = """
import ctypes, json, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
rc = subprocess.run(sys.argv[2:]).returncode
# Orphans dying with their parent: reap them as they go, until none is left. A killed
# process can take seconds to be gone on a busy machine (bpftrace detaching from its
# tracepoint waits for RCU grace periods), so the bound is generous; one that lives on
# is listed with its command line.
deadline = time.monotonic() + REAP_BOUND
while time.monotonic() < deadline:
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0:
            time.sleep(0.01)
    except ChildProcessError:
        break
def named(pid):
    try:
        return pid + " " + open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return pid
left = [named(p) for p in open(f"/proc/self/task/{os.getpid()}/children").read().split()]
open(sys.argv[1], "w").write(json.dumps({"rc": rc, "left": left}))
"""


def run_reaped(argv: list[str], report, **kwargs) -> subprocess.Popen:
    """Start *argv* under the subreaper; *report* receives what survived it."""
    return subprocess.Popen([sys.executable, "-c", f"REAP_BOUND = {REAP_BOUND}\n{SUBREAPER}", str(report), *argv], **kwargs)


def host_state(sandbox) -> str:
    """The machine's network state and /run/netns, read-only (see tests/host.py)."""
    if os.geteuid() != 0 or getattr(sandbox, "outside", None) is None:
        pytest.skip("reading the machine's own namespaces needs root and the sandbox's outside namespaces")
    return read_host_state()


def jail_processes(under: int | None = None) -> list[int]:
    """PIDs whose real uid is the jail's (65534): live script processes, if any
    (only descendants of *under*, when given)."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            table[int(pid)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]))
        except (OSError, KeyError, ValueError):
            continue

    def descends(pid: int) -> bool:
        while pid in table and pid != under:
            pid = table[pid][0]
        return pid == under

    return [pid for pid, (_, uid) in table.items() if uid == JAIL_UID and (under is None or descends(pid))]


@pytest.fixture(scope="module")
def graded_hostile(nslab_sandbox, tmp_path_factory):
    """Grade every hostile sample in one run, with a namespace 'graderhost' in the
    grading process's own /run/netns for the scripts to try to enter."""
    from nslab import Lab

    with Lab() as lab:
        yield _grade_hostile(lab, tmp_path_factory.mktemp("hostile"))


def _grade_hostile(lab, tmp_path) -> dict:
    host = lab.add_namespace("graderhost")
    before = host_state(lab.kernel.sandbox)
    out = tmp_path / "h.json"
    scripts = sorted(str(p) for p in HOSTILE.glob("*.sh"))
    grader = run_reaped(
        [sys.executable, "-m", "nslab.cli.main", "grade", "--time-limit", "2", "veth-two-namespaces", *scripts, "-j", "2", "--json", str(out)],
        tmp_path / "reaped.json",
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout = grader.communicate(timeout=60)[0]
    reaped = json.loads((tmp_path / "reaped.json").read_text())
    grades = {os.path.basename(g["submission"])[:-3]: g for g in json.loads(out.read_text())["submissions"]}
    after = host_state(lab.kernel.sandbox)
    return {"rc": reaped["rc"], "stdout": stdout, "left": reaped["left"], "grades": grades, "before": before, "after": after, "host": host}


def test_every_hostile_sample_is_graded_zero_with_its_reason(graded_hostile):
    grades = graded_hostile["grades"]
    assert set(grades) == set(EXPECTED)
    assert graded_hostile["rc"] == 1
    for name, want in EXPECTED.items():
        g = grades[name]
        assert g["score"] == want["score"] == 0, name
        if "reason" in want:
            assert g["reason"].startswith(want["reason"] + ":"), (name, g["reason"])
            assert f"graded zero: {g['reason']}" in graded_hostile["stdout"]
        else:
            assert g["reason"] is None, (name, g["reason"])
        if "says" in want:
            assert want["says"] in g["output"], (name, g["output"])


def test_the_machine_and_the_graders_namespaces_are_unchanged(graded_hostile):
    assert "1: lo:" in graded_hostile["before"]  # the machine's state was really read
    assert graded_hostile["after"] == graded_hostile["before"]
    host = graded_hostile["host"]
    assert host.link_names() == ["lo"]  # `ip netns exec graderhost ip link add pwned0 ...` did not reach it
    assert sorted(os.listdir("/run/netns")) == ["graderhost"]  # nothing planted in the grader's /run/netns


def test_no_process_of_a_jail_survives(graded_hostile):
    assert graded_hostile["left"] == []  # nothing was orphaned by the graders or the jails


def test_the_scripts_own_attempts_acted_only_inside_their_jail(graded_hostile):
    out = graded_hostile["grades"]["delete-links"]["output"]
    # The jail's own sysfs and links: the machine's interfaces are not even visible.
    assert 'Cannot find device "eth0"' in out
    assert "1: lo:" in out and "eth0:" not in out.split("1: lo:", 1)[1]
    written = graded_hostile["grades"]["write-run-netns"]["output"]
    assert "pwned-ns" in written  # `ip netns add` worked, in the jail's private /run/netns


def test_a_fork_bomb_is_bounded_and_the_host_stays_responsive(nslab_sandbox, tmp_path):
    """While a fork bomb runs in its jail (2 s time limit), starting a process on
    the host stays fast; the bomb never has more than RLIMIT_NPROC processes,
    and afterwards none of them is left."""
    grader = run_reaped(
        [sys.executable, "-m", "nslab.cli.main", "grade", "--time-limit", "2", "veth-two-namespaces", str(HOSTILE / "fork-bomb.sh")],
        tmp_path / "reaped.json",
        stdout=subprocess.PIPE,
        text=True,
    )
    latencies, peak = [], 0
    while grader.poll() is None:
        start = time.monotonic()
        subprocess.run(["true"], check=True)
        latencies.append(time.monotonic() - start)
        peak = max(peak, len(jail_processes(under=grader.pid)))
    out = grader.communicate(timeout=10)[0]
    reaped = json.loads((tmp_path / "reaped.json").read_text())
    assert reaped == {"rc": 1, "left": []}
    assert "graded zero: time limit: still running after 2 s" in out
    assert 0 < peak <= 64  # RLIMIT_NPROC of the jail
    print(f"fork bomb: peak {peak} jail processes; host process start median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms over {len(latencies)}")
    assert statistics.median(latencies) < 0.05 and max(latencies) < 0.5, (statistics.median(latencies), max(latencies))


def test_a_runaway_is_demoted_to_the_lowest_priority_and_its_grader_told():
    """A busy loop passes the jail's CPU allowance (0.3 s here): its autogroup's nice becomes
    19 while it runs (the loop waits for it), and the grader is told once."""
    told = []
    script = "until grep -q 'nice 19' /proc/self/autogroup; do :; done; cat /proc/self/autogroup"
    run = jail.run_script(script, root_name=None, limits=jail.Limits(time=20, runaway=0.3), runaway=lambda: told.append(True))
    assert (run.status, run.reason) == (0, None), run.output
    assert run.output.endswith(" nice 19\n") and told == [True]


def test_a_correct_solution_is_never_demoted():
    """The allowance is far above what a solution's `ip` commands use: the bridge exercise's
    correct sample ends at nice 0 and its grader is never told."""
    told = []
    exercise = ex.load("bridge-three-containers")
    script = (ex.EXERCISES / "bridge-three-containers" / "samples" / "correct.sh").read_text() + "cat /proc/self/autogroup\n"
    limits = jail.Limits(time=60)  # the default allowance; time for a machine whose `ip` commands crawl
    run = jail.run_script(script, given=exercise.given, root_name=exercise.host, limits=limits, runaway=lambda: told.append(True))
    assert (run.status, run.reason) == (0, None), run.output
    assert run.output.endswith(" nice 0\n") and told == []
    run.close()


def test_a_slot_let_go_early_is_free_for_the_next_script():
    slots = JailSlots(1)
    other = os.open(f"/proc/self/fd/{slots.files[0]}", os.O_RDWR)  # another grader's view of the slot
    try:
        with slots.held(0) as let_go:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            let_go()
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)
        slots.close()


def test_killing_the_grader_leaves_no_script_running(nslab_sandbox, tmp_path):
    """`kill -9` of `nslab grade` (that process only) while a fork bomb runs:
    the grader, its jail's holder and the script's PID 1 each die with their
    parent, and the PID namespace takes every other process of the script."""
    cli = [sys.executable, "-m", "nslab.cli.main", "grade", "--time-limit", "30", "veth-two-namespaces", str(HOSTILE / "fork-bomb.sh")]
    wrapper = run_reaped(cli, tmp_path / "reaped.json")
    wait_until(lambda: jail_processes(under=wrapper.pid), 10, "the fork bomb running in its jail")
    with open(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children") as f:
        (cli_pid,) = map(int, f.read().split())
    os.kill(cli_pid, signal.SIGKILL)
    assert wrapper.wait(timeout=REAP_BOUND + 15) == 0  # past the subreaper's own bound: a survivor is named, not a timeout
    reaped = json.loads((tmp_path / "reaped.json").read_text())
    assert reaped == {"rc": -signal.SIGKILL, "left": []}  # nothing outlived the CLI
