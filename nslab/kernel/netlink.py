"""Applies a lab to the kernel over rtnetlink, reads it back, tears it down.

Kernel vocabulary stays in nslab/kernel/: the messages are packed by
nslab/kernel/rtnl.py and read back by nslab/kernel/decode.py; what this
module returns is in ip(8)'s words (nslab/kernel/state.py), and every error
names the `ip` command that would have failed the same way.

A netlink socket belongs to the namespace it was opened in, so each lab
namespace gets its own, opened by this thread after a setns(2) into it (no
helper process per socket); the sandbox keeps one for namespace ids and one
that hears when a namespace dies (it joins that group only while it waits).

Changes can go one at a time (`add_veth`, `set_link`, ...), as a step of a
test does, or many to one namespace in one write (`apply`, `links_up`), as
`Lab.build` sends a whole phase of its plan: a bounded number of round trips
per namespace, whatever its size.
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
import socket
import time
from typing import Callable, Iterable, NamedTuple, TypeVar

from nslab.kernel import decode, linux, rtnl
from nslab.kernel.handle import KernelError, NsHandle
from nslab.kernel.kept import KeptReads
from nslab.kernel.namespaces import Namespaces
from nslab.kernel.neighbour_table import NeighbourTable
from nslab.kernel.rtnl import NetlinkError
from nslab.kernel.sandbox import Sandbox
from nslab.kernel.state import AddressState, FdbEntry, LinkState, NeighbourState, RouteLookup, RouteState, RuleState
from nslab.model.topology import Route

_LINK_DUMP = rtnl.ifinfomsg() + rtnl.u32(rtnl.IFLA_EXT_MASK, rtnl.RTEXT_FILTER_SKIP_STATS)
_CREATE = rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
T = TypeVar("T")


class Change(NamedTuple):
    """One rtnetlink request, and the `ip` command it stands for (named if the kernel refuses it)."""

    kind: int
    payload: bytes
    flags: int
    command: str


class Kernel(Namespaces, NeighbourTable):
    """Netlink for one lab: a control socket in the sandbox, one per namespace."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self._attrs: dict[str, bytes] = {}  # packed NDA_DST / NDA_LLADDR attributes, by address
        self.control = rtnl.RtnlSocket()
        self.kept: KeptReads | None = None  # links, addresses, routes and rules kept until the kernel announces a change (keep_reads)
        # Namespace deaths are announced as RTM_DELNSID to namespaces holding an id for
        # them; this socket listens only while remove_namespaces waits (no backlog of
        # the ids announced as a lab is built).
        try:
            self._nsid_events = rtnl.RtnlSocket()
        except BaseException:
            self.control.close()
            raise

    def close(self) -> None:
        self.control.close()
        self._nsid_events.close()
        if self.kept is not None:
            self.kept.close()
            self.kept = None

    def keep_reads(self, handles: Iterable[NsHandle]) -> None:
        """From now on, keep the links, addresses, routes and rules read in these namespaces (and in
        those made or adopted later) until the kernel announces a change there (nslab/kernel/kept.py)."""
        if self.kept is None:
            self.kept = KeptReads()
        for h in handles:
            self.kept.watch(h)

    def _kept(self, ns: NsHandle, what: str, family: int, fresh: Callable[[], T]) -> T:
        return fresh() if self.kept is None else self.kept.read(ns, what, family, fresh)

    # -- changes, one or many at a time ------------------------------------------
    def apply(self, ns: NsHandle, changes: Iterable[Change]) -> None:
        """Send *changes* to NS in as few writes as the socket allows; if the kernel
        refuses any, raise for the first one, naming its `ip` command."""
        changes = list(changes)
        for change, error in zip(changes, ns.rtnl.batch([(c.kind, c.flags, c.payload) for c in changes])):
            if error is not None:
                raise KernelError(change.command, error.code, error.message)

    def veth(self, ns: NsHandle, name: str, peer_ns: NsHandle, peer: str) -> Change:
        """`ip link add NAME type veth peer name PEER netns PEER_NS` in NS: both
        ends are born in place, which is far cheaper than moving them later."""
        peer_attrs = rtnl.text(rtnl.IFLA_IFNAME, peer) + (rtnl.u32(rtnl.IFLA_NET_NS_FD, peer_ns.fd) if peer_ns is not ns else b"")
        info = rtnl.text(rtnl.IFLA_INFO_KIND, "veth", nul=False) + rtnl.attr(rtnl.IFLA_INFO_DATA, rtnl.attr(rtnl.VETH_INFO_PEER, rtnl.ifinfomsg() + peer_attrs))
        payload = rtnl.ifinfomsg() + rtnl.text(rtnl.IFLA_IFNAME, name) + rtnl.attr(rtnl.IFLA_LINKINFO, info)
        cmd = f"ip -n {ns.name} link add {name} type veth peer name {peer}" + (f" netns {peer_ns.name}" if peer_ns is not ns else "")
        return Change(rtnl.RTM_NEWLINK, payload, _CREATE, cmd)

    def bridge(self, ns: NsHandle, name: str) -> Change:
        """`ip link add NAME type bridge` in NS."""
        info = rtnl.text(rtnl.IFLA_INFO_KIND, "bridge", nul=False)
        return Change(rtnl.RTM_NEWLINK, rtnl.ifinfomsg() + rtnl.text(rtnl.IFLA_IFNAME, name) + rtnl.attr(rtnl.IFLA_LINKINFO, info), _CREATE, f"ip -n {ns.name} link add {name} type bridge")

    def link(
        self,
        ns: NsHandle,
        dev: str,
        *,
        up: bool | None = None,
        master: str | None = None,
        nomaster: bool = False,
        netns: NsHandle | None = None,
        name: str | None = None,
    ) -> Change:
        """`ip link set DEV [up|down] [master BR|nomaster] [netns NS] [name NEW]`."""
        index = ns.index(dev)
        words = [f"ip -n {ns.name} link set {dev}"]
        attrs = []
        if name is not None:
            words.append(f"name {name}")
            attrs.append(rtnl.text(rtnl.IFLA_IFNAME, name))
        if master is not None:
            words.append(f"master {master}")
            attrs.append(rtnl.u32(rtnl.IFLA_MASTER, ns.index(master)))
        if nomaster:
            words.append("nomaster")
            attrs.append(rtnl.u32(rtnl.IFLA_MASTER, 0))
        if netns is not None:
            words.append(f"netns {netns.name}")
            attrs.append(rtnl.u32(rtnl.IFLA_NET_NS_FD, netns.fd))
        if up is not None:
            words.append("up" if up else "down")
        head = rtnl.ifinfomsg(index, flags=rtnl.IFF_UP if up else 0, change=rtnl.IFF_UP if up is not None else 0)
        return Change(rtnl.RTM_NEWLINK, head + b"".join(attrs), 0, " ".join(words))

    def address(self, ns: NsHandle, dev: str, cidr: str, *, add: bool = True) -> Change:
        """`ip addr add|del CIDR dev DEV` (`nodad` for IPv6, so the address is usable at once)."""
        verb = "add" if add else "del"
        ns.holds_ipv6 |= add and ":" in cidr
        return Change(rtnl.RTM_NEWADDR if add else rtnl.RTM_DELADDR, _address(ns, dev, cidr, add=add), _CREATE if add else 0, f"ip -n {ns.name} addr {verb} {cidr} dev {dev}")

    def route(self, ns: NsHandle, route: Route, *, add: bool = True) -> Change:
        """`ip route add|del DST [via VIA] [dev DEV] [onlink]` in the main table."""
        verb = "add" if add else "del"
        return Change(rtnl.RTM_NEWROUTE if add else rtnl.RTM_DELROUTE, _route(ns, route, add=add), _CREATE if add else 0, _route_command(ns, route, verb))

    def links_up(self, ns: NsHandle, devs: list[str]) -> None:
        """`ip link set DEV up` for each of *devs*, in one write; those that came up
        without carrier are remembered (their queue waits for linkwatch: see wait_ready)."""
        self.apply(ns, [self.link(ns, dev, up=True) for dev in devs])
        carrier = {link.name: link.carrier for link in self.links(ns)}
        for dev in devs:
            if not carrier.get(dev, True):
                ns.expect_activation(dev)

    # -- links -------------------------------------------------------------
    def add_veth(self, ns: NsHandle, name: str, peer_ns: NsHandle, peer: str) -> None:
        """`ip link add NAME type veth peer name PEER netns PEER_NS` in NS."""
        self.apply(ns, [self.veth(ns, name, peer_ns, peer)])

    def add_bridge(self, ns: NsHandle, name: str) -> None:
        """`ip link add NAME type bridge` in NS."""
        self.apply(ns, [self.bridge(ns, name)])

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
        self.apply(ns, [self.link(ns, dev, up=up, master=master, nomaster=nomaster, netns=netns, name=name)])
        if name is not None or netns is not None:
            ns.forget(dev)
        if up and netns is None:
            (m,) = ns.rtnl.request(rtnl.RTM_GETLINK, rtnl.ifinfomsg(index) + rtnl.u32(rtnl.IFLA_EXT_MASK, rtnl.RTEXT_FILTER_SKIP_STATS))
            if not m.body["flags"] & rtnl.IFF_LOWER_UP:
                ns.expect_activation(name or dev)  # its queue waits for carrier: see wait_ready

    def settle_links(self, ns: NsHandle, devs: Iterable[str]) -> None:
        """`ip link show dev DEV` for each of *devs* (a link gone meanwhile is skipped). A kernel
        that syncs linkwatch when asked for one link (rtnl_getlink calls linkwatch_sync_dev: 6.18
        here, not Debian 12's 6.1) first applies what linkwatch holds for it: its operstate, its
        routes' `linkdown` flag, IPv6's readiness on it. Otherwise linkwatch applies an event it
        does not take as urgent (a bridge that lost its last port's carrier) in its next batch,
        up to a second later when it ran in the last second: busy with other namespaces' links,
        it often has. On a kernel that does not sync, asking changes nothing; callers still
        read back and wait (tests/test_linkwatch.py compares this with `ip link show dev`)."""
        for dev in devs:
            try:
                ns.rtnl.request(rtnl.RTM_GETLINK, rtnl.ifinfomsg(ns.index(dev)) + rtnl.u32(rtnl.IFLA_EXT_MASK, rtnl.RTEXT_FILTER_SKIP_STATS))
            except KernelError as exc:
                if exc.errno != errno_mod.ENODEV:
                    raise
            except NetlinkError as exc:
                if exc.code != errno_mod.ENODEV:
                    raise KernelError(f"ip -n {ns.name} link show dev {dev}", exc.code, exc.message) from None
                ns.forget(dev)

    def wait_ready(self, ns: NsHandle, timeout: float = 5.0) -> None:
        """Return once every link here that was set up without carrier, and has
        carrier now, can send. Such a link's transmit queue stays 'noop' (which
        drops) until the kernel's linkwatch activates it, in the same step that
        makes its operstate UP (an urgent event: milliseconds). A link set up
        with carrier was activated at once and needs no wait (its operstate may
        lag for a second, harmlessly). Read back, not assumed."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while ns.awaiting_activation():
            states = _link_states(ns.rtnl)
            for name in ns.awaiting_activation():
                state = states.get(name, _GONE)
                if not state.up or (state.carrier and state.operstate == "UP"):
                    ns.activated(name)
            waiting = [n for n in ns.awaiting_activation() if states[n].carrier]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise KernelError(f"ip -n {ns.name} link show {' '.join(waiting)}", errno_mod.ETIMEDOUT, "has carrier but is not yet operationally UP")
            time.sleep(pause)  # polled under the deadline above: linkwatch has no event to wait on
            pause = min(2 * pause, 0.02)  # a thousand links take linkwatch tens of milliseconds
        if ns.holds_ipv6:
            self.wait_ipv6_usable(ns, timeout)

    def wait_ipv6_usable(self, ns: NsHandle, timeout: float = 5.0) -> None:
        """Return once every IPv6 address the kernel completes without DAD is usable, on the
        links with carrier: each `nodad` one is local (no longer tentative, its local route in
        place) on a link IPv6 has made ready (IF_READY), and no address is tentative on a ready
        link whose accept_dad is off (the link-local address addrconf gave it).
        Even so the kernel completes them on its workqueue, under the RTNL lock, a moment after
        `ip addr add` was acknowledged or the link came up (the flag first, the route after):
        longer on a machine busy tearing namespaces down. Until then a nodad address answers no
        NDP, and a link whose link-local address is tentative sends no neighbour solicitation for
        a packet it forwards (ndisc_send_ns has no source address). And IPv6 sets a link up (its
        multicast route, its link-local address) only when linkwatch makes it operationally UP,
        up to a second after carrier (linkwatch batches an event it does not take as urgent, as
        for a veth whose peer has the same ifindex); until then NDP arriving on it is dropped
        (no route for the solicited-node group)."""
        deadline = time.monotonic() + timeout
        pause = 0.0002
        dad_off_for_all: bool | None = None  # `all`'s accept_dad is below 1 too (read once, if needed)
        while True:
            states = _link_states(ns.rtnl)
            names = self.names(ns)
            addresses = self.addresses(ns, names)
            nodad = [a for a in addresses if "nodad" in a.flags and states.get(a.dev, _GONE).up and states.get(a.dev, _GONE).carrier]
            waiting = [a for a in nodad if "tentative" in a.flags or self.route_get(ns, a.ip, names=names).type != "local"]
            unready = [a for a in nodad if not states[a.dev].ipv6_ready]
            completing = [a for a in addresses if "tentative" in a.flags and not {"nodad", "dadfailed"} & set(a.flags) and _ready_without_dad(states.get(a.dev, _GONE))]
            if completing and dad_off_for_all is None:
                dad_off_for_all = self._dad_off_for_all(ns)
            if not waiting and not unready and not (completing and dad_off_for_all):
                return
            if time.monotonic() > deadline:
                if not waiting and not unready:
                    return  # tentative all along: its DAD began before accept_dad was turned off, and runs its course
                late, why = (waiting[0], "is still tentative") if waiting else (unready[0], "is on a link IPv6 has not made ready")
                raise KernelError(f"ip -n {ns.name} -6 addr show {late.dev}", errno_mod.ETIMEDOUT, f"{late.cidr} {why}")
            time.sleep(pause)  # polled under the deadline above: the kernel's workqueue sends no event we wait on
            pause = min(2 * pause, 0.02)

    def _dad_off_for_all(self, ns: NsHandle) -> bool:
        """Is net.ipv6.conf.all.accept_dad below 1? A link's own accept_dad turns DAD off only then."""
        try:
            return int(self.get_sysctl(ns, "net.ipv6.conf.all.accept_dad")) < 1
        except (OSError, ValueError):
            return False

    def delete_link(self, ns: NsHandle, dev: str) -> None:
        """`ip link del DEV`."""
        self.apply(ns, [Change(rtnl.RTM_DELLINK, rtnl.ifinfomsg(ns.index(dev)), 0, f"ip -n {ns.name} link del {dev}")])
        ns.forget(dev)

    # -- addresses and routes ----------------------------------------------
    def add_address(self, ns: NsHandle, dev: str, cidr: str) -> None:
        """`ip addr add CIDR dev DEV` (`nodad` for IPv6, so the address is usable at once: read back)."""
        self.apply(ns, [self.address(ns, dev, cidr)])
        if ":" in cidr:
            self.wait_ipv6_usable(ns)

    def del_address(self, ns: NsHandle, dev: str, cidr: str) -> None:
        """`ip addr del CIDR dev DEV`."""
        self.apply(ns, [self.address(ns, dev, cidr, add=False)])

    def add_route(self, ns: NsHandle, route: Route) -> None:
        """`ip route add DST [via VIA] [dev DEV] [onlink]` in the main table."""
        self.apply(ns, [self.route(ns, route)])

    def del_route(self, ns: NsHandle, route: Route) -> None:
        """`ip route del DST [via VIA] [dev DEV]`."""
        self.apply(ns, [self.route(ns, route, add=False)])

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
        """`ip link`"""
        out = list(self._kept(ns, "links", 0, lambda: _links(ns.rtnl)))
        ns.remember({link.name: link.index for link in out})
        return out

    def sandbox_link_names(self) -> list[str]:
        """The interfaces of the sandbox's own namespace (only lo, unless something leaked)."""
        return sorted(link.name for link in _links(self.control))

    def names(self, ns: NsHandle) -> dict[int, str]:
        """ifindex -> name, from one link dump (pass it on to save dumps)."""
        return {link.index: link.name for link in self.links(ns)}

    def addresses(self, ns: NsHandle, names: dict[int, str] | None = None) -> list[AddressState]:
        """`ip addr` (IPv4 and IPv6)."""
        names = names if names is not None else self.names(ns)
        dump = self._kept(ns, "addresses", socket.AF_UNSPEC, lambda: ns.rtnl.dump(rtnl.RTM_GETADDR, rtnl.ifaddrmsg(socket.AF_UNSPEC, 0, 0)))
        return [decode.address(m, names) for m in dump]

    def routes(self, ns: NsHandle, family: int = socket.AF_INET, names: dict[int, str] | None = None) -> list[RouteState]:
        """The main table, as `ip route` shows it."""
        names = names if names is not None else self.names(ns)
        return [decode.route(m, names) for m in self._route_dump(ns, family) if decode.table_of(m) == rtnl.RT_TABLE_MAIN]

    def all_routes(self, ns: NsHandle, family: int = socket.AF_INET, names: dict[int, str] | None = None) -> list[RouteState]:
        """Every table's routes of every type, as `ip route show table all` lists them."""
        names = names if names is not None else self.names(ns)
        return [decode.route(m, names) for m in self._route_dump(ns, family)]

    def _route_dump(self, ns: NsHandle, family: int) -> list[rtnl.Message]:
        return self._kept(ns, "routes", family, lambda: ns.rtnl.dump(rtnl.RTM_GETROUTE, rtnl.rtmsg(family)))

    def rules(self, ns: NsHandle, family: int = socket.AF_INET) -> list[RuleState]:
        """`ip rule`, in priority order."""
        dump = self._kept(ns, "rules", family, lambda: ns.rtnl.dump(rtnl.RTM_GETRULE, rtnl.rtmsg(family)))
        return sorted((decode.rule(m) for m in dump), key=lambda r: r.priority)

    def route_get(
        self,
        ns: NsHandle,
        dst: str,
        src: str | None = None,
        names: dict[int, str] | None = None,
        *,
        iif: str | None = None,
        mark: int | None = None,
        fibmatch: bool = False,
    ) -> RouteLookup:
        """`ip route get DST [from SRC] [iif DEV] [mark M] [fibmatch]`: the kernel's own routing
        decision. With *iif* it is the input path's, as for a packet that came in on that
        interface: source validation (rp_filter, martians), forwarding, local delivery."""
        family, bits = (socket.AF_INET6, 128) if ":" in dst else (socket.AF_INET, 32)
        payload = rtnl.rtmsg(family, dst_len=bits, src_len=bits if src is not None else 0, flags=rtnl.RTM_F_FIB_MATCH if fibmatch else 0) + rtnl.ip(rtnl.RTA_DST, dst)
        if src is not None:
            payload += rtnl.ip(rtnl.RTA_SRC, src)
        if iif is not None:
            names = names if names is not None else self.names(ns)
            index = next((i for i, name in names.items() if name == iif), None)
            if index is None:
                return RouteLookup(dst=dst, errno=errno_mod.ENODEV, iif=iif)
            payload += rtnl.u32(rtnl.RTA_IIF, index)
        if mark is not None:
            payload += rtnl.u32(rtnl.RTA_MARK, mark)
        try:
            (m,) = ns.rtnl.request(rtnl.RTM_GETROUTE, payload)
        except NetlinkError as exc:
            return RouteLookup(dst=dst, errno=exc.code, iif=iif)
        oif = m.u32(rtnl.RTA_OIF)
        return decode.lookup(dst, m, (names if names is not None else self.names(ns)) if oif else {}, iif)

    def neighbours(self, ns: NsHandle, names: dict[int, str] | None = None, *, version: int | None = None) -> list[NeighbourState]:
        """`ip neigh`: IPv4's ARP entries, then IPv6's NDP ones (not the multicast groups'
        NOARP entries, which `ip neigh` too shows only with `nud all`); `version=4` is
        `ip -4 neigh` (one dump, not two), `version=6` is `ip -6 neigh`."""
        names = names if names is not None else self.names(ns)
        ipv4 = [decode.neighbour(m, names) for m in ns.rtnl.dump(rtnl.RTM_GETNEIGH, rtnl.ndmsg(socket.AF_INET))] if version != 6 else []
        ipv6 = [decode.neighbour(m, names) for m in ns.rtnl.dump(rtnl.RTM_GETNEIGH, rtnl.ndmsg(socket.AF_INET6)) if not m.body["state"] & rtnl.NUD_NOARP] if version != 4 else []
        return ipv4 + ipv6

    def fdb(self, ns: NsHandle) -> list[FdbEntry]:
        """`bridge fdb show`: the bridges' forwarding databases (AF_BRIDGE neighbours)."""
        names = self.names(ns)
        return [decode.fdb_entry(m, names) for m in ns.rtnl.dump(rtnl.RTM_GETNEIGH, rtnl.ndmsg(socket.AF_BRIDGE))]

def _links(sock: rtnl.RtnlSocket) -> list[LinkState]:
    dump = sock.dump(rtnl.RTM_GETLINK, _LINK_DUMP)
    names = {m.body["index"]: m.text(rtnl.IFLA_IFNAME) or str(m.body["index"]) for m in dump}
    return [decode.link(m, names) for m in dump]


class _LinkFlags(NamedTuple):
    up: bool
    carrier: bool
    operstate: str
    ipv6_ready: bool  # addrconf has set the link up for IPv6 (IF_READY: link-local, multicast route)
    dad_off: bool  # its accept_dad is below 1: its tentative addresses are completed without DAD, if `all`'s is too


_GONE = _LinkFlags(False, False, "", False, False)


def _ready_without_dad(link: _LinkFlags) -> bool:
    """Does the kernel complete a tentative address of *link* a moment from now, without DAD?"""
    return link.up and link.carrier and link.ipv6_ready and link.dad_off


def _link_states(sock: rtnl.RtnlSocket) -> dict[str, _LinkFlags]:
    """name -> the flags of every link, from one dump read lightly
    (a namespace of a thousand links is polled while linkwatch activates them)."""
    out = {}
    for m in sock.dump(rtnl.RTM_GETLINK, _LINK_DUMP):
        oper = m.u8(rtnl.IFLA_OPERSTATE)
        flags = m.body["flags"]
        out[m.text(rtnl.IFLA_IFNAME) or ""] = _LinkFlags(
            bool(flags & rtnl.IFF_UP),
            bool(flags & rtnl.IFF_LOWER_UP),
            rtnl.OPERSTATES[oper] if oper is not None and oper < len(rtnl.OPERSTATES) else "",
            bool(rtnl.inet6_flags(m) & rtnl.IF_READY),
            (rtnl.inet6_conf(m, rtnl.DEVCONF_ACCEPT_DAD) or 0) < 1,
        )
    return out


def _address(ns: NsHandle, dev: str, cidr: str, *, add: bool) -> bytes:
    iface = ipaddress.ip_interface(cidr)
    family = socket.AF_INET6 if iface.version == 6 else socket.AF_INET
    flags = rtnl.IFA_F_NODAD if iface.version == 6 and add else 0
    scope = rtnl.RT_SCOPE_HOST if iface.ip.is_loopback else rtnl.RT_SCOPE_UNIVERSE  # as ip(8) picks it
    head = rtnl.ifaddrmsg(family, iface.network.prefixlen, ns.index(dev), flags=flags, scope=scope)
    return head + rtnl.ip(rtnl.IFA_LOCAL, str(iface.ip)) + rtnl.ip(rtnl.IFA_ADDRESS, str(iface.ip))


def _route(ns: NsHandle, route: Route, *, add: bool) -> bytes:
    """RTM_NEWROUTE / RTM_DELROUTE as ip(8) fills it: a device route without a
    gateway is scope link (so it can carry a gateway, as Calico's
    `169.254.1.1 dev eth0` does); a delete matches any scope and protocol."""
    net = route.network
    family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
    if add:
        link_scope = family == socket.AF_INET and route.via is None
        head = rtnl.rtmsg(
            family,
            dst_len=net.prefixlen,
            table=rtnl.RT_TABLE_MAIN,
            protocol=rtnl.RTPROT_BOOT,
            scope=rtnl.RT_SCOPE_LINK if link_scope else rtnl.RT_SCOPE_UNIVERSE,
            kind=rtnl.RTN_UNICAST,
            flags=rtnl.RTNH_F_ONLINK if route.onlink else 0,
        )
    else:
        head = rtnl.rtmsg(family, dst_len=net.prefixlen, table=rtnl.RT_TABLE_MAIN, scope=rtnl.RT_SCOPE_NOWHERE)
    parts = [head]
    if net.prefixlen:
        parts.append(rtnl.ip(rtnl.RTA_DST, str(net.network_address)))
    if route.via is not None:
        parts.append(rtnl.ip(rtnl.RTA_GATEWAY, route.via))
    if route.dev is not None:
        parts.append(rtnl.u32(rtnl.RTA_OIF, ns.index(route.dev)))
    return b"".join(parts)


def _route_command(ns: NsHandle, route: Route, verb: str) -> str:
    words = [f"ip -n {ns.name} route {verb} {route.dst}"]
    if route.via is not None:
        words.append(f"via {route.via}")
    if route.dev is not None:
        words.append(f"dev {route.dev}")
    if route.onlink:
        words.append("onlink")
    return " ".join(words)


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


__all__ = ["Kernel", "KernelError", "NsHandle"]
