"""The kernel's knobs the fault generator turns: one random change to a catalog lab,
drawn from its model only (so a seed alone says what the change is), made with
the plain commands a user would type in one of the lab's namespaces.

Each kind of change is a function `(Where, Random) -> Change | None` (None:
that kind does not fit this lab and probe). A `Change` carries its commands,
the command whose output shows the kernel took it, and the names the
changed object goes by in `Claim.obj` (nslab/probes/result.py), which the
scoring matches on. Firewall changes (nft, iptables) are in firewall.py.
"""

from __future__ import annotations

import ipaddress
import random
import re
import shlex
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

from nslab.model.topology import Topology

GEN_TABLE = 100  # a routing table no catalog lab uses: a route there matters only through a rule


@dataclass(frozen=True)
class Change:
    """One change in namespace *ns*: run *commands* in order (a listener change moves
    the probe's listener to *listen* instead); *shown_by*'s output then matches the
    regular expression *shows* (or no longer does, with *gone*)."""

    kind: str
    ns: str
    commands: tuple[tuple[str, ...], ...]
    objs: tuple[str, ...]  # the changed object as a claim names it; more than one: the same object by another name
    shown_by: tuple[str, ...]
    shows: str
    gone: bool = False
    listen: Optional[str] = None  # a listener change: the address the probe's listener moves to

    def __str__(self) -> str:
        what = f"listener moved to {self.listen}" if self.listen is not None else " && ".join(shlex.join(c) for c in self.commands)
        return f"{self.ns}: {what}"


@dataclass(frozen=True)
class Where:
    """What a change may touch: the lab, the probe, and the namespaces on its way."""

    topology: Topology
    src: str
    dst: str  # the probe's destination address
    owner: str  # the namespace holding dst
    port: Optional[int]  # a TCP probe's port (its listener is in owner); None for a ping
    path: tuple[str, ...]  # namespaces from src to owner, by veth hops
    family: str = "ipv4"  # the probe's: a change draws the sysctls, routes, rules and addresses of this family

    @property
    def v6(self) -> bool:
        return self.family == "ipv6"

    @property
    def ip(self) -> tuple[str, ...]:
        """`ip` with the family's option: `ip rule` and `ip -6 rule` are two lists."""
        return ("ip", "-6") if self.v6 else ("ip",)

    @property
    def loopback(self) -> str:
        return "::1" if self.v6 else "127.0.0.1"

    def devices(self, ns: str) -> list[str]:
        """The links of *ns* on the probe's way (the veth ends toward the previous and
        next namespace, and their bridge), else all of its links; lo too for a probe that stays in one namespace."""
        topo, i = self.topology, self.path.index(ns)
        near = {self.path[j] for j in (i - 1, i + 1) if 0 <= j < len(self.path)}
        ends = [(dev, master) for dev, master, far in self.ends(ns) if far[0] in near]
        devs = list(dict.fromkeys([dev for dev, _ in ends] + [m for _, m in ends if m])) or [d for d in topo.links_in(ns) if d != "lo"]
        return devs + (["lo"] if self.path == (ns,) else [])

    def addresses(self, ns: str, devs: Optional[list[str]] = None) -> list[tuple[str, str]]:
        """(cidr, dev) of *ns*'s addresses of the probe's family (on *devs* only, when given)."""
        version = 6 if self.v6 else 4
        return [(a.cidr, a.dev) for a in self.topology.addresses if a.ns == ns and a.interface.version == version and (devs is None or a.dev in devs)]

    def src_address(self) -> str:
        """The sender's address on its way out (the first one on its path links), or the loopback's."""
        held = self.addresses(self.src, self.devices(self.src))
        return held[0][0].split("/")[0] if held else self.loopback

    def ends(self, ns: str) -> list[tuple[str, Optional[str], tuple[str, str]]]:
        """(name, bridge it is a port of, (namespace, name) of its peer) of each veth end in *ns*."""
        out = []
        for v in self.topology.veths:
            if v.ns == ns:
                out.append((v.name, v.master, (v.peer_ns, v.peer)))
            if v.peer_ns == ns:
                out.append((v.peer, v.peer_master, (v.ns, v.name)))
        return out

    def bridge_ports(self, ns: str) -> list[tuple[str, str]]:
        """(port, bridge) of the bridges in *ns*."""
        return [(dev, master) for dev, master, _ in self.ends(ns) if master]

    def segment(self, ns: str, dev: str) -> set[tuple[str, str]]:
        """The other interfaces on *dev*'s Ethernet segment: its veth peer, or, through
        a bridge (*dev* itself or the one its peer is a port of), the bridge and its ports' peers."""
        ends = {}
        for v in self.topology.veths:
            ends[(v.ns, v.name)] = (v.master, (v.peer_ns, v.peer))
            ends[(v.peer_ns, v.peer)] = (v.peer_master, (v.ns, v.name))
        bridges = {(ns, dev)} if any(b.ns == ns and b.name == dev for b in self.topology.bridges) else set()
        found = set()
        if (ns, dev) in ends:
            far = ends[(ns, dev)][1]
            found.add(far)
            if ends[far][0]:
                bridges.add((far[0], ends[far][0]))
        for b_ns, b_dev in bridges:
            found.add((b_ns, b_dev))
            found |= {far for (n, _), (m, far) in ends.items() if n == b_ns and m == b_dev}
        return found - {(ns, dev)}

    def middle(self) -> tuple[str, ...]:
        """The namespaces that forward the probe (routers; a bridge's namespace too)."""
        return self.path[1:-1]

    def towards(self, ns: str) -> list[str]:
        """The addresses a packet in *ns* is sent to: the destination (unless *ns* holds it),
        the sender's address for the answer (unless *ns* sent it)."""
        return ([self.dst] if ns != self.owner else []) + ([self.src_address()] if ns != self.src else []) or [self.dst]

    def sources(self, ns: str) -> list[str]:
        """The source addresses of the probe's packets that *ns* routes: the request's, the answer's."""
        return ([self.src_address()] if ns != self.owner else []) + ([self.dst] if ns != self.src else []) or [self.src_address()]


def path(topo: Topology, src: str, dst: str) -> tuple[str, ...]:
    """The namespaces from *src* to *dst*, fewest veth hops first (breadth-first, in model order)."""
    links: dict[str, list[str]] = {}
    for v in topo.veths:
        links.setdefault(v.ns, []).append(v.peer_ns)
        links.setdefault(v.peer_ns, []).append(v.ns)
    came: dict[str, Optional[str]] = {src: None}
    todo = deque([src])
    while todo:
        here = todo.popleft()
        for there in links.get(here, []):
            if there not in came:
                came[there] = here
                todo.append(there)
    if dst not in came:
        return (src,)
    way = [dst]
    while came[way[-1]] is not None:
        way.append(came[way[-1]])  # type: ignore[arg-type]
    return tuple(reversed(way))


def host(cidr: str) -> str:
    """A destination as `ip route` prints it: a host route (/32, /128) as the bare address, ::/0 as default."""
    if cidr in ("default", "::/0"):
        return "default"
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def on_path(w: Where, rng: random.Random) -> str:
    return rng.choice(w.path)


def router_or_any(w: Where, rng: random.Random) -> str:
    """A namespace that forwards the probe, when there is one (and mostly), else any on the way."""
    return rng.choice(w.middle()) if w.middle() and rng.random() < 0.8 else on_path(w, rng)


# -- sysctls ---------------------------------------------------------------------------
DEVICE_KNOBS = (  # (knob, values, weight): the ones that stop packets in these labs weigh more
    ("forwarding", ("0",), 3),
    ("arp_ignore", ("1", "2", "8", "8"), 2),
    ("rp_filter", ("1", "2"), 2),
    ("proxy_arp", ("1",), 1),
    ("arp_filter", ("1",), 1),
    ("arp_announce", ("1", "2"), 1),
    ("accept_local", ("1",), 1),
    ("route_localnet", ("1",), 1),
    ("arp_accept", ("1",), 1),
)
GLOBAL_KNOBS = (("net.ipv4.ip_forward", ("0",)), ("net.ipv4.icmp_echo_ignore_all", ("1",)), ("net.ipv4.icmp_echo_ignore_broadcasts", ("0",)))
DEVICE_KNOBS6 = (  # IPv6's: forwarding per device decides nothing (only 'all' forwards), disable_ipv6 takes the addresses
    ("forwarding", ("0",), 3),
    ("disable_ipv6", ("1",), 3),
    ("proxy_ndp", ("1",), 1),
    ("accept_ra", ("0", "2"), 1),
    ("ignore_routes_with_linkdown", ("1",), 1),
)
GLOBAL_KNOBS6 = (("net.ipv6.conf.all.forwarding", ("0",)), ("net.ipv6.icmp.echo_ignore_all", ("1",)), ("net.ipv6.conf.all.disable_ipv6", ("1",)))


def sysctl(w: Where, rng: random.Random) -> Change:
    """A per-device, all or default sysctl of the probe's family, or a global one, in a namespace on the way."""
    v = "ipv6" if w.v6 else "ipv4"
    forward = "net.ipv6.conf.all.forwarding" if w.v6 else "net.ipv4.ip_forward"
    if rng.random() < 0.25:
        key, values = rng.choice(GLOBAL_KNOBS6 if w.v6 else GLOBAL_KNOBS)
        ns = router_or_any(w, rng) if key == forward else w.owner if rng.random() < 0.8 else on_path(w, rng)
    else:
        knobs = DEVICE_KNOBS6 if w.v6 else DEVICE_KNOBS
        knob, values, _ = rng.choices(knobs, weights=[k[2] for k in knobs])[0]
        ns = router_or_any(w, rng) if knob == "forwarding" else on_path(w, rng)
        scope = rng.choices(["all", "default", rng.choice(w.devices(ns))], weights=[35, 10, 55])[0]
        key = f"net.{v}.conf.{scope}.{knob}"
    value = rng.choice(values)
    # net.ipv4.ip_forward and net.ipv4.conf.all.forwarding are one variable (devinet.c points both at devconf_all FORWARDING): either name is the object
    same = {"net.ipv4.ip_forward": "net.ipv4.conf.all.forwarding", "net.ipv4.conf.all.forwarding": "net.ipv4.ip_forward"}
    objs = (f"sysctl {key}",) + ((f"sysctl {same[key]}",) if key in same else ())
    if w.v6 and key == "net.ipv6.conf.all.disable_ipv6":  # written to 'all', it is written to every device: a claim may name either
        objs += tuple(f"sysctl net.ipv6.conf.{dev}.disable_ipv6" for dev in w.topology.links_in(ns))
    return Change("sysctl", ns, (("sysctl", "-w", f"{key}={value}"),), objs, ("sysctl", "-n", key), rf"^{value}$")


# -- routes and rules -------------------------------------------------------------------
ROUTE_TYPES = ("blackhole", "unreachable", "prohibit", "throw")


def route_type(w: Where, rng: random.Random) -> Change:
    """A route of a non-unicast type to the probe's destination, or to its source (the way back)."""
    ns = on_path(w, rng)
    dst = rng.choice(w.towards(ns))
    kind = rng.choice(ROUTE_TYPES)
    local = {cidr.split("/")[0] for cidr, _ in w.addresses(ns)}
    tables = ["main", "main", "main", str(GEN_TABLE)] + ([] if dst in local or dst in ("127.0.0.1", "::1") else ["local"])
    table = rng.choice(tables)
    return Change(
        "route",
        ns,
        ((*w.ip, "route", "replace", kind, dst, "table", table),),
        (f"route {host(dst)} table {table}",),
        (*w.ip, "route", "show", "table", table, "exact", dst),
        rf"^{kind} {host(dst)}\b",
    )


def route_del(w: Where, rng: random.Random) -> Optional[Change]:
    """Delete a route the namespace has: one of the lab's own, or a connected one."""
    ns = on_path(w, rng)
    mine = [(r.dst, r.dev) for r in w.topology.routes if r.ns == ns]
    version = 6 if w.v6 else 4
    mine = [(dst, dev) for dst, dev in mine if (dst == "default" and version == 4) or (dst != "default" and ipaddress.ip_network(dst).version == version)]
    connected = [(str(i.network), dev) for i, dev in ((ipaddress.ip_interface(cidr), dev) for cidr, dev in w.addresses(ns)) if dev != "lo" and i.network.num_addresses > 1]
    choices = mine + connected
    if not choices:
        return None
    dst, dev = rng.choice(choices)
    shown = host(dst)
    argv = (*w.ip, "route", "del", dst) + (("dev", dev) if dev else ()) + ("table", "main")
    return Change("route-del", ns, (argv,), (f"route {shown} table main",), (*w.ip, "route", "show", "table", "main", "exact", dst), rf"^{shown}\b", gone=True)


def rule(w: Where, rng: random.Random) -> Change:
    """A policy rule: an action rule to or from the probe's ends, a lookup in an empty
    table, or the deletion of the rule that looks up main (or local)."""
    ns = on_path(w, rng)
    roll = rng.random()
    if roll < 0.15:
        prio = rng.choice(["32766", "32766", "0"])
        return Change(
            "rule-del", ns, ((*w.ip, "rule", "del", "priority", prio),), (f"rule {prio}",), (*w.ip, "rule", "show", "priority", prio), rf"^{prio}:", gone=True
        )
    prio = str(rng.randrange(100, 32000))
    match = rng.choice([("to", a) for a in w.towards(ns)] + [("from", a) for a in w.sources(ns)])
    action = ("table", str(GEN_TABLE)) if roll < 0.3 else (rng.choice(["blackhole", "unreachable", "prohibit"]),)
    argv = (*w.ip, "rule", "add", "priority", prio, *match, *action)
    return Change("rule", ns, (argv,), (f"rule {prio}",), (*w.ip, "rule", "show", "priority", prio), rf"^{prio}:")


# -- links, bridges, addresses, neighbours, listeners ----------------------------------------
def link(w: Where, rng: random.Random) -> Change:
    ns = on_path(w, rng)
    dev = rng.choice(w.devices(ns))
    ports = dict(w.bridge_ports(ns))
    action = rng.choice(["down", "down", "down", "mtu", "arp", "address"] + (["nomaster", "nomaster"] if dev in ports else []))
    show = ("ip", "link", "show", "dev", dev)
    objs: tuple[str, ...] = (f"link {dev}",)
    if action == "down":
        return Change("link", ns, (("ip", "link", "set", "dev", dev, "down"),), objs, show, r"<([A-Z_]+,)*UP[,>]", gone=True)
    if action == "mtu":
        mtu = rng.choice(["68", "576", "1280"])
        return Change("link", ns, (("ip", "link", "set", "dev", dev, "mtu", mtu),), objs, show, rf"\bmtu {mtu}\b")
    if action == "arp":
        return Change("link", ns, (("ip", "link", "set", "dev", dev, "arp", "off"),), objs, show, r"[<,]NOARP[,>]")
    if action == "address":
        mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
        return Change("link", ns, (("ip", "link", "set", "dev", dev, "address", mac),), objs, show, rf"link/\w+ {mac}\b")
    return Change("link", ns, (("ip", "link", "set", "dev", dev, "nomaster"),), objs + (f"bridge port {dev}",), show, rf"\bmaster {ports[dev]}\b", gone=True)


PORT_OPTIONS = (
    (("state", "0"), r"\bstate disabled\b"),
    (("state", "2"), r"\bstate learning\b"),  # with STP off the kernel keeps only disabled, learning and forwarding
    (("learning", "off"), r"\blearning off\b"),
    (("flood", "off"), r"\bflood off\b"),
    (("bcast_flood", "off"), r"\bbcast_flood off\b"),
    (("mcast_flood", "off"), r"\bmcast_flood off\b"),
    (("hairpin", "on"), r"\bhairpin on\b"),
    (("isolated", "on"), r"\bisolated on\b"),
    (("neigh_suppress", "on"), r"\bneigh_suppress on\b"),
)
BRIDGE_OPTIONS = (
    (("stp_state", "1"), r"\bstp_state 1\b"),
    (("ageing_time", "0"), r"\bageing_time 0\b"),
    (("mcast_snooping", "0"), r"\bmcast_snooping 0\b"),
)


def bridge_port(w: Where, rng: random.Random) -> Optional[Change]:
    """`bridge link set dev PORT ...` on a bridge on the probe's way."""
    ports = [(ns, dev) for ns in w.path for dev, _ in w.bridge_ports(ns)]
    if not ports:
        return None
    ns, dev = rng.choice(ports)
    option, shows = rng.choice(PORT_OPTIONS)
    return Change(
        "bridge-port", ns, (("bridge", "link", "set", "dev", dev, *option),), (f"bridge port {dev}",), ("bridge", "-d", "link", "show", "dev", dev), shows
    )


def bridge(w: Where, rng: random.Random) -> Optional[Change]:
    """`ip link set BRIDGE type bridge ...` on a bridge on the probe's way (not VLAN filtering:
    this kernel lacks CONFIG_BRIDGE_VLAN_FILTERING, as corpus/features.py finds)."""
    bridges = [(b.ns, b.name) for b in w.topology.bridges if b.ns in w.path]
    if not bridges:
        return None
    ns, dev = rng.choice(bridges)
    option, shows = rng.choice(BRIDGE_OPTIONS)
    return Change(
        "bridge", ns, (("ip", "link", "set", "dev", dev, "type", "bridge", *option),), (f"link {dev}",), ("ip", "-d", "link", "show", "dev", dev), shows
    )


def address(w: Where, rng: random.Random) -> Optional[Change]:
    """Delete an address on the probe's way, or give another namespace the destination's address."""
    ns = on_path(w, rng)
    inet = "inet6" if w.v6 else "inet"
    if rng.random() < 0.2 and ns != w.owner and w.dst != w.loopback:
        cidr = f"{w.dst}/{128 if w.v6 else 32}"
        return Change(
            "address",
            ns,
            (("ip", "address", "add", cidr, "dev", "lo"),),
            (f"address {cidr} dev lo",),
            ("ip", "-o", "address", "show", "dev", "lo"),
            rf"\b{inet} {cidr}\b",
        )
    held = w.addresses(ns, w.devices(ns))
    if not held:
        return None
    cidr, dev = rng.choice(held)
    return Change(
        "address",
        ns,
        (("ip", "address", "del", cidr, "dev", dev),),
        (f"address {cidr} dev {dev}",),
        ("ip", "-o", "address", "show", "dev", dev),
        rf"\b{inet} {cidr}\b",
        gone=True,
    )


def neighbour(w: Where, rng: random.Random) -> Optional[Change]:
    """A permanent neighbour entry with a wrong MAC for a neighbour on the probe's way."""
    choices = [
        (ns, dev, cidr.split("/")[0])
        for ns in w.path
        for dev in w.devices(ns)
        if dev != "lo"
        for m_ns, m_dev in sorted(w.segment(ns, dev))
        for cidr, _ in w.addresses(m_ns, [m_dev])
    ]
    if not choices:
        return None
    ns, dev, addr = rng.choice(choices)
    mac = "02:00:5e:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
    argv = ("ip", "neigh", "replace", addr, "lladdr", mac, "dev", dev, "nud", "permanent")
    return Change("neigh", ns, (argv,), (f"neigh {addr} dev {dev}",), ("ip", "neigh", "show", addr, "dev", dev), rf"lladdr {mac} PERMANENT")


def listener(w: Where, rng: random.Random) -> Optional[Change]:
    """The probe's listener moved to another of its namespace's addresses, or to the loopback."""
    if w.port is None:
        return None
    others = [cidr.split("/")[0] for cidr, _ in w.addresses(w.owner) if cidr.split("/")[0] != w.dst]
    loopback = [w.loopback] if w.topology.namespace(w.owner).lo_up else []  # with lo down, 127.0.0.1 (::1) cannot be bound
    if not others + loopback:
        return None
    moved = rng.choice(others + loopback)
    if moved == w.dst:
        return None
    objs = (f"socket tcp [{moved}]:{w.port}", f"socket tcp [::]:{w.port}") if w.v6 else (f"socket tcp {moved}:{w.port}", f"socket tcp 0.0.0.0:{w.port}")
    shown = rf"\[{re.escape(moved)}\]:{w.port}\b" if w.v6 else rf"\b{moved}:{w.port}\b"  # ss writes [fd00::2]:8080
    return Change("listener", w.owner, (), objs, ("ss", "-ltnH"), shown, listen=moved)


Kind = Callable[[Where, random.Random], Optional[Change]]
