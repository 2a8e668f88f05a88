"""`nslab why` on the machine as it is: its namespaces adopted, read and probed.

The namespaces are opened before nslab enters its private sandbox: every
entry of /run/netns, the namespace nslab runs in (as `host`), and any given
by PID (`/proc/PID/ns/net`, named `pidPID`). Inside the sandbox they are
adopted into a Lab under those names (bind mounts in the sandbox's own
/run/netns, gone with the process), so nothing is created on the machine;
the probe changes what any ping changes (neighbour entries), and what it
left unresolved is given back (`unresolved_given_back`).
"""

from __future__ import annotations

import atexit
import fcntl
import ipaddress
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from nslab.advice.trials import Probe
from nslab.kernel import linux
from nslab.lab.live import Lab
from nslab.model.topology import LabError, check_nsname

NETNS_DIR = "/run/netns"
HOST = "host"
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)


class WhyError(Exception):
    """Bad input or an unusable namespace: one line naming the argument and the fix."""


@dataclass
class Machine:
    """The namespaces of this machine, opened (not changed): name -> fd, and how
    a command is typed in each from the machine's own namespace."""

    fds: dict[str, int] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    _inodes: dict[int, str] = field(default_factory=dict)

    def add(self, name: str, fd: int, prefix: str) -> str:
        """Keep *fd* as *name*, unless the namespace is known already (then that name)."""
        inode = os.fstat(fd).st_ino
        if inode in self._inodes:
            os.close(fd)
            return self._inodes[inode]
        self.fds[name], self.prefixes[name], self._inodes[inode] = fd, prefix, name
        return name

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def open_machine(specs: list[str]) -> tuple[Machine, list[str]]:
    """Open the host, /run/netns and each PID among *specs*; returns the machine
    and each spec's namespace name (None for an address)."""
    machine = Machine()
    machine.add(HOST, os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC), "")
    for name in sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []:
        fd = _open_netns(os.path.join(NETNS_DIR, name))
        if fd is None:
            continue
        if name == HOST or not _valid_name(name):
            machine.skipped.append(name)
            os.close(fd)
            continue
        machine.add(name, fd, f"ip netns exec {name} ")
    names = [_spec(machine, spec) for spec in specs]
    return machine, names


def _spec(machine: Machine, spec: str) -> str:
    if spec.isdigit():
        fd = _open_netns(f"/proc/{spec}/ns/net")
        if fd is None:
            raise WhyError(f"no network namespace for PID {spec} (is the process running? /proc/{spec}/ns/net cannot be opened)")
        return machine.add(f"pid{spec}", fd, f"nsenter -t {spec} -n ")
    if spec in machine.fds:
        return spec
    known = ", ".join([HOST, *sorted(n for n in machine.fds if n != HOST)])
    raise WhyError(f"no namespace {spec!r}: give a name from `ip netns` ({known}), {HOST!r} for this one, or a PID")


def _open_netns(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if fcntl.ioctl(fd, NS_GET_NSTYPE) == linux.CLONE_NEWNET:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _valid_name(name: str) -> bool:
    try:
        check_nsname(name, "name")
    except LabError:
        return False
    return True


def adopt(machine: Machine, *, timeout: float, drop_reasons: bool = True) -> Lab:
    """A lab in nslab's private sandbox holding every opened namespace, its model read back."""
    monitor = None
    if drop_reasons:  # the host's namespace is one of this lab's: its drops are read too
        from nslab.kernel.drops import DropMonitor, shared

        monitor = shared.join(host=True) or DropMonitor(host=True).start()
        atexit.register(monitor.stop)
    lab = Lab(timeout=timeout, drop_reasons=drop_reasons, drops=monitor).open()
    for name, fd in machine.fds.items():
        lab.adopt_namespace(name, f"/proc/self/fd/{fd}")
    machine.close()
    lab.read_back()  # adopts whatever the kernel holds (lab/observed.py)
    return lab


@contextmanager
def unresolved_given_back(lab: Lab) -> Iterator[None]:
    """Around a probe of the machine's namespaces: the neighbour entries it started and left
    unresolved (INCOMPLETE or FAILED) are deleted after it, as if it never asked.

    An entry still INCOMPLETE holds the next packets to its address until its last solicitation
    goes unanswered, then fails them (ICMP host unreachable): a learner who applied the verified
    fix at once saw the fix fail for up to the kernel's retries (3 s), though a fix is verified on
    a copy whose neighbours are forgotten first (nslab.advice.trials). Entries that were there
    before the probe are left as they are."""
    held = {ns.name: {(n.index, n.dst) for n in lab.kernel.learnt_neighbours(ns.handle)} for ns in lab.namespaces}
    try:
        yield
    finally:
        for ns in lab.namespaces:
            started = [
                n for n in lab.kernel.learnt_neighbours(ns.handle) if n.state in ("INCOMPLETE", "FAILED") and (n.index, n.dst) not in held.get(ns.name, ())
            ]
            lab.kernel.forget_neighbours(ns.handle, started)


def address_of(lab: Lab, name: str, src: str) -> str:
    """The address of namespace *name* to probe from *src*: one *src* has a route to, else the first;
    IPv4 first, else a global IPv6 one."""
    held = [a for a in lab.ns(name).addresses() if not ipaddress.ip_address(a.ip).is_loopback and a.scope == "universe"]
    addrs = [a.ip for a in held if a.version == 4] or [a.ip for a in held if a.version == 6]
    if not addrs:
        raise WhyError(f"DST: namespace {name!r} has no IPv4 or global IPv6 address besides loopback; give an address instead")
    sender = lab.ns(src)
    return next((ip for ip in addrs if sender.route_get(ip).found), addrs[0])


def probe_of(src: str, dst: str, port: int | None) -> Probe:
    return Probe("tcp" if port else "ping", src, dst, port)


def is_address(text: str) -> bool:
    """An IPv4 or IPv6 address (a link-local one with its interface: `fe80::1%eth0`)."""
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True
