"""A live lab: the model built in the kernel, changed step by step, probed.

    with Lab(topology) as lab:
        assert lab.ns("ns1").ping("10.0.0.2").replied

Every step mirrors an ip(8) command, is validated by the model before the
kernel sees it, and is recorded, so `lab.topology` is always the lab that was
really built (for diagrams, `ip` command listings and explanations).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from nslab.kernel import limits, process, sandbox
from nslab.kernel.handle import KernelError
from nslab.kernel.netlink import Change, Kernel, NsHandle
from nslab.lab.netns import Netns
from nslab.lab.processes import CommandFailed
from nslab.model import plan
from nslab.model.topology import LabError, Namespace, Topology, check_nsname

if TYPE_CHECKING:
    from nslab.diagnosis.reads import View
    from nslab.kernel.drops import DropMonitor
    from nslab.kernel.process import Process
    from nslab.lab.edits import Edit
    from nslab.lab.observed import Snapshot
    from nslab.probes.result import Result


class Lab:
    """Namespaces, links, addresses and routes in the run's sandbox; removed on close."""

    def __init__(
        self, topology: Topology | None = None, *, timeout: float = 1.0, drop_reasons: bool = True, drops: DropMonitor | None = None, isolated: bool = True
    ):
        self._topology = Topology()
        self.timeout = timeout  # default deadline of probes the evidence cannot settle earlier
        self.drop_reasons = drop_reasons  # False: probes go without the kernel's drop reasons (no bpftrace: a second sooner)
        # Whose drop reasons the probes read: None, this process's own bpftrace (nslab.kernel.drops.monitor(),
        # started when the lab opens); else the monitor given (a grader's share of its run's, or drops.off(why)).
        self.drops = drops
        # False: the process stays in its network namespace (sandbox.enter(network=False)), for a lab that only
        # adopts namespaces and is given its drop monitor (its own would send its flush markers there).
        self.isolated = isolated
        self.settle_early = True  # False: every failed probe waits out its deadline (the ground truth)
        self.probes: list[Result] = []
        self._spec = topology
        self._kernel: Kernel | None = None
        self._ns: dict[str, Netns] = {}
        self._processes: list[Process] = []

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def open(self) -> "Lab":
        if self._kernel is None:
            self._kernel = Kernel(sandbox.enter(network=self.isolated))
            if self.drop_reasons and self.drops is None:
                # The kernel's drop reasons: bpftrace attaches while the lab is built (its
                # child lets go of its copy of /run/netns, so it pins no lab namespace).
                from nslab.kernel import drops

                drops.monitor()
            if self._spec is not None:
                try:
                    self.build(self._spec)
                except BaseException:
                    self.close()  # what was built half-way goes now, not when the process ends
                    raise
                wait_ready(self)  # a first probe must not meet a link linkwatch has not yet made UP (its queue drops)
        return self

    @property
    def kernel(self) -> Kernel:
        if self._kernel is None:
            self.open()
        assert self._kernel is not None, "Lab.open() made it"
        return self._kernel

    def close(self) -> None:
        """Stop processes, close sockets, delete namespaces and wait until they are gone.

        Safe to call twice; each step runs even if an earlier one failed.
        """
        if self._kernel is None:
            return
        errors: list[BaseException] = []
        for proc in self._processes:
            try:
                proc.stop()
            except Exception as exc:  # keep tearing down
                errors.append(exc)
        self._processes.clear()
        try:
            _close_all(list(self._ns.values()))
        except Exception as exc:
            errors.append(exc)
        try:
            self._kernel.remove_namespaces([ns.handle for ns in self._ns.values()])
        except Exception as exc:
            errors.append(exc)
        self._ns.clear()
        self._kernel.close()
        self._kernel = None
        if errors:
            raise errors[0]

    # -- building ------------------------------------------------------------
    def build(self, topology: Topology) -> "Lab":
        """Add a whole topology at once, the fast way: the build plan's steps
        (nslab/model/plan.py, the very steps `nslab show` prints), each veth
        born with both ends in their namespaces, each phase sent to each
        namespace in one write (a bounded number of round trips per namespace)."""
        merged = topology if not self._ns and not self.topology.namespaces else self.topology.replace(  # an adopted one stays so
            namespaces=self.topology.namespaces + topology.namespaces,
            veths=self.topology.veths + topology.veths,
            bridges=self.topology.bridges + topology.bridges,
            addresses=self.topology.addresses + topology.addresses,
            routes=self.topology.routes + topology.routes,
        )
        if topology.namespaces:
            # at rest a namespace holds 2 descriptors; a sweep adds a socket to each
            limits.ensure_descriptors(3 * len(topology.namespaces), f"a lab of {len(self._ns) + len(topology.namespaces)} namespaces")
        for phase in plan.plan(topology):
            self._build_phase(phase)
        for spec in topology.namespaces:  # a link set up before its peer can send only once linkwatch says so
            self.kernel.wait_ready(self._ns[spec.name].handle)
        self._topology = merged
        return self

    @property
    def topology(self) -> Topology:
        """The lab as built and changed since (or as read back): changed only by the lab's own methods."""
        return self._topology

    def apply(self, change: Edit) -> None:
        """Validate *change* (nslab/lab/edits.py) against the model, make it in the kernel, record it.

        Every change to a built lab goes through here, so the model stays the lab the kernel holds."""
        after = change.after(self)
        change.make(self)
        self._topology = after

    def read_back(self) -> Snapshot:
        """The model becomes what the kernel holds (nslab/lab/observed.py): for namespaces adopted,
        not built. Returns what was read."""
        from nslab.lab.observed import Snapshot, observe

        snap = Snapshot.read(self)
        self._topology = observe(self, snap)
        return snap

    def _build_phase(self, phase: plan.Phase) -> None:
        """One phase of the plan: each namespace's steps in one write, in the plan's order."""
        k = self.kernel
        by_ns: dict[str, list[plan.Step]] = {}
        for step in phase.steps:
            if isinstance(step, plan.AddNamespace):
                self._ns[step.ns] = Netns(self, step.ns, k.create_namespace(step.ns))
            elif isinstance(step, plan.SetSysctl):
                k.set_sysctl(self._ns[step.ns].handle, step.key, step.value)
            else:
                by_ns.setdefault(step.route.ns if isinstance(step, plan.AddRoute) else step.ns, []).append(step)
        for name, steps in by_ns.items():
            h = self._ns[name].handle
            if phase.name in ("loopback", "up"):
                k.links_up(h, [step.dev for step in steps if isinstance(step, plan.LinkUp)])
            else:
                k.apply(h, [self._change(h, step) for step in steps])

    def _change(self, h: NsHandle, step: plan.Step) -> Change:
        k = self.kernel
        match step:
            case plan.AddBridge(_, name):
                return k.bridge(h, name)
            case plan.AddVeth(_, name, peer_ns, peer):
                return k.veth(h, name, self._ns[peer_ns].handle, peer)
            case plan.SetMaster(_, dev, master):
                return k.link(h, dev, master=master)
            case plan.AddAddress(_, dev, cidr):
                return k.address(h, dev, cidr)
            case plan.AddRoute(route):
                return k.route(h, route)
            case _:
                raise TypeError(f"not a build step: {step!r}")

    def add_namespace(self, name: str, *, lo_up: bool = False, sysctls: dict[str, Any] | None = None) -> "Netns":
        """`ip netns add NAME` (lo starts down, as the kernel leaves it)."""
        spec = Namespace(name, lo_up=lo_up, sysctls=sysctls)
        self.build(Topology([spec]))
        return self._ns[name]

    def adopt_namespace(self, name: str, source: str) -> "Netns":
        """Name an existing namespace (e.g. `/proc/PID/ns/net` of a running
        process) in this lab so it can be changed and probed like the others.

        Its links are not in the lab's model (the kernel reports them); when the
        lab closes, the name is removed, and the namespace dies with its last
        holder (stop the process first, e.g. by spawning it with `Netns.spawn`).
        """
        check_nsname(name, "name")
        topo = self.topology.replace(namespaces=self.topology.namespaces + (Namespace(name),))
        self._ns[name] = Netns(self, name, self.kernel.adopt_namespace(name, source))
        self._topology = topo
        return self._ns[name]

    def delete_namespace(self, name: str) -> None:
        """`ip netns del NAME`: returns once the kernel has destroyed it (and its links with it)."""
        ns = self.ns(name)
        ns.probing.close()
        self.kernel.remove_namespaces([ns.handle], flush_links=True)
        del self._ns[name]
        topo = self.topology
        gone = {v for v in topo.veths if name in (v.ns, v.peer_ns)}
        ends = {(ns, dev) for v in gone for ns, dev, _ in v.ends()}
        left = Topology(
            [n for n in topo.namespaces if n.name != name],
            [v for v in topo.veths if v not in gone],
            [b for b in topo.bridges if b.ns != name],
            [a for a in topo.addresses if a.ns != name and (a.ns, a.dev) not in ends],
        )
        self._topology = left.with_routes_that_survive(r for r in topo.routes if r.ns != name)

    def ns(self, name: str) -> "Netns":
        try:
            return self._ns[name]
        except KeyError:
            raise LabError("ns", f"no namespace {name!r} in this lab; it has {sorted(self._ns)}") from None

    @property
    def namespaces(self) -> list["Netns"]:
        return list(self._ns.values())

    def owner_of(self, address: str) -> "Netns | None":
        """The lab namespace holding *address* on one of its interfaces, per the model."""
        for a in self.topology.addresses:
            if str(a.interface.ip) == address:
                return self._ns.get(a.ns)
        return None

    def keep_reads(self) -> None:
        """From now on, what probes read of the lab's links, addresses, routes and rules is kept
        until the kernel announces a change (nslab/kernel/kept.py): for a lab probed many times and
        changed seldom, such as a graded submission's. Costs a netlink socket per namespace."""
        self.kernel.keep_reads(ns.handle for ns in self._ns.values())

    def view(self) -> View:
        """What a probe's diagnosis may see of this lab: read-only."""
        from nslab.diagnosis.reads import Space, View

        spaces = {name: Space(name, ns.handle, ns.watcher, ns.inode) for name, ns in self._ns.items()}
        return View(self.topology, self.kernel, spaces, self.settle_early, self.drop_reasons, self.drops)

    def track(self, proc: Process) -> Process:
        """Stop *proc* (by its PID) when the lab closes."""
        self._processes.append(proc)
        return proc


def _close_all(spaces: list[Netns]) -> None:
    """Close every socket the lab holds in its namespaces, netlink first.

    A namespace dies when its last reference goes. A netlink socket gives its
    reference back one RCU grace period after close(), and closing a packet
    socket waits for a grace period: closed one after the other, that is a
    grace period per namespace. Netlink sockets first, then the namespaces
    that hold packet sockets (captures a probe opened, ARP probes) from a few
    threads at a time, so the waits overlap; the rest close at once."""
    for ns in spaces:
        ns.handle.close_socket()
    slow = [ns for ns in spaces if ns.probing.slow_to_close]
    for ns in spaces:
        if ns not in slow:
            ns.probing.close()
    if len(slow) < 2:
        for ns in slow:
            ns.probing.close()
        return
    errors: list[BaseException] = []

    def close(group: list[Netns]) -> None:
        for ns in group:
            try:
                ns.probing.close()
            except BaseException as exc:  # reported below, after every namespace had its turn
                errors.append(exc)

    width = min(len(slow), CLOSING_THREADS)
    threads = [threading.Thread(target=close, args=(slow[i::width],), name=f"nslab-close-{i}") for i in range(width)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


CLOSING_THREADS = 32  # packet sockets closed at once (each close waits for an RCU grace period)


__all__ = ["CommandFailed", "Lab", "Netns"]


def wait_ready(lab: Lab, timeout: float = 1.0) -> None:
    """Wait until the kernel has completed, in every namespace of *lab*, what it completes a
    moment after a change (a copy just built, a trial's or a student's `ip` commands):
    - a link up with carrier can send: its transmit queue stays 'noop' (dropping) until
      linkwatch makes its operstate UP;
    - an IPv6 address without DAD (`nodad`, or a link-local where accept_dad is off) is usable:
      addrconf's workqueue completes it under the RTNL lock, so a busy machine can hold it
      for a while after `ip addr add` returned or the link came up (Kernel.wait_ipv6_usable).
    Past *timeout* the probe goes on, and shows what the link or address does."""
    deadline = time.monotonic() + timeout

    def active() -> bool:
        return all(link.operstate in ("UP", "UNKNOWN") for ns in lab.namespaces for link in lab.kernel.links(ns.handle) if link.up and link.carrier)

    try:
        process.wait_until(active, timeout, "links up with carrier are operationally UP")
        for ns in lab.namespaces:
            lab.kernel.wait_ipv6_usable(ns.handle, max(0.0, deadline - time.monotonic()))
    except (TimeoutError, KernelError):
        pass
