"""The kernel's own drop reasons, per packet: `tracepoint:skb:kfree_skb` through bpftrace.

One monitor per process (a script or a pytest-xdist worker), started lazily by
`monitor()`, or one per run shared by its processes (nslab.kernel.drops.shared).
It runs Debian's `bpftrace` as a child that reports every dropped IPv4 or ARP packet with the kernel's reason (`IP_INADDRERRORS`, `IP_RPFILTER`,
`NETFILTER_DROP`, ...), the network namespace (inode) and interface (ifindex)
it was dropped in, and its header fields, so a caller can tie a drop to its own
probe packet and parallel workers never mistake each other's drops:

    mon = monitor()
    if mon.ready(timeout=10):          # attached (a few seconds, once per process)
        mark = mon.position()
        ...send the probe...
        mon.flush()                    # every drop before this call has been read
        for d in mon.since(mark, netns={inode}):
            if d.matches(proto=17, sport=sport, dport=dport):
                print(d.reason, d.ifindex)   # e.g. IP_INADDRERRORS 2
    else:
        print(mon.why)                 # e.g. "not root: ..." -- callers work without it

How a drop is attributed: by `skb->dev` when the packet has a device (received
or forwarded packets: the device it came in on). A locally generated packet
dropped before it has a device (netfilter OUTPUT) is attributed to the device
of its route (`skb_dst(skb)->dev`: its namespace, and the ifindex it would have
left by), else to its socket's namespace (ifindex 0). `Drop.via` says which.
Drops in the host's namespace are skipped in BPF: no lab lives there, and the
host's traffic is noise (a monitor made with `host=True` keeps them: `nslab why`
adopts the namespace it runs in, and the probe's own drops there are read). "The host's" is what this process can see of it
(`init_net` has no symbol to compare with in kallsyms without KALLSYMS_ALL):
pid 1's namespace when readable, the one this process came from before
entering nslab's sandbox, and the sandbox's own (or, outside a sandbox, the
process's own when the monitor starts).

Reason names are read from the tracepoint's format file
(`/sys/kernel/tracing/events/skb/kfree_skb/format`), never hard-coded: the
numbers change between kernels. tracefs is mounted only in the child's private
mount namespace (`unshare --mount --propagation slave`), never on the host.

Lifetime: the child runs under `setpriv --pdeathsig KILL`, spawned by the
monitor's reader thread (a parent-death signal follows the thread that forked),
so it dies with the process however that ends; `stop()` ends it by its PID and
runs at interpreter exit. bpftrace pins nothing, and the mount goes with the
child's mount namespace: nothing is left behind.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from typing import Iterable

from nslab.kernel import linux, sandbox
from nslab.kernel.drops import btf
from nslab.kernel.drops.program import _CHILD, program
from nslab.kernel.drops.records import ETH_P_IP, RAW_WORDS, Drop, Mark, lacking, parse, reason_names
from nslab.kernel.process import _dies_with_us

TRACEFS = "/sys/kernel/tracing"
FORMAT = f"{TRACEFS}/events/skb/kfree_skb/format"
BTF = "/sys/kernel/btf/vmlinux"
KEEP = 10_000  # drops held for since(); older ones are forgotten
OFF_VARIABLE = "NSLAB_DROP_REASONS"
MARKER_PORT = 9  # UDP discard: where flush() markers die (NO_SOCKET) in the monitor's own namespace
RESEND = 0.25  # seconds a flush waits for a CPU's marker before it sends that CPU another
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def missing() -> str | None:
    """None if this process can run the monitor, else one line naming what is missing (or that
    it was turned off: NSLAB_DROP_REASONS=off, which nslab matrix sets in a TCG guest)."""
    if os.environ.get(OFF_VARIABLE) == "off":
        return f"turned off ({OFF_VARIABLE}=off)"
    why = []
    if not _privileged():
        why.append("not root: drop reasons need root in the host's user namespace (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN); run as root")
    if shutil.which("bpftrace") is None:
        why.append("bpftrace is not installed (apt-get install bpftrace)")
    tools = [t for t in ("setpriv", "unshare", "mount", "mountpoint", "sh", "cat") if shutil.which(t) is None]
    if tools:
        why.append(f"{', '.join(tools)} not found (apt-get install util-linux)")
    if not os.path.exists(BTF):
        why.append(f"the kernel has no BTF ({BTF} is missing; it needs CONFIG_DEBUG_INFO_BTF=y)")
    return "; ".join(why) or None


def _privileged() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            if f.read().split() != ["0", "0", "4294967295"]:
                return False  # root of a user namespace only (nslab's rootless sandbox)
        with open("/proc/self/status") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return False
    def has(cap: int) -> bool:
        return bool(caps >> cap & 1)

    return has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON))


# -- the monitor ------------------------------------------------------------------------------


class DropMonitor:
    """bpftrace on `skb:kfree_skb`, read by a background thread into a bounded window of drops.

    Use `monitor()` for the process-wide one; a DropMonitor of your own is for tests and `nslab why`.
    """

    def __init__(self, *, host: bool = False) -> None:
        self.reasons: dict[int, str] = {}
        self._host = host  # report the host's namespaces too (a lab that adopted them: `nslab why`)
        self.lost = 0  # events bpftrace reported lost (its per-CPU buffers overflowed)
        self.attach_seconds: float | None = None  # from spawning bpftrace to its BEGIN line
        self.notes: deque[str] = deque(maxlen=50)  # other lines bpftrace wrote (warnings)
        self._why: str | None = None
        self._drops: deque[tuple[int, int, int, str]] = deque(maxlen=KEEP)  # seq, time_ns, netns, the report line
        self._next_seq = 0
        self._cond = threading.Condition()
        self._settled = threading.Event()  # attached, or known to have failed
        self._attached = False
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._marker: socket.socket | None = None
        self.marker_netns = 0
        self.skipped: set[int] = set()  # namespaces whose drops are not reported (the host's)
        self._home = -1  # fd of the namespace the reader thread and bpftrace live in (no lab's)
        self._marker_seen: dict[int, int] = {}  # cpu -> newest marker time_ns read
        self._cpus: list[int] = []
        self._flush_lock = threading.Lock()
        self._spawning = threading.Lock()  # stop() and the spawn of bpftrace do not cross
        self._fields: dict[str, btf.Field] = {}  # where the program's fields lie in this kernel

    # -- state ------------------------------------------------------------------
    @property
    def available(self) -> bool:
        """True once bpftrace is attached and still running."""
        return self._attached and self._why is None and self._proc is not None and self._proc.poll() is None

    @property
    def why(self) -> str | None:
        """Why drop reasons are unavailable (one line), None when they are (or still may be)."""
        if self._why is None and self._attached and self._proc is not None and self._proc.poll() is not None:
            return f"bpftrace exited (status {self._proc.returncode})"
        return self._why

    def ready(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until bpftrace has attached or failed; True if drops are being reported."""
        if not self._settled.wait(timeout) and self._why is None:
            self._why = f"bpftrace did not attach within {timeout:g} s"
            self.stop()
        return self.available

    # -- lifetime -----------------------------------------------------------------
    def start(self) -> DropMonitor:
        """Start bpftrace in the background (returns at once; `ready()` waits for it)."""
        if self._thread is not None or self._settled.is_set():
            return self
        problem = missing()
        if problem is None:
            try:
                self._marker, self.marker_netns = _marker_socket()
                self._cpus = sorted(os.sched_getaffinity(0))
                self._home = _home_netns()
                self.skipped = set() if self._host else _host_namespaces(self._home)
            except OSError as exc:
                problem = f"the monitor's marker namespace cannot be made: {exc}"
        if problem is None:
            try:
                self._fields = btf.fields()
            except LookupError as exc:
                problem = str(exc)
        if problem is not None:
            self._fail(problem)
            return self
        self._thread = threading.Thread(target=self._run, name="nslab-drops", daemon=True)
        self._thread.start()
        return self

    def stop_soon(self) -> None:
        """Ask bpftrace to end (SIGTERM, by its PID) without waiting: its exit takes a fifth of a
        second here (its probes detach), which can overlap other work before `stop()` reaps it."""
        with self._spawning:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop bpftrace (SIGTERM, then SIGKILL at the deadline), by its PID. Safe to call twice."""
        self.stop_soon()
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._marker is not None:
            self._marker.close()
            self._marker = None
        self._settled.set()
        with self._cond:
            self._cond.notify_all()

    # -- reading --------------------------------------------------------------------
    def position(self) -> Mark:
        """A mark to pass to `since()`: "from now on"."""
        with self._cond:
            seq = self._next_seq
        return Mark(seq, time.monotonic_ns())

    def since(self, mark: Mark, netns: Iterable[int] | None = None) -> list[Drop]:
        """The drops read so far that happened after *mark*, oldest read first, in the namespaces
        *netns* (inodes; all if None). Non-blocking; `flush()` first to be sure of the latest."""
        wanted = None if netns is None else set(netns)
        lines = []
        with self._cond:
            for seq, time_ns, inode, line in reversed(self._drops):
                if seq < mark.seq:
                    break
                if time_ns >= mark.time_ns and (wanted is None or inode in wanted):
                    lines.append(line)
        lines.reverse()
        return [drop for line in lines if (drop := parse(line, self.reasons)) is not None]

    def forgotten(self, mark: Mark) -> int:
        """How many drops read after *mark* `since()` no longer holds: it keeps the latest `keeps`,
        and a burst of the machine's drops can push a probe's own out before the probe reads them."""
        with self._cond:
            oldest = self._drops[0][0] if self._drops else self._next_seq
        return max(0, oldest - mark.seq)

    @property
    def keeps(self) -> int:
        """How many of the latest drops `since()` holds."""
        return self._drops.maxlen or 0

    def flush(self, timeout: float = 2.0) -> bool:
        """Return True once every drop that happened before this call has been read.

        bpftrace's per-CPU buffers keep order within a CPU, not across CPUs: so
        a marker packet is dropped on purpose on each CPU this process may run
        on (UDP to a closed port in the monitor's own namespace, the thread
        pinned there by sched_setaffinity), and the call returns when every
        CPU's marker has been read. A marker dropped while that CPU's buffer was
        full is lost like any report (bpftrace held up, a burst of the run's
        drops): every RESEND seconds the CPUs not yet heard from get another.
        False if unavailable or at the deadline.
        """
        marker = self._marker
        if not self.available or marker is None:
            return False
        with self._flush_lock:
            start = time.monotonic_ns()
            deadline = time.monotonic() + timeout
            missing = list(self._cpus)
            while True:
                if not self._send_markers(marker, missing):
                    return False
                resend = min(deadline, time.monotonic() + RESEND)
                with self._cond:
                    while missing := [cpu for cpu in self._cpus if self._marker_seen.get(cpu, 0) < start]:
                        left = resend - time.monotonic()
                        if left <= 0 or not self.available:
                            break
                        self._cond.wait(left)
                if not missing:
                    return True
                if time.monotonic() >= deadline or not self.available:
                    return False

    def _send_markers(self, marker: socket.socket, cpus: list[int]) -> bool:
        """One marker dropped on each of *cpus*, this thread pinned to each in turn."""
        saved = os.sched_getaffinity(0)
        try:
            for cpu in cpus:
                os.sched_setaffinity(0, {cpu})
                marker.sendto(b"nslab-flush", ("127.0.0.1", MARKER_PORT))
        except OSError:
            return False
        finally:
            os.sched_setaffinity(0, saved)
        return True

    # -- the reader thread ------------------------------------------------------------
    def _run(self) -> None:
        # A thread is born in its creator's namespace, which may be a lab's: leave it
        # (bpftrace living there would keep the lab's namespace from being deleted).
        linux.setns(self._home)
        os.close(self._home)
        bpftrace = shutil.which("bpftrace") or "bpftrace"  # missing() said it is there
        argv = ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", _CHILD % TRACEFS, bpftrace, program(self._fields, self.skipped)]
        began = time.monotonic()
        with self._spawning:
            if self._stopping:
                return
            try:
                # Spawned from this thread: the parent-death signal follows the thread that forks.
                self._proc = subprocess.Popen(
                    _dies_with_us(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                self._fail(f"bpftrace could not be started: {exc}")
                return
        stage, failed = "format", None
        fmt: list[str] = []
        errors: list[str] = []
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if stage != "format" and line.startswith("D "):  # other CPUs may report before BEGIN's line
                self._add(line)
            elif line.startswith("nslab-fail "):
                failed = line[len("nslab-fail ") :]  # our child script's own words (tracefs, tracepoint)
            elif stage == "format":
                if line == "nslab-format-end":
                    text = "\n".join(fmt)
                    self.reasons, stage = reason_names(text), "attaching"
                    if (lacks := lacking(text)) is not None:
                        self._fail(lacks)  # bpftrace, which reads args->reason, fails on its own
                else:
                    fmt.append(line)
            elif line == "nslab-ready":
                self.attach_seconds = time.monotonic() - began
                stage, self._attached = "running", True
                self._settled.set()
            elif m := re.match(r"Lost (\d+) events", line):
                self.lost += int(m.group(1))
            elif line.strip() and not line.startswith("Attaching "):
                self.notes.append(line)
                if "RLIMIT_MEMLOCK" not in line:  # a warning: it works without (memory is cgroup-accounted)
                    errors.append(line.strip())
        status = self._proc.wait()
        if not self._stopping and self._why is None:
            if failed:
                self._fail(failed)
            elif stage == "format":  # unshare or sh complained before the format file was read
                self._fail(f"bpftrace could not start: {fmt[0] if fmt else f'exit status {status}'}")
            else:
                first = next((e for e in errors if "ERROR" in e), errors[0] if errors else f"exit status {status}")
                self._fail(f"bpftrace failed: {first}" if stage == "attaching" else f"bpftrace exited: {first}")
        with self._cond:
            self._cond.notify_all()

    def _add(self, line: str) -> None:
        """Keep a report with the fields since() selects by; the rest of it is parsed when since()
        returns it. One run of ./run tests had 148,544 reports, 142,282 of them without a reason
        (in a run of three test files, 99% of those were IPv6 multicast dropped by ip6_mc_input),
        each read by every process of the run that probes, and most of them another lab's: parsed
        whole, each cost a reader 9 µs."""
        head = _header(line)
        if head is None:
            self.notes.append(line)
            return
        time_ns, netns, reason, ethertype = head
        if netns == self.marker_netns or (ethertype == ETH_P_IP and self.reasons.get(reason) == "NO_SOCKET"):
            self._add_marker(line)  # a flush marker, this monitor's or another's, is not kept
            return
        with self._cond:
            self._drops.append((self._next_seq, time_ns, netns, line))
            self._next_seq += 1

    def _add_marker(self, line: str) -> None:
        drop = parse(line, self.reasons)
        if drop is None:
            self.notes.append(line)
            return
        with self._cond:
            if drop.netns == self.marker_netns:
                if drop.matches(proto=17, dport=MARKER_PORT):
                    self._marker_seen[drop.cpu] = max(self._marker_seen.get(drop.cpu, 0), drop.time_ns)
                    self._cond.notify_all()
                return
            if _someone_elses_marker(drop):
                return
            self._drops.append((self._next_seq, drop.time_ns, drop.netns, line))
            self._next_seq += 1

    def _fail(self, why: str) -> None:
        self._why = why
        self._settled.set()


def _header(line: str) -> tuple[int, int, int, int] | None:
    """A `D` report's time, namespace, reason number and ethertype (None if it is not one of the program's)."""
    if not line.startswith("D ") or line.count(" ") != 9 + RAW_WORDS:
        return None
    fields = line.split(" ", 8)  # D nsecs cpu netns ifindex by reason ethertype ...
    try:
        return int(fields[1]), int(fields[3]), int(fields[6]), int(fields[7])
    except ValueError:
        return None


def _someone_elses_marker(drop: Drop) -> bool:
    """Another process's flush() marker (each monitor sees every monitor's markers)."""
    return drop.matches(proto=17, src="127.0.0.1", dst="127.0.0.1", dport=MARKER_PORT) and drop.reason == "NO_SOCKET"


def _home_netns() -> int:
    """An fd of a namespace no lab lives in: the sandbox's own, else the process's (its main thread's)."""
    box = sandbox.current()
    if box is not None:
        return os.dup(box.home)
    return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _host_namespaces(home: int) -> set[int]:
    """Inodes of the host's network namespace as far as this process can tell, and of *home* (no lab lives in any)."""
    found = {os.fstat(home).st_ino}
    box = sandbox.current()
    if box is not None:
        found.add(os.fstat(box.outside[0]).st_ino)
    try:
        found.add(os.stat("/proc/1/ns/net").st_ino)
    except OSError:
        pass  # pid 1 may be out of reach (another PID namespace, or an LSM)
    return found


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _marker_socket() -> tuple[socket.socket, int]:
    """A UDP socket in a new network namespace of our own with lo up, and that namespace's inode.

    The namespace is made by the calling thread (unshare, then back with setns)
    and lives as long as the socket: flush() markers die there, in nobody's lab.
    """
    home = linux.netns_fd()
    try:
        linux.unshare(linux.CLONE_NEWNET)
        try:
            inode = os.stat("/proc/thread-self/ns/net").st_ino
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
                ifreq = fcntl.ioctl(ctl, SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0))
                flags = struct.unpack("16sh22x", ifreq)[1]
                fcntl.ioctl(ctl, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.bind(("127.0.0.1", 0))
        finally:
            linux.setns(home)
    finally:
        os.close(home)
    return sock, inode


def off(why: str) -> DropMonitor:
    """A monitor that never starts: probes go without the kernel's drop reasons, for *why*."""
    quiet = DropMonitor()
    quiet._fail(why)
    return quiet
