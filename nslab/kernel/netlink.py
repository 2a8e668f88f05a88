"""Applies a lab to the kernel over netlink (pyroute2), reads it back, tears it down.

The only module that speaks netlink: RTM_*, IFLA_*, IFA_* and NUD_* stay
here; everything it returns is in ip(8)'s words (nslab/state.py).

pyroute2 objects are bound to the thread that made them, and a netlink socket
to the namespace it was opened in, so each lab namespace gets its own IPRoute,
opened by this thread after a setns(2) into it (no helper process per socket).
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import rt_proto, rt_scope, rt_type
from pyroute2.netlink.rtnl.ndmsg import NUD_NAMES

from nslab.kernel import linux
from nslab.kernel.sandbox import Sandbox
from nslab.kernel.state import AddressState, FdbEntry, LinkState, NeighbourState, RouteLookup, RouteState
from nslab.model.topology import Route

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NLMSG_HDRLEN, NLMSG_ERROR, NLMSG_DONE = 16, 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
RTM_DELNEIGH, RTM_GETNEIGH, NDA_DST = 29, 30, 1
RTNH_F_ONLINK = 0x4
RTNH_F_LINKDOWN = 0x10
IFA_F_NODAD = 0x2
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTM_NEWNSID, RTM_DELNSID = 88, 89
RTNLGRP_NSID = 28
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
NETNSA_NSID = 1


class KernelError(RuntimeError):
    """The kernel refused a step; says which `ip` command and why, in one line."""

    def __init__(self, command: str, err: int, detail: str = ""):
        self.command = command
        self.errno = err
        name = errno_mod.errorcode.get(err, str(err))
        super().__init__(f"{command}: {os.strerror(err)} ({name}){'; ' + detail if detail else ''}")


@dataclass
class NsHandle:
    """One lab namespace as the kernel holds it: an fd, a bind mount, a netlink socket."""

    name: str
    fd: int
    path: str
    nl: IPRoute
    nsid: int
    _index: dict[str, int] = field(default_factory=dict)
    inactive: set[str] = field(default_factory=set)  # set up while without carrier

    def index(self, dev: str) -> int:
        if dev not in self._index:
            found = self.nl.link_lookup(ifname=dev)
            if not found:
                raise KernelError(f"ip -n {self.name} link show {dev}", errno_mod.ENODEV, f"no interface {dev!r} in {self.name!r}")
            self._index[dev] = found[0]
        return self._index[dev]

    def forget(self, dev: str) -> None:
        self._index.pop(dev, None)


class Kernel:
    """Netlink for one lab: a control socket in the sandbox, one per namespace."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.control = IPRoute(groups=0)
        # Namespace deaths are announced as RTM_DELNSID to namespaces holding an id for them.
        self._nsid_events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self._nsid_events.bind((0, 0))
        self._nsid_events.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_NSID)

    def close(self) -> None:
        self.control.close()
        self._nsid_events.close()

    # -- namespaces --------------------------------------------------------
    def create_namespace(self, name: str) -> NsHandle:
        """`ip netns add NAME`, inside the sandbox's private /run/netns."""
        path = os.path.join(self.sandbox.netns_dir, name)
        if os.path.exists(path):
            raise KernelError(f"ip netns add {name}", errno_mod.EEXIST, f"namespace {name!r} already exists in this lab")
        prev = linux.netns_fd()
        try:
            linux.unshare(linux.CLONE_NEWNET)
            fd = linux.netns_fd()
            open(path, "w").close()
            linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)
            nl = IPRoute(groups=0)
        finally:
            linux.setns(prev)
            os.close(prev)
        return NsHandle(name, fd, path, nl, self._nsid(fd))

    def _nsid(self, fd: int) -> int:
        """The sandbox's id for a namespace (assigned if it has none), whose
        RTM_DELNSID tells us when the namespace is gone."""
        try:
            self.control.set_netnsid(fd=fd)
        except NetlinkError as exc:
            if exc.code != errno_mod.EEXIST:
                raise
        return self.control.get_netnsid(fd=fd)["nsid"]

    def adopt_namespace(self, name: str, source: str) -> NsHandle:
        """Give an existing namespace (`/proc/PID/ns/net`, a bind mount) a name in
        this lab, as `ln -s /proc/PID/ns/net /var/run/netns/NAME` does for `ip netns`."""
        path = os.path.join(self.sandbox.netns_dir, name)
        if os.path.exists(path):
            raise KernelError(f"ip netns attach {name} {source}", errno_mod.EEXIST, f"namespace {name!r} already exists in this lab")
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        mounted = False
        try:
            open(path, "w").close()
            linux.mount(source, path, None, linux.MS_BIND)
            mounted = True
            with linux.in_netns(fd):
                nl = IPRoute(groups=0)
            return NsHandle(name, fd, path, nl, self._nsid(fd))
        except BaseException:
            if mounted:
                linux.umount(path)
            if os.path.exists(path):
                os.unlink(path)
            os.close(fd)
            raise

    def remove_namespaces(self, handles: list[NsHandle], *, flush_links: bool = False, timeout: float = 5.0) -> None:
        """`ip netns del` for each, then wait until the kernel has unhashed them.

        The kernel destroys a namespace's devices a moment after it unhashes
        the namespace itself; with *flush_links* the links are deleted first,
        synchronously, so a veth peer left in a surviving namespace is gone
        when this returns (read back to confirm). Raises if a namespace
        outlives *timeout*: something (a socket, a process) still holds it,
        which is a leak worth a red test.
        """
        if flush_links:
            for h in handles:
                self._flush_links(h)
        pending = {h.nsid: h.name for h in handles}
        for h in handles:
            h.nl.close()
            linux.umount(h.path)
            os.unlink(h.path)
            os.close(h.fd)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._nsid_events], [], [], left)[0]:
                raise KernelError(
                    "ip netns del " + " ".join(sorted(pending.values())),
                    errno_mod.EBUSY,
                    f"still alive after {timeout:.0f} s: a socket or process still holds it",
                )
            for typ, nsid in _nsid_messages(self._nsid_events.recv(65536)):
                if typ == RTM_DELNSID:
                    pending.pop(nsid, None)

    def _flush_links(self, ns: NsHandle) -> None:
        for link in self.links(ns):
            if link.kind != "loopback":
                try:
                    ns.nl.link("del", index=link.index)
                except NetlinkError as exc:
                    if exc.code != errno_mod.ENODEV:  # a veth peer deleted with its other end
                        raise KernelError(f"ip -n {ns.name} link del {link.name}", exc.code) from None
        left = [link.name for link in self.links(ns) if link.kind != "loopback"]
        if left:
            raise KernelError(f"ip -n {ns.name} link flush", errno_mod.EBUSY, f"still there after delete: {left}")

    # -- links -------------------------------------------------------------
    def add_veth(self, ns: NsHandle, name: str, peer_ns: NsHandle, peer: str) -> None:
        """`ip link add NAME netns NS type veth peer name PEER netns PEER_NS`: both
        ends are born in place, which is far cheaper than moving them later."""
        cmd = f"ip -n {ns.name} link add {name} type veth peer name {peer} netns {peer_ns.name}"
        with _explained(cmd):
            self.control.link("add", ifname=name, kind="veth", net_ns_fd=ns.fd, peer={"ifname": peer, "net_ns_fd": peer_ns.fd})

    def add_bridge(self, ns: NsHandle, name: str) -> None:
        with _explained(f"ip -n {ns.name} link add {name} type bridge"):
            ns.nl.link("add", ifname=name, kind="bridge")

    def set_link(
        self,
        ns: NsHandle,
        dev: str,
        *,
        up: bool | None = None,
        master: str | None = None,
        nomaster: bool = False,
        netns: NsHandle | None = None,
        name: str | None = None,
    ) -> None:
        """`ip link set DEV [up|down] [master BR|nomaster] [netns NS] [name NEW]`."""
        index = ns.index(dev)
        words = [f"ip -n {ns.name} link set {dev}"]
        attrs: dict[str, object] = {}
        if name is not None:
            words.append(f"name {name}")
            attrs["ifname"] = name
        if master is not None:
            words.append(f"master {master}")
            attrs["master"] = ns.index(master)
        if nomaster:
            words.append("nomaster")
            attrs["master"] = 0
        if netns is not None:
            words.append(f"netns {netns.name}")
            attrs["net_ns_fd"] = netns.fd
        if up is not None:
            words.append("up" if up else "down")
            attrs["state"] = "up" if up else "down"
        with _explained(" ".join(words)):
            ns.nl.link("set", index=index, **attrs)
        if up and netns is None:
            (m,) = ns.nl.link("get", index=index)
            if not m["flags"] & IFF_LOWER_UP:
                ns.inactive.add(name or dev)  # its queue waits for carrier: see wait_ready
        if name is not None or netns is not None:
            ns.forget(dev)

    def wait_ready(self, ns: NsHandle, timeout: float = 5.0) -> None:
        """Return once every link here that was set up without carrier, and has
        carrier now, can send. Such a link's transmit queue stays 'noop' (which
        drops) until the kernel's linkwatch activates it, in the same step that
        makes its operstate UP (an urgent event: milliseconds). A link set up
        with carrier was activated at once and needs no wait (its operstate may
        lag for a second, harmlessly). Read back, not assumed."""
        deadline = time.monotonic() + timeout
        while ns.inactive:
            links = {link.name: link for link in self.links(ns)}
            for name in list(ns.inactive):
                link = links.get(name)
                if link is None or not link.up or (link.carrier and link.operstate == "UP"):
                    ns.inactive.discard(name)
            waiting = [n for n in ns.inactive if links[n].carrier]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise KernelError(f"ip -n {ns.name} link show {' '.join(waiting)}", errno_mod.ETIMEDOUT, "has carrier but is not yet operationally UP")
            time.sleep(0.0005)

    def delete_link(self, ns: NsHandle, dev: str) -> None:
        with _explained(f"ip -n {ns.name} link del {dev}"):
            ns.nl.link("del", index=ns.index(dev))
        ns.forget(dev)

    # -- addresses and routes ----------------------------------------------
    def add_address(self, ns: NsHandle, dev: str, cidr: str, *, delete: bool = False) -> None:
        iface = ipaddress.ip_interface(cidr)
        verb = "del" if delete else "add"
        extra = {"flags": IFA_F_NODAD} if iface.version == 6 and not delete else {}
        with _explained(f"ip -n {ns.name} addr {verb} {cidr} dev {dev}"):
            ns.nl.addr(verb, index=ns.index(dev), address=str(iface.ip), prefixlen=iface.network.prefixlen, **extra)

    def add_route(self, ns: NsHandle, route: Route, *, delete: bool = False) -> None:
        verb = "del" if delete else "add"
        net = route.network
        attrs: dict[str, object] = {
            "dst": str(net.network_address),
            "dst_len": net.prefixlen,
            "family": socket.AF_INET6 if net.version == 6 else socket.AF_INET,
            "proto": RTPROT_BOOT,  # what `ip route add` sets (pyroute2 would say 'static')
        }
        words = [f"ip -n {ns.name} route {verb} {route.dst}"]
        if route.via is not None:
            attrs["gateway"] = route.via
            words.append(f"via {route.via}")
        if route.dev is not None:
            attrs["oif"] = ns.index(route.dev)
            words.append(f"dev {route.dev}")
        if route.onlink:
            attrs["flags"] = RTNH_F_ONLINK
            words.append("onlink")
        with _explained(" ".join(words)):
            ns.nl.route(verb, **attrs)

    # -- sysctls -------------------------------------------------------------
    def set_sysctl(self, ns: NsHandle, key: str, value: str) -> None:
        """`ip netns exec NS sysctl -w KEY=VALUE`, without a process: /proc/sys follows the thread."""
        with linux.in_netns(ns.fd), open(_sysctl_path(key), "w") as f:
            f.write(value)

    def get_sysctl(self, ns: NsHandle, key: str) -> str:
        with linux.in_netns(ns.fd), open(_sysctl_path(key)) as f:
            return f.read().strip()

    # -- reading back ----------------------------------------------------------
    def links(self, ns: NsHandle) -> list[LinkState]:
        raw = list(ns.nl.get_links())
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in raw}
        out = []
        for m in raw:
            info = m.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            if kind is None and m.get_attr("IFLA_IFNAME") == "lo":
                kind = "loopback"
            master = m.get_attr("IFLA_MASTER")
            out.append(
                LinkState(
                    name=m.get_attr("IFLA_IFNAME"),
                    index=m["index"],
                    kind=kind or "unknown",
                    up=bool(m["flags"] & IFF_UP),
                    carrier=bool(m["flags"] & IFF_LOWER_UP),
                    mac=m.get_attr("IFLA_ADDRESS") or "",
                    mtu=m.get_attr("IFLA_MTU") or 0,
                    master=names.get(master) if master else None,
                    peer_index=m.get_attr("IFLA_LINK") if kind == "veth" else None,
                    peer_netnsid=m.get_attr("IFLA_LINK_NETNSID") if kind == "veth" else None,
                    operstate=m.get_attr("IFLA_OPERSTATE") or "",
                )
            )
        for link in out:
            ns._index[link.name] = link.index
        return out

    def sandbox_link_names(self) -> list[str]:
        """The interfaces of the sandbox's own namespace (only lo, unless something leaked)."""
        return sorted(m.get_attr("IFLA_IFNAME") for m in self.control.get_links())

    def names(self, ns: NsHandle) -> dict[int, str]:
        """ifindex -> name, from one link dump (pass it on to save dumps)."""
        return {link.index: link.name for link in self.links(ns)}

    def addresses(self, ns: NsHandle, names: dict[int, str] | None = None) -> list[AddressState]:
        names = names if names is not None else self.names(ns)
        return [
            AddressState(
                dev=names.get(m["index"], str(m["index"])),
                cidr=f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}",
                scope=rt_scope.get(m["scope"], str(m["scope"])),
            )
            for m in ns.nl.get_addr()
        ]

    def routes(self, ns: NsHandle, family: int = socket.AF_INET, names: dict[int, str] | None = None) -> list[RouteState]:
        """The main table, as `ip route` shows it."""
        names = names if names is not None else self.names(ns)
        out = []
        for m in ns.nl.get_routes(family=family, table=RT_TABLE_MAIN):
            dst = m.get_attr("RTA_DST")
            out.append(
                RouteState(
                    dst=f"{dst}/{m['dst_len']}" if dst else "default",
                    dev=names.get(m.get_attr("RTA_OIF")),
                    via=m.get_attr("RTA_GATEWAY"),
                    proto=rt_proto.get(m["proto"], str(m["proto"])),
                    scope=rt_scope.get(m["scope"], str(m["scope"])),
                    src=m.get_attr("RTA_PREFSRC"),
                    type=rt_type.get(m["type"], str(m["type"])),
                    onlink=bool(m["flags"] & RTNH_F_ONLINK),
                    linkdown=bool(m["flags"] & RTNH_F_LINKDOWN),
                )
            )
        return out

    def route_get(self, ns: NsHandle, dst: str, src: str | None = None, names: dict[int, str] | None = None) -> RouteLookup:
        """`ip route get DST [from SRC]`: the kernel's own routing decision."""
        attrs: dict[str, object] = {"dst": dst}
        if src is not None:
            attrs["src"] = src
        try:
            (m,) = ns.nl.route("get", **attrs)
        except NetlinkError as exc:
            return RouteLookup(dst=dst, errno=exc.code)
        oif = m.get_attr("RTA_OIF")
        dev = (names if names is not None else self.names(ns)).get(oif) if oif else None
        return RouteLookup(
            dst=dst,
            type=rt_type.get(m["type"], str(m["type"])),
            dev=dev,
            via=m.get_attr("RTA_GATEWAY"),
            src=m.get_attr("RTA_PREFSRC"),
        )

    def neighbours(self, ns: NsHandle, names: dict[int, str] | None = None) -> list[NeighbourState]:
        names = names if names is not None else self.names(ns)
        out = []
        for m in ns.nl.get_neighbours(family=socket.AF_INET):
            state = m["state"]
            label = "/".join(n[4:] for n, v in NUD_NAMES.items() if v and state & v) or "NONE"
            out.append(NeighbourState(m.get_attr("NDA_DST"), names.get(m["ifindex"], "?"), m.get_attr("NDA_LLADDR"), label))
        return out

    def fdb(self, ns: NsHandle) -> list[FdbEntry]:
        """`bridge fdb show`: the bridges' forwarding databases (AF_BRIDGE neighbours)."""
        names = self.names(ns)
        return [
            FdbEntry(
                mac=m.get_attr("NDA_LLADDR"),
                dev=names.get(m["ifindex"], str(m["ifindex"])),
                master=names.get(m.get_attr("NDA_MASTER")) if m.get_attr("NDA_MASTER") else None,
                permanent=bool(m["state"] & (NUD_PERMANENT | NUD_NOARP)),
            )
            for m in ns.nl.get_neighbours(family=socket.AF_BRIDGE)
        ]

    def flush_neighbours(self, ns: NsHandle) -> None:
        """`ip neigh flush all`: forget the learnt IPv4 neighbours (not the permanent ones).

        The kernel's ARP table is one for all namespaces, bounded by
        gc_thresh3 (1024 by default, settable only in the initial namespace):
        a lab that resolves thousands of neighbours within seconds must give
        entries back, or the next resolution fails with ENOBUFS. Like ip(8),
        this sends every RTM_DELNEIGH in one batch on a plain netlink socket
        (a request at a time through pyroute2 costs a millisecond each)."""
        with linux.in_netns(ns.fd):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        with sock:
            doomed = [(index, dst) for index, dst, state in _neighbour_dump(sock) if not state & (NUD_PERMANENT | NUD_NOARP)]
            if not doomed:
                return
            attr = struct.pack("=HH", 8, NDA_DST)
            sock.send(
                b"".join(
                    struct.pack("=IHHII", NLMSG_HDRLEN + 20, RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
                    + struct.pack("=BxxxiHBB", socket.AF_INET, index, 0, 0, 0)
                    + attr
                    + dst
                    for seq, (index, dst) in enumerate(doomed, start=1)
                )
            )
            for err in _acks(sock, len(doomed)):
                if err not in (0, errno_mod.ENOENT):  # ENOENT: gone meanwhile
                    raise KernelError(f"ip -n {ns.name} neigh flush all", err)

    def netnsid(self, ns: NsHandle, other: NsHandle) -> int | None:
        """The id *ns* gives *other* (`ip -n NS netns list-id`), which `ip link`
        shows as a veth's `link-netnsid`; None if it has given it none."""
        nsid = ns.nl.get_netnsid(fd=other.fd)["nsid"]
        return None if nsid is None or nsid < 0 or nsid >= 1 << 31 else nsid  # -1 (s32), or read unsigned


def _neighbour_dump(sock: socket.socket) -> list[tuple[int, bytes, int]]:
    """(ifindex, IPv4 address, NUD state) of each IPv4 neighbour, by RTM_GETNEIGH dump."""
    sock.send(struct.pack("=IHHII", NLMSG_HDRLEN + 12, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + struct.pack("=BxxxiHBB", socket.AF_INET, 0, 0, 0, 0))
    out = []
    while True:
        data = sock.recv(1 << 16)
        off = 0
        while off + NLMSG_HDRLEN <= len(data):
            length, typ = struct.unpack_from("=IH", data, off)
            if typ == NLMSG_DONE:
                return out
            if typ == NLMSG_ERROR:
                raise OSError(-struct.unpack_from("=i", data, off + NLMSG_HDRLEN)[0], "RTM_GETNEIGH dump failed")
            _, index, state, _, _ = struct.unpack_from("=BxxxiHBB", data, off + NLMSG_HDRLEN)
            attr = off + NLMSG_HDRLEN + 12
            while attr + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if atype == NDA_DST and alen == 8:
                    out.append((index, data[attr + 4 : attr + 8], state))
                attr += (alen + 3) & ~3
            off += (length + 3) & ~3


def _acks(sock: socket.socket, count: int) -> list[int]:
    """The errno (0 for success) of each of *count* acknowledged requests."""
    out: list[int] = []
    while len(out) < count:
        data = sock.recv(1 << 16)
        off = 0
        while off + NLMSG_HDRLEN <= len(data):
            length, typ = struct.unpack_from("=IH", data, off)
            if typ == NLMSG_ERROR:
                out.append(-struct.unpack_from("=i", data, off + NLMSG_HDRLEN)[0])
            off += (length + 3) & ~3
    return out


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _nsid_messages(data: bytes) -> list[tuple[int, int | None]]:
    """(type, NETNSA_NSID) of each message in a batch from the nsid group."""
    out, off = [], 0
    while off + 16 <= len(data):
        length, typ = struct.unpack_from("=IH", data, off)
        nsid, attr = None, off + 16 + 4  # nlmsghdr, then a 4-byte rtgenmsg
        while attr + 4 <= off + length:
            alen, atype = struct.unpack_from("=HH", data, attr)
            if atype == NETNSA_NSID:
                nsid = struct.unpack_from("=i", data, attr + 4)[0]
            attr += (alen + 3) & ~3
        out.append((typ, nsid))
        off += (length + 3) & ~3
    return out


class _explained:
    """Turn a NetlinkError into a KernelError that names the `ip` command."""

    def __init__(self, command: str):
        self.command = command

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> bool:
        if isinstance(exc, NetlinkError):
            raise KernelError(self.command, exc.code) from None
        return False
