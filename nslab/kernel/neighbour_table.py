"""The kernel's neighbour table, in bulk: flushed, read, held and dropped a batch at a time.

The ARP table is one for all namespaces, bounded by gc_thresh3; a lab that
resolves thousands of neighbours must give entries back. Part of `Kernel`
(nslab/kernel/netlink.py), which mixes it in.
"""

from __future__ import annotations

import errno as errno_mod
import socket
from dataclasses import dataclass
from typing import Iterable

from nslab.kernel import decode, rtnl
from nslab.kernel.handle import KernelError, NsHandle
from nslab.kernel.rtnl import NetlinkError

_REPLACE = rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE
NTF_PROXY = 0x08  # ndm_flags: a proxy entry


@dataclass(frozen=True)
class Learnt:
    """A neighbour the kernel resolved: on the link with *index*, *dst* is at *mac*."""

    index: int
    dst: str
    mac: str | None
    state: str


class NeighbourTable:
    """`ip neigh flush|show|replace|del`, each as one batch per namespace."""

    _attrs: dict[str, bytes]

    def flush_neighbours(self, ns: NsHandle) -> None:
        """`ip neigh flush all`: forget the learnt IPv4 neighbours (not the permanent ones).

        The kernel's ARP table is one for all namespaces, bounded by
        gc_thresh3 (1024 by default, settable only in the initial namespace):
        a lab that resolves thousands of neighbours within seconds must give
        entries back, or the next resolution fails with ENOBUFS. Like ip(8),
        this sends the RTM_DELNEIGHs in batches."""
        self.take_neighbours(ns)

    def take_neighbours(self, ns: NsHandle) -> list[Learnt]:
        """The learnt IPv4 and IPv6 neighbours (not permanent, not noarp), removed as
        `ip neigh flush all` removes them: one dump per family, one batch of deletes."""
        learnt = self.learnt_neighbours(ns)
        self.forget_neighbours(ns, learnt)
        return learnt

    def learnt_neighbours(self, ns: NsHandle) -> list[Learnt]:
        """The IPv4 and IPv6 neighbours the kernel learnt or is learning (not permanent, not noarp)."""
        return [
            Learnt(m.body["ifindex"], m.ip(rtnl.NDA_DST) or "", m.mac(rtnl.NDA_LLADDR), decode.nud_state(m.body["state"]))
            for family in (socket.AF_INET, socket.AF_INET6)
            for m in ns.rtnl.dump(rtnl.RTM_GETNEIGH, rtnl.ndmsg(family))
            if not m.body["state"] & (rtnl.NUD_PERMANENT | rtnl.NUD_NOARP) and rtnl.NDA_DST in m.attrs
        ]

    def forget_neighbours(self, ns: NsHandle, entries: Iterable[Learnt]) -> None:
        """`ip neigh del DST dev DEV` for each of *entries*, in one batch (already gone: fine)."""
        def family(dst: str) -> int:
            return socket.AF_INET6 if ":" in dst else socket.AF_INET

        doomed = [(rtnl.RTM_DELNEIGH, 0, rtnl.ndmsg(family(n.dst), n.index) + rtnl.ip(rtnl.NDA_DST, n.dst)) for n in entries]
        for err in ns.rtnl.batch(doomed):
            if err is not None and err.code != errno_mod.ENOENT:  # ENOENT: gone meanwhile
                raise KernelError(f"ip -n {ns.name} neigh del", err.code, err.message)

    def proxy_neighbours(self, ns: NsHandle) -> list[tuple[int, str]]:
        """`ip neigh show proxy`: (ifindex, IPv4 address) of each address answered for
        by proxy ARP. Such entries are not in an ordinary dump: the request asks for them."""
        dump = ns.rtnl.dump(rtnl.RTM_GETNEIGH, rtnl.NDMSG.pack(family=socket.AF_INET, flags=NTF_PROXY))
        return [(m.body["ifindex"], m.ip(rtnl.NDA_DST) or "") for m in dump if m.body["flags"] & NTF_PROXY and rtnl.NDA_DST in m.attrs]

    def hold_neighbours(self, ns: NsHandle, index: int, entries: Iterable[tuple[str, str]]) -> None:
        """`ip neigh replace DST lladdr MAC dev DEV nud permanent` for each (DST, MAC)
        on the link with *index*, unacknowledged (only refusals come back).

        Permanent entries do not count against gc_thresh3 (the kernel's garbage
        collector never takes them), so a sweep can hold thousands; it drops
        them again with `drop_neighbours`."""
        head = rtnl.ndmsg(socket.AF_INET, index, rtnl.NUD_PERMANENT)
        requests = [(rtnl.RTM_NEWNEIGH, _REPLACE, head + self._dst_attr(dst) + self._mac_attr(mac)) for dst, mac in entries]
        for _, error in ns.rtnl.quiet(requests)[:1]:
            raise KernelError(f"ip -n {ns.name} neigh replace ... dev {index} nud permanent", error.code, error.message)

    def drop_neighbours(self, ns: NsHandle, index: int, dsts: Iterable[str]) -> None:
        """`ip neigh del DST dev DEV` for each DST on the link with *index* (already gone: fine)."""
        head = rtnl.ndmsg(socket.AF_INET, index)
        for _, error in ns.rtnl.quiet([(rtnl.RTM_DELNEIGH, 0, head + self._dst_attr(dst)) for dst in dsts]):
            if error.code != errno_mod.ENOENT:
                raise KernelError(f"ip -n {ns.name} neigh del ... dev {index}", error.code, error.message)

    def _dst_attr(self, dst: str) -> bytes:
        attr = self._attrs.get(dst)
        if attr is None:
            attr = self._attrs[dst] = rtnl.ip(rtnl.NDA_DST, dst)
        return attr

    def _mac_attr(self, mac: str) -> bytes:
        attr = self._attrs.get(mac)
        if attr is None:
            attr = self._attrs[mac] = rtnl.attr(rtnl.NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
        return attr


def discard_events(sock: rtnl.RtnlSocket) -> None:
    """Read and forget whatever the socket holds (a lost message is forgotten too)."""
    while True:
        try:
            if not sock.events():
                return
        except NetlinkError:
            continue
