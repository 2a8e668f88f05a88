"""A namespace's whole networking state, read from the kernel, in ip(8)'s words.

    state = dump.read(handle)               # one namespace (an NsHandle)
    states = dump.read_all({"a": ha, "b": hb})   # several; veth peers named across them

Links with their kind's options (bridge, bridge port, macvlan, vxlan; a
veth's peer), MTU, flags, master; addresses (IPv4 and IPv6, with their
flags); routes of every type in every table (IPv4 and IPv6); policy rules;
neighbour and proxy entries; the bridges' FDB (a vxlan's remotes included)
and port VLANs: over rtnetlink, each read by name (nslab/kernel/records.py).
Every sysctl under /proc/sys/net as this namespace sees it; the nftables
ruleset (`nft list ruleset`, iptables-nft's included); the TCP and UDP
listeners with their bound address (sock_diag, as `ss -ltn` asks; /proc/net/udp, udp6).

Objects name devices, never ifindexes, so two namespaces' states (an original
and its copy) compare field by field.
"""

from __future__ import annotations

import dataclasses
import errno as errno_mod
import os
import socket
from dataclasses import dataclass
from typing import Any

from nslab.kernel import linux, listeners, nftables, process, records, rtnl
from nslab.kernel.handle import NsHandle
from nslab.kernel.namespaces import nsid_of

Options = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str  # 'veth', 'bridge', 'macvlan', 'vxlan', 'loopback', or 'device' (no kind: a NIC)
    flags: tuple[str, ...]  # as `ip -j link` lists them: 'UP', 'LOWER_UP', 'BROADCAST', ...
    mtu: int
    mac: str
    master: str | None = None
    lower: str | None = None  # the link it sits on (a macvlan's `link DEV`), in this namespace
    peer_index: int | None = None  # a veth's other end, as the kernel names it: its ifindex,
    peer_netnsid: int | None = None  # in the namespace this one knows by this id (None: this one)
    peer: tuple[str, str] | None = None  # (namespace, name) of a veth's other end, where read_all found it
    options: Options = ()  # the kind's options (IFLA_INFO_DATA), e.g. a bridge's stp_state
    port: Options = ()  # a bridge port's options (IFLA_INFO_SLAVE_DATA): state, learning, hairpin, ...
    vlans: tuple[tuple[int, tuple[str, ...]], ...] = ()  # a bridge port's VLANs: (vid, ('pvid', 'untagged'))
    txqlen: int = 0

    @property
    def up(self) -> bool:
        return "UP" in self.flags


@dataclass(frozen=True)
class Address:
    dev: str
    family: int  # 4 or 6
    local: str
    prefixlen: int
    scope: str
    flags: tuple[str, ...] = ()  # 'secondary', 'nodad', 'tentative', 'dadfailed', ...
    peer: str | None = None  # `ip addr add LOCAL peer PEER`
    label: str | None = None
    broadcast: str | None = None

    @property
    def cidr(self) -> str:
        return f"{self.local}/{self.prefixlen}"


@dataclass(frozen=True)
class Nexthop:
    dev: str | None
    gateway: str | None
    weight: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    family: int
    table: int
    type: str  # 'unicast', 'local', 'broadcast', 'blackhole', 'unreachable', 'prohibit', 'throw', ...
    dst: str  # 'default' or a CIDR
    dev: str | None = None
    gateway: str | None = None
    metric: int | None = None
    proto: str = "boot"
    scope: str = "universe"
    prefsrc: str | None = None
    src: str | None = None  # `from SRC/LEN` (IPv6 source routing)
    tos: int = 0
    flags: tuple[str, ...] = ()  # 'onlink', 'linkdown', ...
    nexthops: tuple[Nexthop, ...] = ()
    nhid: int | None = None
    pref: int | None = None  # IPv6 router preference

    @property
    def key(self) -> tuple[object, ...]:
        """What the kernel keeps one route per: family, table, type class, destination, source, TOS, metric."""
        return (self.family, self.table, self.dst, self.src, self.tos, self.metric, self.type if self.table == 255 else None)


@dataclass(frozen=True)
class Rule:
    family: int
    priority: int
    action: str  # 'lookup', 'goto', 'nop', 'blackhole', 'unreachable', 'prohibit'
    table: int = 0
    src: str | None = None  # CIDR
    dst: str | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int = 0
    invert: bool = False  # `not`
    goto: int | None = None
    suppress_prefixlen: int | None = None
    ipproto: int | None = None
    protocol: int | None = None


@dataclass(frozen=True)
class Neighbour:
    family: int
    dst: str
    dev: str
    lladdr: str | None
    state: tuple[str, ...]  # 'PERMANENT', 'REACHABLE', 'STALE', ...
    proxy: bool = False
    router: bool = False


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dev: str
    master: str | None
    state: tuple[str, ...]
    self_: bool = False  # the device's own table (`self`), as a vxlan's remotes
    vlan: int | None = None
    dst: str | None = None  # a vxlan remote


@dataclass(frozen=True)
class Listener:
    proto: str  # 'tcp' or 'udp'
    address: str
    port: int


@dataclass(frozen=True)
class Sysctl:
    key: str  # 'net.ipv4.conf.eth0.rp_filter'
    value: str
    writable: bool


@dataclass(frozen=True)
class NsState:
    """Everything nslab reads of one namespace's networking."""

    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    rules: tuple[Rule, ...]
    neighbours: tuple[Neighbour, ...]
    fdb: tuple[FdbEntry, ...]
    sysctls: tuple[Sysctl, ...]
    ruleset: str
    listeners: tuple[Listener, ...]

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links if link.name == name), None)

    @property
    def link_names(self) -> set[str]:
        return {link.name for link in self.links}

    def sysctl(self, key: str) -> str | None:
        return next((s.value for s in self.sysctls if s.key == key), None)


# -- reading -------------------------------------------------------------------------
def read(h: NsHandle, *, sysctls: bool = True, ruleset: bool = True, listeners: bool = True) -> NsState:
    """The whole state of the namespace of *h* (netlink, /proc/sys/net, nft, /proc/net); the
    slower parts can be left out (empty) by a reader that does not need them."""
    sock = h.rtnl
    link_msgs = sock.dump(rtnl.RTM_GETLINK, rtnl.ifinfomsg() + rtnl.u32(rtnl.IFLA_EXT_MASK, rtnl.RTEXT_FILTER_SKIP_STATS))
    raw = [records.read(records.LINK, m) for m in link_msgs]
    names = {r.body["index"]: r.attrs.get("ifname") or str(r.body["index"]) for r in raw}
    vlans = _vlans(sock, names)
    links = tuple(_link(r, names, vlans.get(r.body["index"], ())) for r in raw)
    addrs = tuple(_address(records.read(records.ADDRESS, m), names) for m in sock.dump(rtnl.RTM_GETADDR, rtnl.ifaddrmsg(socket.AF_UNSPEC, 0, 0)))
    routes = tuple(
        _route(records.read(records.ROUTE, m), names)
        for family in (socket.AF_INET, socket.AF_INET6)
        for m in sock.dump(rtnl.RTM_GETROUTE, rtnl.rtmsg(family))
    )
    rules = tuple(
        _rule(records.read(records.RULE, m))
        for family in (socket.AF_INET, socket.AF_INET6)
        for m in _dump_or_empty(sock, rtnl.RTM_GETRULE, rtnl.rtgenmsg(family))
    )
    neighbours = tuple(
        _neighbour(records.read(records.NEIGHBOUR, m), names, proxy)
        for proxy in (False, True)
        for m in sock.dump(rtnl.RTM_GETNEIGH, rtnl.NDMSG.pack(family=socket.AF_UNSPEC, flags=records.NTF_PROXY if proxy else 0))
        if m.body["family"] in (socket.AF_INET, socket.AF_INET6)
    )
    fdb = tuple(_fdb(records.read(records.NEIGHBOUR, m), names) for m in sock.dump(rtnl.RTM_GETNEIGH, rtnl.ndmsg(socket.AF_BRIDGE)))
    return NsState(
        links,
        addrs,
        routes,
        rules,
        neighbours,
        fdb,
        read_sysctls(h.fd) if sysctls else (),
        read_ruleset(h.fd) if ruleset else "",
        read_listeners(h.fd) if listeners else (),
    )


def read_all(handles: dict[str, NsHandle], **options: bool) -> dict[str, NsState]:
    """The state of each namespace of *handles* (name -> handle), each veth's peer
    named by the namespace that holds it (from the ids the namespaces give each other)."""
    states = {name: read(h, **options) for name, h in handles.items()}
    by_index = {name: {link.index: link.name for link in state.links} for name, state in states.items()}
    out = {}
    for name, state in states.items():
        veths = [link for link in state.links if link.peer_index is not None]
        ids = {nsid_of(handles[name].rtnl, handles[other].fd): other for other in handles if other != name} if veths else {}
        links = []
        for link in state.links:
            where = name if link.peer_netnsid is None else ids.get(link.peer_netnsid)
            peer_name = by_index[where].get(link.peer_index) if where is not None and link.peer_index is not None else None
            links.append(dataclasses.replace(link, peer=(where, peer_name)) if where is not None and peer_name is not None else link)
        out[name] = dataclasses.replace(state, links=tuple(links))
    return out


def _dump_or_empty(sock: rtnl.RtnlSocket, kind: int, payload: bytes) -> list[rtnl.Message]:
    try:
        return sock.dump(kind, payload)
    except rtnl.NetlinkError as exc:
        if exc.code in (errno_mod.EAFNOSUPPORT, errno_mod.EOPNOTSUPP):
            return []  # a family without policy routing in this kernel
        raise


def _vlans(sock: rtnl.RtnlSocket, names: dict[int, str]) -> dict[int, tuple[tuple[int, tuple[str, ...]], ...]]:
    """ifindex -> VLANs of each bridge port (`bridge vlan show`): empty where the bridge filters none."""
    payload = rtnl.ifinfomsg(family=socket.AF_BRIDGE) + rtnl.u32(rtnl.IFLA_EXT_MASK, rtnl.RTEXT_FILTER_BRVLAN)
    out = {}
    for m in _dump_or_empty(sock, rtnl.RTM_GETLINK, payload):
        r = records.read(records.LINK, m)
        found = records.bridge_vlans(r.attrs.get("af_spec", b""))
        if found:
            out[r.body["index"]] = tuple(found)
    return out


def _flags(value: int, table: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    return tuple(name for name, bit in table if value & bit)


def _link(r: records.Record, names: dict[int, str], vlans: tuple[tuple[int, tuple[str, ...]], ...]) -> Link:
    a = r.attrs
    info = a.get("linkinfo", {})
    kind = info.get("kind") or ("loopback" if r.body["flags"] & 0x8 else "device")
    options, port = records.link_options(info)
    if kind == "vxlan" and options.get("link"):
        options["link"] = names.get(options["link"], str(options["link"]))
    lower = a.get("link")
    peer_index = lower if kind == "veth" else None
    if lower is not None:
        lower = names.get(lower) if kind != "veth" and a.get("link_netnsid") is None and lower != r.body["index"] else None
    master = a.get("master")
    return Link(
        name=a.get("ifname") or str(r.body["index"]),
        index=r.body["index"],
        kind=kind,
        flags=_flags(r.body["flags"], records.IFF_FLAGS),
        mtu=a.get("mtu") or 0,
        mac=a.get("address") or "",
        master=names.get(master) if master else None,
        lower=lower,
        peer_index=peer_index,
        peer_netnsid=a.get("link_netnsid") if kind == "veth" else None,
        options=tuple(sorted(options.items())),
        port=tuple(sorted(port.items())),
        vlans=vlans,
        txqlen=a.get("txqlen") or 0,
    )


def _address(r: records.Record, names: dict[int, str]) -> Address:
    a, b = r.attrs, r.body
    local = a.get("local") or a.get("address") or ""
    peer = a.get("address") if a.get("local") and a.get("address") not in (None, a.get("local")) else None
    flags = a.get("flags", b["flags"])
    label = a.get("label")
    dev = names.get(b["index"], str(b["index"]))
    return Address(
        dev=dev,
        family=6 if b["family"] == socket.AF_INET6 else 4,
        local=local,
        prefixlen=b["prefixlen"],
        scope=rtnl.SCOPES.get(b["scope"], str(b["scope"])),
        flags=_flags(flags, records.IFA_FLAGS),
        peer=peer,
        label=label if label not in (None, dev) else None,
        broadcast=a.get("broadcast"),
    )


def _cidr(address: str | None, length: int, family: int) -> str | None:
    if address is None:
        return None if length == 0 else f"{'0.0.0.0' if family == socket.AF_INET else '::'}/{length}"
    return f"{address}/{length}"


def _route(r: records.Record, names: dict[int, str]) -> Route:
    a, b = r.attrs, r.body
    family = b["family"]
    dst = _cidr(a.get("dst"), b["dst_len"], family) if b["dst_len"] or a.get("dst") else "default"
    hops = tuple(
        Nexthop(names.get(hop["index"]), hop.get("gateway"), hop["weight"], _flags(hop["flags"], records.RTNH_FLAGS))
        for hop in records.nexthops(a["multipath"])
    ) if "multipath" in a else ()  # fmt: skip
    oif = a.get("oif")
    return Route(
        family=6 if family == socket.AF_INET6 else 4,
        table=a.get("table", b["table"]),
        type=rtnl.ROUTE_TYPES.get(b["type"], str(b["type"])),
        dst=dst or "default",
        dev=names.get(oif) if oif else None,
        gateway=a.get("gateway"),
        metric=a.get("priority"),
        proto=rtnl.PROTOCOLS.get(b["proto"], str(b["proto"])),
        scope=rtnl.SCOPES.get(b["scope"], str(b["scope"])),
        prefsrc=a.get("prefsrc"),
        src=_cidr(a.get("src"), b["src_len"], family) if b["src_len"] else None,
        tos=b["tos"],
        flags=_flags(b["flags"], records.RTNH_FLAGS),
        nexthops=hops,
        nhid=a.get("nh_id"),
        pref=a.get("pref"),
    )


def _rule(r: records.Record) -> Rule:
    a, b = r.attrs, r.body
    family = b["family"]
    return Rule(
        family=6 if family == socket.AF_INET6 else 4,
        priority=a.get("priority", 0),
        action=records.RULE_ACTIONS.get(b["action"], str(b["action"])),
        table=a.get("table", b["table"]),
        src=_cidr(a.get("src"), b["src_len"], family) if b["src_len"] else None,
        dst=_cidr(a.get("dst"), b["dst_len"], family) if b["dst_len"] else None,
        iif=a.get("iifname"),
        oif=a.get("oifname"),
        fwmark=a.get("fwmark"),
        fwmask=a.get("fwmask"),
        tos=b["tos"],
        invert=bool(b["flags"] & records.FIB_RULE_INVERT),
        goto=a.get("goto"),
        suppress_prefixlen=a.get("suppress_prefixlen") if a.get("suppress_prefixlen") not in (None, 0xFFFFFFFF) else None,
        ipproto=a.get("ipproto"),
        protocol=a.get("protocol"),
    )


def _nud(state: int) -> tuple[str, ...]:
    return tuple(name for name, bit in rtnl.NUD_STATES if state & bit) or ("NONE",)


def _neighbour(r: records.Record, names: dict[int, str], proxy: bool) -> Neighbour:
    a, b = r.attrs, r.body
    return Neighbour(
        family=6 if b["family"] == socket.AF_INET6 else 4,
        dst=a.get("dst") or "",
        dev=names.get(b["ifindex"], str(b["ifindex"])),
        lladdr=a.get("lladdr"),
        state=() if proxy else _nud(b["state"]),
        proxy=proxy,
        router=bool(b["flags"] & records.NTF_ROUTER),
    )


def _fdb(r: records.Record, names: dict[int, str]) -> FdbEntry:
    a, b = r.attrs, r.body
    master = a.get("master")
    return FdbEntry(
        mac=a.get("lladdr") or "",
        dev=names.get(b["ifindex"], str(b["ifindex"])),
        master=names.get(master) if master else None,
        state=_nud(b["state"]),
        self_=bool(b["flags"] & records.NTF_SELF),
        vlan=a.get("vlan"),
        dst=a.get("dst"),
    )


# -- what netlink does not hold ----------------------------------------------------------
SYSCTL_ROOT = "/proc/sys/net"


def read_sysctls(netns_fd: int) -> tuple[Sysctl, ...]:
    """Every readable sysctl under net.* inside the namespace of *netns_fd* (/proc/sys
    follows the reading thread's namespace). About a thousand files: read with bare
    system calls, which halves the time Python's file objects take."""
    out: list[Sysctl] = []
    with linux.in_netns(netns_fd):
        _read_folder(SYSCTL_ROOT, "net", out)
    return tuple(sorted(out, key=lambda s: s.key))


def _read_folder(path: str, key: str, out: list[Sysctl]) -> None:
    with os.scandir(path) as entries:
        for entry in entries:
            name = key + "." + entry.name.replace(".", "/")  # sysctl(8) writes a device 'eth0.1' as 'eth0/1'
            if entry.is_dir(follow_symlinks=False):
                _read_folder(entry.path, name, out)
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
                if not mode & 0o444:
                    continue  # write-only (route.flush)
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    value = _read_all(fd)
                finally:
                    os.close(fd)
            except OSError:
                continue  # readable by mode, refused on read (stable_secret unset)
            out.append(Sysctl(name, value.decode(errors="replace").strip(), bool(mode & 0o200)))


def _read_all(fd: int, first: int = 1023) -> bytes:
    """A sysctl's value. The kernel allocates and zeroes a buffer of the size a read asks for
    (17 pages for 64 KiB), and most handlers answer only a read from offset 0: a short first read,
    then the whole value again from 0 when it filled the buffer. The longest value here is 156
    bytes; a dump of a namespace took 12.5 ms of CPU so, against 18.4 ms reading 64 KiB at once."""
    value = os.read(fd, first)
    return value if len(value) < first else os.pread(fd, 1 << 20, 0)


def read_sysctl(netns_fd: int, key: str) -> str | None:
    """One sysctl inside the namespace of *netns_fd*; None if it cannot be read there."""
    try:
        with linux.in_netns(netns_fd), open(sysctl_path(key)) as f:
            return f.read().strip()
    except OSError:
        return None


def sysctl_path(key: str) -> str:
    """/proc/sys path of *key* ('net.ipv4.conf.eth0/1.rp_filter' names a device 'eth0.1' as sysctl(8) does)."""
    return "/proc/sys/" + key.replace("/", "\0").replace(".", "/").replace("\0", ".")


def read_ruleset(netns_fd: int) -> str:
    """`nft list ruleset` (iptables-nft's tables included); '' where nft is not installed or refused."""
    if not nftables.available() or nftables.table_count(netns_fd) == 0:
        return ""
    done = process.run(netns_fd, ["nft", "list", "ruleset"], timeout=10)
    return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else ""


UDP_UNCONNECTED = "07"  # the `st` column of a UDP socket bound and not connected


def read_listeners(netns_fd: int) -> tuple[Listener, ...]:
    """TCP sockets in LISTEN (asked as `ss -ltn` asks) and unconnected UDP sockets, with their bound address and port."""
    tables = {}
    with linux.in_netns(netns_fd):
        for name in ("udp", "udp6"):
            try:
                with open(f"/proc/thread-self/net/{name}") as f:
                    tables[name] = f.read()
            except OSError:
                tables[name] = ""  # no IPv6 in this kernel
    out = {Listener("tcp", s.address, s.port) for s in listeners.listeners(netns_fd)}
    for text in tables.values():
        out.update(Listener("udp", s.address, s.port) for s in listeners.parse(text, UDP_UNCONNECTED))
    return tuple(sorted(out, key=lambda li: (li.proto, li.port, li.address)))
