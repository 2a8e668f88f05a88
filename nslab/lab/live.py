"""A live lab: the model built in the kernel, changed step by step, probed.

    with Lab(topology) as lab:
        assert lab.ns("ns1").ping("10.0.0.2").replied

Every step mirrors an ip(8) command, is validated by the model before the
kernel sees it, and is recorded, so `lab.topology` is always the lab that was
really built (for diagrams, `ip` command listings and explanations).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import subprocess
from typing import Any, Iterable

from nslab.diagnosis.capture import Capture
from nslab.diagnosis.reads import Space, View
from nslab.kernel import drops, ethtool, linux, sandbox
from nslab.kernel.netlink import Kernel, NsHandle
from nslab.kernel.process import Process, spawn, wait_until
from nslab.kernel.process import run as run_in_netns
from nslab.kernel.state import AddressState, FdbEntry, LinkState, NeighbourState, RouteLookup, RouteState
from nslab.lab.probing import Probing
from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth, check_gateway, check_ifname, check_nsname
from nslab.probes.result import Result


class Lab:
    """Namespaces, links, addresses and routes in the run's sandbox; removed on close."""

    def __init__(self, topology: Topology | None = None, *, timeout: float = 1.0):
        self.topology = Topology()
        self.timeout = timeout  # default deadline of probes the evidence cannot settle earlier
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
            self._kernel = Kernel(sandbox.enter())
            drops.monitor()  # the kernel's drop reasons: bpftrace attaches while the lab is built
            if self._spec is not None:
                self.build(self._spec)
        return self

    @property
    def kernel(self) -> Kernel:
        if self._kernel is None:
            self.open()
        return self._kernel  # type: ignore[return-value]

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
        for ns in self._ns.values():
            ns._close_sockets()
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
        """Add a whole topology at once, the fast way: each veth is born with
        both ends in their namespaces, everything set up in one pass."""
        merged = Topology(
            self.topology.namespaces + topology.namespaces,
            self.topology.veths + topology.veths,
            self.topology.bridges + topology.bridges,
            self.topology.addresses + topology.addresses,
            self.topology.routes + topology.routes,
        )
        k = self.kernel
        for spec in topology.namespaces:
            self._ns[spec.name] = Netns(self, spec.name, k.create_namespace(spec.name))
        h = {name: ns.handle for name, ns in self._ns.items()}
        for spec in topology.namespaces:
            for key, value in spec.sysctls:
                k.set_sysctl(h[spec.name], key, value)
            if spec.lo_up:
                k.set_link(h[spec.name], "lo", up=True)
        for br in topology.bridges:
            k.add_bridge(h[br.ns], br.name)
        for v in topology.veths:
            k.add_veth(h[v.ns], v.name, h[v.peer_ns], v.peer)
            for ns, name, master in v.ends():
                if master is not None:
                    k.set_link(h[ns], name, master=master)
        for a in topology.addresses:
            k.add_address(h[a.ns], a.dev, a.cidr)
        for br in topology.bridges:
            if br.up:
                k.set_link(h[br.ns], br.name, up=True)
        for v in topology.veths:
            if v.up:
                k.set_link(h[v.ns], v.name, up=True)
            if v.peer_up:
                k.set_link(h[v.peer_ns], v.peer, up=True)
        for spec in topology.namespaces:
            k.wait_ready(h[spec.name])
        for r in topology.routes:
            k.add_route(h[r.ns], r)
        self.topology = merged
        return self

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
        self._record(topo)
        return self._ns[name]

    def delete_namespace(self, name: str) -> None:
        """`ip netns del NAME`: returns once the kernel has destroyed it (and its links with it)."""
        ns = self.ns(name)
        ns._close_sockets()
        self.kernel.remove_namespaces([ns.handle], flush_links=True)
        del self._ns[name]
        topo = self.topology
        gone = {v for v in topo.veths if name in (v.ns, v.peer_ns)}
        self._record(
            Topology(
                [n for n in topo.namespaces if n.name != name],
                [v for v in topo.veths if v not in gone],
                [b for b in topo.bridges if b.ns != name],
                [a for a in topo.addresses if a.ns != name and not any((a.ns, a.dev) in {e[:2] for e in v.ends()} for v in gone)],
                [r for r in topo.routes if r.ns != name and not any((r.ns, r.dev) in {e[:2] for e in v.ends()} for v in gone)],
            )
        )

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

    def view(self) -> View:
        """What a probe's diagnosis may see of this lab: read-only."""
        spaces = {name: Space(name, ns.handle, ns.watcher, ns._inode) for name, ns in self._ns.items()}
        return View(self.topology, self.kernel, spaces, self.settle_early)

    def _record(self, topology: Topology) -> None:
        self.topology = topology

    def _track(self, proc: Process) -> Process:
        self._processes.append(proc)
        return proc


class Netns(Probing):
    """One namespace of a lab: ip(8)-like steps, what the kernel reports, probes."""

    def __init__(self, lab: Lab, name: str, handle: NsHandle):
        self.lab = lab
        self.name = name
        self.handle = handle
        self._icmp: socket.socket | None = None
        self._arp: dict[str, socket.socket] = {}
        self._open: list[socket.socket] = []
        self.watcher = self._inside(lambda: Capture(name))
        self._inode = self.inode

    def __repr__(self) -> str:
        return f"<Netns {self.name}>"

    @property
    def path(self) -> str:
        """For `ip netns exec` / `nsenter --net=` inside the sandbox."""
        return self.handle.path

    def _inside(self, fn):
        with linux.in_netns(self.handle.fd):
            return fn()

    def _close_sockets(self) -> None:
        for sock in [self._icmp, *self._arp.values(), *self._open]:
            if sock is not None:
                sock.close()
        self._icmp, self._arp, self._open = None, {}, []
        self.watcher.close()

    # -- ip(8)-like steps ------------------------------------------------------
    def add_veth(self, name: str, peer: str, *, peer_ns: "Netns | str | None" = None, up: bool = False) -> None:
        """`ip link add NAME type veth peer name PEER [netns PEER_NS]`; both ends start down."""
        other = self._resolve(peer_ns) if peer_ns is not None else self
        veth = Veth(self.name, name, other.name, peer, up=up, peer_up=up)
        topo = self.lab.topology.replace(veths=self.lab.topology.veths + (veth,))
        self.lab.kernel.add_veth(self.handle, name, other.handle, peer)
        self.lab._record(topo)
        if up:
            self.set_link(name, up=True)
            other.set_link(peer, up=True)

    def add_bridge(self, name: str) -> None:
        """`ip link add NAME type bridge` (down until `set_link(NAME, up=True)`)."""
        topo = self.lab.topology.replace(bridges=self.lab.topology.bridges + (Bridge(self.name, name, up=False),))
        self.lab.kernel.add_bridge(self.handle, name)
        self.lab._record(topo)

    def set_link(
        self,
        dev: str,
        *,
        up: bool | None = None,
        netns: "Netns | str | None" = None,
        name: str | None = None,
        master: str | None = None,
        nomaster: bool = False,
    ) -> None:
        """`ip link set DEV [netns NS] [name NEW] [master BR|nomaster] [up|down]`."""
        check_ifname(dev, "dev")
        target = self._resolve(netns) if netns is not None else None
        if name is not None:
            check_ifname(name, "name")
        topo = _relink(self.lab.topology, self.name, dev, up=up, netns=target.name if target else None, name=name, master=master, nomaster=nomaster)
        if dev != "lo" and dev not in self.lab.topology.links_in(self.name):
            # Not made by the lab (e.g. by a CNI plugin or a student's script): the kernel decides.
            topo = self.lab.topology
        self.lab.kernel.set_link(self.handle, dev, up=up, master=master, nomaster=nomaster, netns=target.handle if target else None, name=name)
        peer = self.lab.topology.peer(self.name, dev)
        if up:
            self.lab.kernel.wait_ready(self.handle)
            if peer is not None and peer[0] != self.name:
                self.lab.kernel.wait_ready(self.lab.ns(peer[0]).handle)
        elif up is False and peer is not None:
            # the peer loses carrier now; when it comes back, its queue waits for linkwatch
            self.lab.ns(peer[0]).handle.expect_activation(peer[1])
        if dev == "lo" and up is not None:
            topo = topo.replace(namespaces=tuple(dataclasses.replace(n, lo_up=up) if n.name == self.name else n for n in topo.namespaces))
        self.lab._record(topo)
        self._arp.pop(dev, None)

    def del_link(self, dev: str) -> None:
        """`ip link del DEV` (a veth takes its peer with it)."""
        topo = self.lab.topology
        veths = tuple(v for v in topo.veths if (self.name, dev) not in {(v.ns, v.name), (v.peer_ns, v.peer)})
        gone = {(e[0], e[1]) for v in topo.veths if v not in veths for e in v.ends()} | {(self.name, dev)}
        topo = topo.replace(
            veths=veths,
            bridges=tuple(b for b in topo.bridges if (b.ns, b.name) != (self.name, dev)),
            addresses=tuple(a for a in topo.addresses if (a.ns, a.dev) not in gone),
            routes=tuple(r for r in topo.routes if (r.ns, r.dev) not in gone),
        )
        self.lab.kernel.delete_link(self.handle, dev)
        self.lab._record(topo)

    def add_address(self, cidr: str, dev: str) -> None:
        """`ip addr add CIDR dev DEV`."""
        addr = Address(self.name, dev, cidr)
        topo = self.lab.topology
        if dev in topo.links_in(self.name):
            topo = topo.replace(addresses=topo.addresses + (addr,))
        self.lab.kernel.add_address(self.handle, dev, addr.cidr)
        self.lab._record(topo)

    def del_address(self, cidr: str, dev: str) -> None:
        addr = Address(self.name, dev, cidr)
        self.lab.kernel.del_address(self.handle, dev, addr.cidr)
        self.lab._record(self.lab.topology.replace(addresses=tuple(a for a in self.lab.topology.addresses if a != addr)))

    def add_route(self, dst: str, *, via: str | None = None, dev: str | None = None, onlink: bool = False) -> None:
        """`ip route add DST [via VIA] [dev DEV] [onlink]`; a gateway must be on a connected subnet."""
        route = Route(self.name, dst, via=via, dev=dev, onlink=onlink)
        if via is not None and not onlink:
            check_gateway(route, self._connected(dev), "via")
        self.lab.kernel.add_route(self.handle, route)
        topo = self.lab.topology
        if dev is None or dev in topo.links_in(self.name):
            self.lab._record(topo.replace(routes=topo.routes + (route,)))

    def del_route(self, dst: str, *, via: str | None = None, dev: str | None = None) -> None:
        route = Route(self.name, dst, via=via, dev=dev)
        self.lab.kernel.del_route(self.handle, route)
        keep = tuple(r for r in self.lab.topology.routes if not (r.ns == self.name and r.dst == route.dst))
        self.lab._record(self.lab.topology.replace(routes=keep))

    def set_sysctl(self, key: str, value: Any) -> None:
        """`sysctl -w KEY=VALUE` inside this namespace (e.g. net.ipv4.ip_forward=1)."""
        spec = self.lab.topology.namespace(self.name)
        updated = Namespace(self.name, spec.lo_up, {**dict(spec.sysctls), key: value})
        self.lab.kernel.set_sysctl(self.handle, key, str(value))
        self.lab._record(self.lab.topology.replace(namespaces=tuple(updated if n.name == self.name else n for n in self.lab.topology.namespaces)))

    def sysctl(self, key: str) -> str:
        return self.lab.kernel.get_sysctl(self.handle, key)

    # -- what the kernel reports ------------------------------------------------
    def links(self) -> list[LinkState]:
        """`ip link`"""
        return self.lab.kernel.links(self.handle)

    def link(self, name: str) -> LinkState:
        for link in self.links():
            if link.name == name:
                return link
        raise LabError("link", f"no interface {name!r} in {self.name!r}")

    def link_names(self) -> list[str]:
        return sorted(link.name for link in self.links())

    def addresses(self, dev: str | None = None) -> list[AddressState]:
        """`ip addr` (IPv4 and IPv6)."""
        return [a for a in self.lab.kernel.addresses(self.handle) if dev is None or a.dev == dev]

    def routes(self) -> list[RouteState]:
        """`ip route`"""
        return self.lab.kernel.routes(self.handle)

    def route_get(self, dst: str, src: str | None = None) -> RouteLookup:
        """`ip route get DST [from SRC]`"""
        return self.lab.kernel.route_get(self.handle, dst, src)

    def neighbours(self) -> list[NeighbourState]:
        """`ip neigh`"""
        return self.lab.kernel.neighbours(self.handle)

    def neighbour(self, dst: str) -> NeighbourState | None:
        return next((n for n in self.neighbours() if n.dst == dst), None)

    def flush_neighbours(self) -> None:
        """`ip neigh flush all`"""
        self.lab.kernel.flush_neighbours(self.handle)

    def fdb(self, bridge: str | None = None) -> list[FdbEntry]:
        """`bridge fdb show [br BRIDGE]`: which port each bridge sends each MAC to."""
        return [e for e in self.lab.kernel.fdb(self.handle) if bridge is None or bridge in (e.master, e.dev)]

    def netnsid(self, other: "Netns | str") -> int | None:
        """`ip netns list-id`: the id this namespace gives *other*, as `ip link` shows `link-netnsid N`."""
        return self.lab.kernel.netnsid(self.handle, self._resolve(other).handle)

    def ethtool_stats(self, dev: str) -> dict[str, int]:
        """`ethtool -S DEV`: the driver's statistics (a veth's include `peer_ifindex`)."""
        check_ifname(dev, "dev")
        return self._inside(lambda: ethtool.stats(dev))

    def listening(self, port: int) -> bool:
        """`ss -ltn sport = :PORT` has a line: a TCP listener on *port* here."""

        def read() -> str:
            with open("/proc/thread-self/net/tcp") as f4, open("/proc/thread-self/net/tcp6") as f6:
                return f4.read() + f6.read()

        for line in self._inside(read).splitlines():
            fields = line.split()  # sl local_address rem_address st ...; st 0A is LISTEN
            if len(fields) > 3 and fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                return True
        return False

    # -- processes ----------------------------------------------------------------
    def spawn(self, argv: Iterable[str], env: dict[str, str] | None = None) -> Process:
        """`ip netns exec NS ARGV...` in the background; stopped by PID when the lab closes."""
        return self.lab._track(spawn(self.handle.fd, self.name, list(argv), env=env))

    def serve(self, argv: Iterable[str], port: int, *, timeout: float = 60.0) -> Process:
        """Start a server here and return once it listens on TCP *port* (read back
        from the kernel's socket table, not assumed); fails with its output if it dies."""
        proc = self.spawn(argv)
        wait_until(lambda: self.listening(port) or not proc.running(), timeout, f"{' '.join(proc.argv)} listening on {port} in {self.name}")
        if not proc.running():
            proc.stop()
            raise RuntimeError(f"{' '.join(proc.argv)} exited in {self.name} before listening on {port}: {proc.output().strip()[-500:]}")
        return proc

    def run(self, argv: Iterable[str], *, input: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """`ip netns exec NS ARGV...` in the foreground: waits (bounded), returns its output."""
        return run_in_netns(self.handle.fd, list(argv), input=input, env=env, timeout=timeout)

    # -- helpers ------------------------------------------------------------------
    def _resolve(self, ns: "Netns | str") -> "Netns":
        return ns if isinstance(ns, Netns) else self.lab.ns(check_nsname(ns, "netns"))

    def _connected(self, dev: str | None) -> list:
        """Subnets on links that are up here, as the kernel reports them."""
        up = {link.name for link in self.links() if link.up}
        return [ipaddress.ip_interface(a.cidr).network for a in self.addresses() if a.dev in up and dev in (None, a.dev)]


def _relink(topo: Topology, ns: str, dev: str, *, up, netns, name, master, nomaster) -> Topology:
    """The model after `ip link set`: a move or rename carries the end along; a
    move drops the end's addresses and routes, as the kernel does."""
    veths = []
    for v in topo.veths:
        ends = [[v.ns, v.name, v.up, v.master], [v.peer_ns, v.peer, v.peer_up, v.peer_master]]
        for end in ends:
            if (end[0], end[1]) == (ns, dev):
                if up is not None:
                    end[2] = up
                if master is not None:
                    end[3] = master
                if nomaster:
                    end[3] = None
                if netns is not None:
                    end[0], end[2], end[3] = netns, False, None
                if name is not None:
                    end[1] = name
        veths.append(Veth(ends[0][0], ends[0][1], ends[1][0], ends[1][1], ends[0][2], ends[1][2], ends[0][3], ends[1][3]))
    bridges = tuple(dataclasses.replace(b, up=b.up if up is None else up) if (b.ns, b.name) == (ns, dev) else b for b in topo.bridges)
    addresses, routes = topo.addresses, topo.routes
    if netns is not None:
        addresses = tuple(a for a in addresses if (a.ns, a.dev) != (ns, dev))
        routes = tuple(r for r in routes if (r.ns, r.dev) != (ns, dev))
    elif name is not None:
        addresses = tuple(dataclasses.replace(a, dev=name) if (a.ns, a.dev) == (ns, dev) else a for a in addresses)
        routes = tuple(dataclasses.replace(r, dev=name) if (r.ns, r.dev) == (ns, dev) else r for r in routes)
    return topo.replace(veths=tuple(veths), bridges=bridges, addresses=addresses, routes=routes)

