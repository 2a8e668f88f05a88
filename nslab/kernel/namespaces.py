"""Namespaces of a lab: made, named, adopted, and removed only once the kernel says they are gone.

Part of `Kernel` (nslab/kernel/netlink.py), which mixes it in: it uses the
sandbox, the control socket and the socket that hears namespace deaths.
"""

from __future__ import annotations

import errno as errno_mod
import os
import selectors
import time
from typing import Callable

from nslab.kernel import linux, rtnl
from nslab.kernel.handle import KernelError, NsHandle
from nslab.kernel.kept import KeptReads
from nslab.kernel.neighbour_table import discard_events
from nslab.kernel.rtnl import NetlinkError
from nslab.kernel.sandbox import Sandbox
from nslab.kernel.state import LinkState

EVENT_BYTES = 1024  # receive buffer per awaited namespace death (an event's skb, with room)


class Namespaces:
    """`ip netns add|attach|del`, and the ids the sandbox gives each namespace."""

    sandbox: Sandbox
    control: rtnl.RtnlSocket
    _nsid_events: rtnl.RtnlSocket
    kept: KeptReads | None
    links: Callable[[NsHandle], list[LinkState]]  # the Kernel's read of `ip link`

    def create_namespace(self, name: str) -> NsHandle:
        """`ip netns add NAME`, inside the sandbox's private /run/netns."""
        path = self._netns_path(name, f"ip netns add {name}")
        prev = linux.netns_fd()
        try:
            linux.unshare(linux.CLONE_NEWNET)
            fd = linux.netns_fd()
            open(path, "w").close()
            linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)
            sock = rtnl.RtnlSocket()
        finally:
            linux.setns(prev)
            os.close(prev)
        return self._kept_too(NsHandle(name, fd, path, sock))

    def adopt_namespace(self, name: str, source: str) -> NsHandle:
        """Give an existing namespace (`/proc/PID/ns/net`, a bind mount) a name in
        this lab, as `ln -s /proc/PID/ns/net /var/run/netns/NAME` does for `ip netns`."""
        path = self._netns_path(name, f"ip netns attach {name} {source}")
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        mounted = False
        try:
            open(path, "w").close()
            linux.mount(source, path, None, linux.MS_BIND)
            mounted = True
            with linux.in_netns(fd):
                sock = rtnl.RtnlSocket()
            return self._kept_too(NsHandle(name, fd, path, sock))
        except BaseException:
            if mounted:
                linux.umount(path)
            if os.path.exists(path):
                os.unlink(path)
            os.close(fd)
            raise

    def _kept_too(self, h: NsHandle) -> NsHandle:
        """A namespace joins a lab whose reads are kept: its reads are kept too (see Kernel.keep_reads)."""
        if self.kept is not None:
            self.kept.watch(h)
        return h

    def _netns_path(self, name: str, command: str) -> str:
        path = os.path.join(self.sandbox.netns_dir, name)
        if os.path.exists(path):
            raise KernelError(command, errno_mod.EEXIST, f"namespace {name!r} already exists in this lab")
        return path

    def _nsid(self, fd: int) -> int:
        """The sandbox's id for a namespace (assigned if it has none), whose
        RTM_DELNSID tells us when the namespace is gone. Asked only when the
        namespace is removed: a lab that never removes one (a grader's, which
        ends with its process) gives no id in a namespace it does not own."""
        try:
            self.control.request(rtnl.RTM_NEWNSID, rtnl.rtgenmsg() + rtnl.u32(rtnl.NETNSA_FD, fd) + rtnl.s32(rtnl.NETNSA_NSID, -1))
        except NetlinkError as exc:
            if exc.code != errno_mod.EEXIST:
                raise
        nsid = _nsid_of(self.control, fd)
        if nsid is None:
            raise KernelError("ip netns set", errno_mod.ENOENT, "the kernel assigned no id to a new namespace")
        return nsid

    def netnsid(self, ns: NsHandle, other: NsHandle) -> int | None:
        """The id *ns* gives *other* (`ip -n NS netns list-id`), which `ip link`
        shows as a veth's `link-netnsid`; None if it has given it none."""
        return _nsid_of(ns.rtnl, other.fd)

    def remove_namespaces(self, handles: list[NsHandle], *, flush_links: bool = False, timeout: float = 5.0) -> None:
        """`ip netns del` for each, then wait until the kernel has unhashed them.

        The kernel destroys a namespace's devices a moment after it unhashes
        the namespace itself; with *flush_links* the links are deleted first,
        synchronously, so a veth peer left in a surviving namespace is gone
        when this returns (read back to confirm). Raises if a namespace
        outlives *timeout*: something (a socket, a process) still holds it,
        which is a leak worth a red test.

        The deaths are heard as RTM_DELNSID events; if the kernel announces
        more than the socket can hold (ENOBUFS), the ids the sandbox still has
        are read back instead (one dump), so no size of lab is too large.
        """
        if flush_links:
            for h in handles:
                self._flush_links(h)
        pending = {self._nsid(h.fd): h.name for h in handles}
        events = self._nsid_events
        events.set_receive_buffer(max(1 << 16, EVENT_BYTES * len(pending)))
        events.join(rtnl.RTNLGRP_NSID)
        try:
            for h in handles:
                if self.kept is not None:
                    self.kept.unwatch(h)
                h.release()
            self._await_deaths(pending, timeout)
        finally:
            events.leave(rtnl.RTNLGRP_NSID)
            discard_events(events)  # an id announced dead now may be given to a new namespace later

    def _await_deaths(self, pending: dict[int, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._nsid_events, selectors.EVENT_READ)
            while pending:
                try:
                    for m in self._nsid_events.events():
                        if m.kind == rtnl.RTM_DELNSID and (nsid := m.s32(rtnl.NETNSA_NSID)) is not None:
                            pending.pop(nsid, None)
                except NetlinkError as exc:
                    if exc.code != errno_mod.ENOBUFS:
                        raise
                    alive = self._nsids()  # some events were lost: ask which ids are left
                    for nsid in [n for n in pending if n not in alive]:
                        del pending[nsid]
                    continue
                left = deadline - time.monotonic()
                if pending and (left <= 0 or not selector.select(left)):
                    raise KernelError(
                        "ip netns del " + " ".join(sorted(pending.values())),
                        errno_mod.EBUSY,
                        f"still alive after {timeout:.0f} s: a socket or process still holds it",
                    )

    def _nsids(self) -> set[int]:
        """The ids the sandbox gives the namespaces still alive (`ip netns list-id`)."""
        return {nsid for m in self.control.dump(rtnl.RTM_GETNSID, rtnl.rtgenmsg()) if (nsid := m.s32(rtnl.NETNSA_NSID)) is not None}

    def _flush_links(self, ns: NsHandle) -> None:
        for link in self.links(ns):
            if link.kind != "loopback":
                try:
                    ns.rtnl.request(rtnl.RTM_DELLINK, rtnl.ifinfomsg(link.index))
                except NetlinkError as exc:
                    if exc.code != errno_mod.ENODEV:  # a veth peer deleted with its other end
                        raise KernelError(f"ip -n {ns.name} link del {link.name}", exc.code, exc.message) from None
        left = [link.name for link in self.links(ns) if link.kind != "loopback"]
        if left:
            raise KernelError(f"ip -n {ns.name} link flush", errno_mod.EBUSY, f"still there after delete: {left}")


def _nsid_of(sock: rtnl.RtnlSocket, fd: int) -> int | None:
    """The id the socket's namespace gives the namespace of *fd* (RTM_GETNSID: asks, assigns nothing)."""
    (m,) = sock.request(rtnl.RTM_GETNSID, rtnl.rtgenmsg() + rtnl.u32(rtnl.NETNSA_FD, fd))
    nsid = m.s32(rtnl.NETNSA_NSID)
    return None if nsid is None or nsid < 0 else nsid


nsid_of = _nsid_of  # public: kernel/dump.py names veth peers across namespaces with it
