"""Grading: each submission in a forked grader of its own, several at a time.

A grader (a child of this process) runs the script in a jail (nslab/grading/
jail.py), adopts the namespaces the script left into an nslab Lab inside a
private sandbox of its own, runs the exercise's checks and writes the Grade
back as JSON over a pipe, then exits without tearing anything down: the
kernel drops the jail and the sandbox with the grader, and the script's
namespaces once the run lets them go, many at a time (nslab/grading/deaths.py).

Live mode adopts the namespaces of the machine instead (the entries of
/run/netns and the root namespace) into a grader's private sandbox: it
reads and probes; the adoption names live in the grader's private
/run/netns, so nothing is created or left on the machine.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nslab.grading import checks, jail
from nslab.grading.deaths import BatchedDeaths
from nslab.grading.exercise import Exercise
from nslab.grading.scoring import CheckResult, Grade
from nslab.grading.slots import JailSlots
from nslab.kernel import child, drops, linux
from nslab.kernel.drops import DropMonitor, shared
from nslab.lab.live import Lab, wait_ready
from nslab.model.topology import LabError
from nslab.probes import wait
from nslab.probes.result import Result

NETNS_DIR = "/run/netns"
# What finds verified fixes for a failed probe (nslab.advice, a layer above: the CLI passes it in for --fixes).
Fixer = Callable[[Result, Lab, "dict[str, str] | None"], "list[str]"]
# What draws a failed probe's way on the lab as DOT (nslab.advice.path, passed in by the CLI for --out).
Drawer = Callable[[Result, Lab], str]
# One grader's work, given the drop monitor its lab reads (a follower of the run's bpftrace, or none).
Task = Callable[[DropMonitor], Grade]


# A script mostly waits for the kernel, not the CPU: the bridge exercise's correct one takes some 80 ms of
# CPU in about 250 ms (each `ip link set ... netns` waits for an RCU grace period), so two per core keep
# the cores busy. Measured on 2 cores, 24 of them in jails: 11.5 s two at a time, 7.3 s four at a time.
SCRIPTS_PER_CORE = 2
GRADERS_PER_JOB = 2  # graders in flight per running script: one runs its script while another checks what its own left
PROBES = ("arp", "ping", "tcp")  # check types whose failures the kernel's drop reasons explain


@dataclass(frozen=True)
class Graded:
    """The grades of a run, in the order of its submissions, and where its drop reasons came from."""

    grades: list[Grade]
    drop_reasons: str  # one line: shared by the graders, not needed, or why unavailable


def grade_scripts(
    exercise: Exercise, paths: list[str], *, jobs: int | None = None, limits: jail.Limits | None = None, fixes: Fixer | None = None, draw: Drawer | None = None
) -> Graded:
    """Grade each script (in order of *paths*): at most *jobs* scripts run at a time (default_jobs()),
    and GRADERS_PER_JOB times as many graders check what the scripts left (checking mostly waits)."""
    limits = limits or jail.Limits()
    jobs = jobs or default_jobs()
    scripts = []
    for p in paths:
        scripts.append((p, Path(p).read_text(errors="replace")))
    slots, deaths = JailSlots(jobs), BatchedDeaths()
    try:
        tasks = [(name, _submission_task(exercise, text, limits, fixes, draw, slots, deaths, i)) for i, (name, text) in enumerate(scripts)]
        # A grader may wait for a slot behind the scripts of the graders before it: its deadline allows for them.
        return _run_parallel(exercise, tasks, jobs * GRADERS_PER_JOB, deadline=limits.time * (GRADERS_PER_JOB + 1) + 30.0, deaths=deaths)
    finally:
        slots.close()
        deaths.close()


def default_jobs() -> int:
    """Scripts at a time when not told: SCRIPTS_PER_CORE per core this process may use."""
    return SCRIPTS_PER_CORE * len(os.sched_getaffinity(0))


def grade_live(exercise: Exercise, *, timeout: float = 60.0, fixes: Fixer | None = None) -> Grade:
    """Grade what is built on this machine (its /run/netns and root namespace), read-only."""
    return _run_parallel(exercise, [("live", lambda monitor: _live_grade(exercise, monitor, fixes))], 1, deadline=timeout).grades[0]


# -- one grader per submission ----------------------------------------------------
def _submission_task(
    exercise: Exercise, script: str, limits: jail.Limits, fixes: Fixer | None, draw: Drawer | None, slots: JailSlots, deaths: BatchedDeaths, index: int
) -> Task:
    def task(monitor: DropMonitor) -> Grade:
        deaths.forget_inherited()
        with slots.held(index) as let_go:
            start = time.monotonic()  # the time to grade it, not the wait for a slot
            run = jail.run_script(script, given=exercise.given, root_name=exercise.host, limits=limits, runaway=let_go)
        ignored = "".join(f"nslab: ignored /run/netns/{name}: {why}\n" for name, why in run.rejected.items())
        extra = {"script_status": run.status, "output": (run.output + ignored)[-4000:], "elapsed": 0.0}
        if run.reason is None:
            grade = _check(exercise, run.namespaces, extra, monitor, fixes, draw)
        else:
            grade = Grade.zero("", exercise, run.reason, **extra)
        deaths.hand_over(run.namespaces.values())
        run.close()
        return _timed(grade, start)

    return task


def _live_grade(exercise: Exercise, monitor: DropMonitor, fixes: Fixer | None = None) -> Grade:
    start = time.monotonic()
    if os.geteuid() != 0:
        return Grade.zero("live", exercise, "live mode reads your namespaces as root: run it with sudo")
    fds = _open_live_namespaces(exercise.host)
    try:
        grade = _check(exercise, fds, {"elapsed": 0.0}, monitor, fixes)
    finally:
        for fd in fds.values():
            os.close(fd)
    return _timed(grade, start)


def _open_live_namespaces(host: str | None) -> dict[str, int]:
    """An fd per network namespace in /run/netns (and the root one as *host*); opens, changes nothing."""
    out: dict[str, int] = {}
    if host is not None:
        out[host] = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    names = sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []
    for name in names:
        if name == host:
            continue
        try:
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            ok = fcntl.ioctl(fd, jail.NS_GET_NSTYPE) == linux.CLONE_NEWNET
        except OSError:
            ok = False
        if ok:
            out[name] = fd
        else:
            os.close(fd)
    return out


def _check(
    exercise: Exercise, namespaces: dict[str, int], extra: dict, monitor: DropMonitor, fixes: Fixer | None = None, draw: Drawer | None = None
) -> Grade:
    """Adopt the namespaces into a lab in a fresh private sandbox, run every check (its probes read *monitor*)."""
    # Its own sandbox: a private /run/netns for the names below. No network namespace of its own: every
    # socket a check opens is opened in an adopted namespace, and the drop monitor is the run's.
    lab = Lab(drops=monitor, isolated=False)
    lab.open()
    for name, fd in _one_name_each(exercise, namespaces).items():
        try:
            lab.adopt_namespace(name, f"/proc/self/fd/{fd}")
        except LabError:
            continue  # a name nslab cannot use (e.g. with a space): as if it did not exist
    lab.keep_reads()  # each probe's diagnosis reads the same links, addresses and routes: read again only once the kernel says they changed
    snap = lab.read_back()  # adopts whatever the kernel holds (lab/observed.py)
    wait_ready(lab)  # what the script just raised is ready a moment later (linkwatch, addrconf): not the student's doing
    shared.narrow(monitor, (ns.inode for ns in lab.namespaces))  # the probes' drops happen there, and only those are asked for
    results = []
    for c in exercise.checks:
        probed = len(lab.probes)
        results.append(CheckResult.of(c, checks.run(c, lab, snap)))
        if not results[-1].passed and len(lab.probes) > probed:
            if fixes is not None:
                results[-1].fixes = fixes(lab.probes[-1], lab, {exercise.host: ""} if exercise.host else None)
            if draw is not None:
                results[-1].path = _drawn(draw, lab)
    return Grade.scored("", exercise, results, **extra)


def _drawn(draw: Drawer, lab: Lab) -> str:
    try:
        return draw(lab.probes[-1], lab)
    except Exception:  # noqa: BLE001 - a setup the diagram cannot show: the page goes without it
        return ""


def _one_name_each(exercise: Exercise, namespaces: dict[str, int]) -> dict[str, int]:
    """One name per network namespace: where two names bind the same one (`ip netns attach`
    of a namespace that already has a name), the name the exercise's checks use wins, else
    the first in order. The model holds each namespace once, so a veth's peer has one name."""
    used = {ns for c in exercise.checks for ns in c.namespaces}
    chosen: dict[int, str] = {}
    for name, fd in namespaces.items():
        inode = os.fstat(fd).st_ino
        if inode not in chosen or (name in used and chosen[inode] not in used):
            chosen[inode] = name
    return {name: namespaces[name] for name in chosen.values()}


def _timed(grade: Grade, start: float) -> Grade:
    grade.elapsed = time.monotonic() - start
    return grade


# -- forking graders, collecting their JSON ------------------------------------------
def _run_parallel(exercise: Exercise, tasks: list[tuple[str, Task]], jobs: int, *, deadline: float, deaths: BatchedDeaths | None = None) -> Graded:
    """Fork a grader per task, *jobs* at a time, sharing one drop monitor when a check probes;
    *deaths* takes the namespaces graders hand over (nslab/grading/deaths.py)."""
    _preload()
    probes = any(c.type in PROBES for c in exercise.checks)
    # Inside a run that serves one (a test of nslab's own suite), the graders follow the run's.
    monitor = shared.Broadcaster().start() if probes and not shared.serving() else None
    try:
        grades = _fork_graders(exercise, tasks, jobs, deadline, monitor, probes, deaths)
        if not probes:
            note = "drop reasons: not needed (no check sends a probe), bpftrace not started"
        elif monitor is None:
            note = f"drop reasons: the run's bpftrace ({shared.ENV}), followed by {len(tasks)} graders"
        elif monitor.available:
            note = f"drop reasons: one bpftrace for the run, shared by {len(tasks)} graders (attached in {monitor.attach_seconds or 0:.2f} s)"
        else:
            note = f"drop reasons: unavailable ({monitor.why}); causes come from captures and counters"
    finally:
        if monitor is not None:
            monitor.stop()  # terminates bpftrace and reaps it: no defunct process is left
    return Graded(grades, note)


def _fork_graders(
    exercise: Exercise, tasks: list[tuple[str, Task]], jobs: int, deadline: float, monitor: shared.Broadcaster | None, probes: bool, deaths: BatchedDeaths | None
) -> list[Grade]:
    results: dict[int, Grade] = {}
    pending = list(enumerate(tasks))
    running: dict[int, tuple[int, child.Child[dict], float, int | None]] = {}  # read fd -> (index, grader, started, drops pipe)
    while pending or running:
        while pending and len(running) < max(1, jobs):
            index, (_, task) = pending.pop(0)
            drops_pipe = monitor.subscribe() if monitor is not None else None
            grader = child.start(_grade, task, monitor, drops_pipe, probes)
            running[grader.fileno()] = (index, grader, time.monotonic(), drops_pipe)
        ready = wait.readable([*running, *([deaths] if deaths is not None else [])], 0.5)
        for r in ready:
            if r is deaths:
                deaths.collect()
                continue
            index, grader, _, drops_pipe = running[r]
            if grader.read():
                continue
            del running[r]
            results[index] = _decode(exercise, tasks[index][0], grader)
            _unsubscribe(monitor, drops_pipe)
        now = time.monotonic()
        for r, (index, grader, started, drops_pipe) in list(running.items()):
            if now - started > deadline:
                grader.kill()
                _unsubscribe(monitor, drops_pipe)
                del running[r]
                results[index] = Grade.zero(tasks[index][0], exercise, f"the grader did not finish within {deadline:g} s")
    return [results[i] for i in range(len(tasks))]


def _unsubscribe(monitor: shared.Broadcaster | None, drops_pipe: int | None) -> None:
    if monitor is not None and drops_pipe is not None:
        monitor.unsubscribe(drops_pipe)


def _grade(task: Task, monitor: shared.Broadcaster | None, drops_pipe: int | None, probes: bool) -> dict:
    """In a forked grader (kernel/child): its drop reasons from the grading run's monitor, or the
    test run's it runs in, or none; the grade as plain data."""
    if monitor is not None and drops_pipe is not None:
        reasons: DropMonitor = shared.follow(monitor, drops_pipe)
    elif probes:
        reasons = shared.join() or drops.off("the run's drop monitor cannot be followed")
    else:
        reasons = drops.off("this grading run needs no drop reasons (no probe check)")
    # No drop concerns this grader before its lab is adopted (a probe reads only the drops after
    # its own flush): until then the run's other drops pass its socket unparsed (_check widens it).
    shared.narrow(reasons, ())
    return task(reasons).to_dict()


def _decode(exercise: Exercise, name: str, grader: child.Child[dict]) -> Grade:
    try:
        grade = Grade.from_dict(grader.result())
    except child.ChildError:
        return Grade.zero(name, exercise, "the grader died without a result")
    except Exception as exc:  # noqa: BLE001 - the grader's own failure, reported as such
        return Grade.zero(name, exercise, f"could not grade: {type(exc).__name__}: {exc}")
    grade.submission = name
    return grade


def _preload() -> None:
    """Import what graders use once, here, so each forked grader starts warm."""
    import nslab.diagnosis.evidence
    import nslab.diagnosis.explain
    import nslab.diagnosis.watch
    import nslab.probes.arp
    import nslab.probes.icmp
    import nslab.probes.tcp  # noqa: F401


__all__ = ["Graded", "grade_live", "grade_scripts"]
