"""Single changes worth trying for a failed probe, as the commands a learner types.

Each generator looks at the copy (the kernel's answers: links, route lookups,
sysctls) and the model, and proposes the mistakes learners make most:
a link or lo down, a missing connected, host or default route or route back,
a port not attached to its bridge, forwarding off, no masquerade, a wrong
prefix length. Nothing here decides whether a change helps: the trial does.
"""

from __future__ import annotations

import ipaddress
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Iterator

from nslab.advice.copy import State, owner
from nslab.lab.live import Lab
from nslab.model.queries import segment, veth_peers
from nslab.probes.result import Remedy

Argv = tuple[str, ...]

# Which kinds of change answer which cause first (the rest follow in generation order).
FIRST_FOR_CAUSE = {
    "NO_ROUTE_AT_SENDER": ("route",),
    "NO_RETURN_ROUTE": ("route", "masquerade"),
    "LOST_VIA_DEFAULT_ROUTE": ("masquerade", "route"),  # most often: a private source the outside cannot answer
    "LINK_DOWN": ("link",),
    "NOT_ON_BRIDGE": ("master",),
    "NO_ARP_ANSWER": ("prefix", "link", "master"),
    "LOOPBACK_DOWN": ("lo",),
    "FORWARDING_OFF": ("forwarding",),
    "ICMP_UNREACHABLE": ("route", "forwarding"),
}


@dataclass(frozen=True)
class Change:
    """One change in one namespace: the commands that make it and those that take it back."""

    ns: str
    kind: str  # 'lo', 'link', 'master', 'route', 'forwarding', 'masquerade', 'prefix', 'address', 'rule', 'sysctl', 'neighbour'
    commands: tuple[Argv, ...]
    undo: tuple[Argv, ...] = ()
    dev: str | None = None  # the interface it changes (drawn on the diagram)
    restore_rules: bool = False  # undone by restoring the namespace's nftables ruleset
    proposed: bool = False  # proposed by the decision that stopped the packet (tried first)

    def to_dict(self) -> dict:
        return {"ns": self.ns, "kind": self.kind, "commands": [list(c) for c in self.commands], "dev": self.dev}


@dataclass(frozen=True)
class Hint:
    """What the failed probe showed, to aim the search."""

    cause: str | None = None  # a Cause name
    where: str | None = None  # the namespace the cause names
    source: str | None = None  # the address the request left with
    seen: tuple[str, ...] = ()  # namespaces the probe's frames were seen in
    remedies: tuple[Remedy, ...] = ()  # what the decision that stopped the packet proposes


@dataclass
class Scene:
    lab: Lab  # the copy
    state: State
    src: str
    dst: str
    hint: Hint
    involved: list[str] = field(default_factory=list)
    owner: str | None = None


def candidates(lab: Lab, state: State, src: str, dst: str, hint: Hint, remedies: tuple[Remedy, ...] = ()) -> list[Change]:
    """Every single change worth a trial, without repeats: first what the decision that stopped
    the packet proposes (*hint*'s, read on the original, and *remedies*, read on the copy), then
    the likeliest of the mistakes learners make."""
    proposed = [from_remedy(r) for r in (*hint.remedies, *remedies) if r.ns in state.names]
    scene = Scene(lab, state, src, dst, hint)
    held = owner(state, dst)
    scene.owner = held[0] if held else None
    scene.involved = involved(state, src, scene.owner, hint)
    found: dict[tuple, Change] = {(c.ns, c.commands): c for c in proposed}
    for make in (_loopback, _links, _ports, _forwarding, _routes, _masquerade, _prefixes):
        for change in make(scene):
            found.setdefault((change.ns, change.commands), change)
    first = FIRST_FOR_CAUSE.get(hint.cause or "", ())
    order = list(found.values())
    rank = {kind: i for i, kind in enumerate(first)}
    return sorted(order, key=lambda c: (not c.proposed, rank.get(c.kind, len(first)), c.ns != hint.where, order.index(c)))


def from_remedy(remedy: Remedy) -> Change:
    """A remedy as a change to try; without an undo command, the ruleset is restored."""
    undo = tuple(tuple(shlex.split(part)) for part in remedy.undo.split(" && ")) if remedy.undo else ()
    commands = tuple(tuple(shlex.split(part)) for part in remedy.command.split(" && "))
    return Change(remedy.ns, _kind(commands[0]), commands, undo, remedy.dev, restore_rules=not remedy.undo, proposed=True)


def _kind(argv: Argv) -> str:
    """What a command changes, in the words the other changes use."""
    words = " ".join(a for i, a in enumerate(argv) if not (i == 1 and argv[0] == "ip" and a in ("-4", "-6")))
    for start, kind in (("ip link set lo up", "lo"), ("ip addr", "address"), ("ip route", "route"), ("ip rule", "rule"), ("ip neigh", "neighbour"), ("nft", "rule")):
        if words.startswith(start):
            return kind
    if words.startswith("ip link set"):
        return "master" if " master " in words or words.endswith("nomaster") else "link"
    if words.startswith("sysctl"):
        return "forwarding" if "forwarding" in words or "ip_forward" in words else "sysctl"
    return argv[0]


def involved(state: State, src: str, dst_owner: str | None, hint: Hint) -> list[str]:
    """The namespaces a change may be needed in: all in a small copy; else the
    sender, the target, where it stopped, where it was seen, and their neighbours."""
    names = state.names
    if len(names) <= 6:
        return names
    core = {n for n in (src, dst_owner, hint.where) if n} | set(hint.seen)
    peers = veth_peers(state.topology)
    near = {peers[end][0] for end in peers if end[0] in core}
    return [n for n in names if n in core | near]


# -- generators ------------------------------------------------------------------------
def _loopback(scene: Scene) -> Iterator[Change]:
    for name in dict.fromkeys(n for n in (scene.src, scene.owner, scene.hint.where) if n):
        lo = next((link for link in scene.lab.ns(name).links() if link.name == "lo"), None)
        if lo is not None and not lo.up:
            yield Change(name, "lo", (("ip", "link", "set", "lo", "up"),), (("ip", "link", "set", "lo", "down"),), dev="lo")


def _links(scene: Scene) -> Iterator[Change]:
    names = set(scene.involved)
    names |= {far[0] for end, far in veth_peers(scene.state.topology).items() if end[0] in names}
    for name in scene.state.names:
        if name not in names:
            continue
        for link in scene.lab.ns(name).links():
            if link.kind in ("veth", "bridge") and not link.up:
                yield Change(name, "link", (("ip", "link", "set", link.name, "up"),), (("ip", "link", "set", link.name, "down"),), dev=link.name)


def _ports(scene: Scene) -> Iterator[Change]:
    for name in scene.involved:
        ns = scene.lab.ns(name)
        links = ns.links()
        bridges = [link.name for link in links if link.kind == "bridge"]
        addressed = {a.dev for a in ns.addresses(version=4)}
        for link in links:
            if link.kind == "veth" and link.master is None and link.name not in addressed:
                for br in bridges:
                    yield Change(
                        name, "master", (("ip", "link", "set", link.name, "master", br),), (("ip", "link", "set", link.name, "nomaster"),), dev=link.name
                    )


def _forwarding(scene: Scene) -> Iterator[Change]:
    for name in scene.involved:
        if name in (scene.src, scene.owner):
            continue
        values = scene.state.sysctls.get(name, {})
        devs = [d for d in scene.state.topology.links_in(name) if d != "lo" and not _is_port(scene, name, d)]
        if len(devs) < 2:
            continue
        restore = tuple(("sysctl", "-w", f"{key}={value}") for key, value in values.items() if key.endswith(".forwarding"))
        if values.get("net.ipv4.ip_forward") == "0":
            undo = (("sysctl", "-w", "net.ipv4.ip_forward=0"), *restore)
            yield Change(name, "forwarding", (("sysctl", "-w", "net.ipv4.ip_forward=1"),), undo)
            continue
        for dev in devs:
            key = f"net.ipv4.conf.{dev}.forwarding"
            if values.get(key) == "0":
                yield Change(name, "forwarding", (("sysctl", "-w", f"{key}=1"),), (("sysctl", "-w", f"{key}=0"),), dev=dev)


def _is_port(scene: Scene, name: str, dev: str) -> bool:
    return any((e[0], e[1]) == (name, dev) and e[2] for v in scene.state.topology.veths for e in v.ends())


def _routes(scene: Scene) -> Iterator[Change]:
    wanted = [(scene.src, scene.dst)]
    wanted += [(n, scene.dst) for n in scene.involved if n not in (scene.src, scene.owner)]
    if scene.hint.source:
        wanted += [(n, scene.hint.source) for n in scene.involved if n != scene.src]
    for name, target in wanted:
        other_end = scene.hint.source if target == scene.dst else scene.dst
        yield from _routes_to(scene, name, target, other_end)


def _routes_to(scene: Scene, name: str, target: str, other_end: str | None) -> Iterator[Change]:
    """Routes to *target* in *name*: where it has none, or where the packet was lost on its way
    there (another way out than the one it takes). A gateway is never the probe's other end."""
    ns = scene.lab.ns(name)
    lookup = ns.route_get(target)
    stuck_here = name == scene.hint.where and scene.hint.cause in ("NO_RETURN_ROUTE", "LOST_VIA_DEFAULT_ROUTE")
    if lookup.type == "local" or (lookup.found and not stuck_here):
        return
    held = owner(scene.state, target)
    subnet = ipaddress.ip_interface(held[1]).network if held else None
    net = str(subnet if subnet is not None and subnet.num_addresses > 1 else ipaddress.ip_network(target))  # else a host route: /32, /128 for IPv6
    routes = ns.routes()
    has_default = any(r.dst == "default" for r in routes)
    have = {(r.dst, r.dev) for r in routes}
    links = [link for link in ns.links() if link.up and link.kind != "loopback" and link.master is None and link.name != lookup.dev]
    for link in links:
        for dst in (net,) + (() if has_default else ("default",)):
            if (dst, link.name) not in have:
                yield _route(name, (dst, "dev", link.name), link.name)
        for gw in _gateways(scene, name, link.name):
            if gw != other_end:
                yield _route(name, ("default" if not has_default else net, "via", gw), link.name)


def _route(name: str, words: tuple[str, ...], dev: str) -> Change:
    return Change(name, "route", (("ip", "route", "add", *words),), (("ip", "route", "del", *words),), dev=dev)


def _gateways(scene: Scene, name: str, dev: str) -> list[str]:
    """Addresses of the other hosts on *dev*'s segment, within *dev*'s own subnets."""
    topo = scene.state.topology
    subnets = topo.connected(name, dev)
    hosts = segment(topo, name, dev)
    return [str(a.interface.ip) for a in topo.addresses if (a.ns, a.dev) in hosts and any(a.interface.ip in net for net in subnets)]


def _masquerade(scene: Scene) -> Iterator[Change]:
    source = scene.hint.source
    if source is None or shutil.which("nft") is None:
        return
    held = owner(scene.state, source)
    net = str(ipaddress.ip_interface(held[1]).network) if held else f"{source}/32"
    for name in scene.involved:
        if name in (scene.src, scene.owner):
            continue
        ns = scene.lab.ns(name)
        out, back = ns.route_get(scene.dst), ns.route_get(source)
        if not (out.found and back.found) or out.type == "local" or out.dev == back.dev:
            continue
        rules = (
            f"add table ip nat; add chain ip nat postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}; "
            f"add rule ip nat postrouting ip saddr {net} oifname {out.dev} masquerade"
        )
        yield Change(name, "masquerade", (("nft", rules),), dev=out.dev, restore_rules=True)


def _prefixes(scene: Scene) -> Iterator[Change]:
    topo = scene.state.topology
    for a in topo.addresses:
        if a.ns not in scene.involved:
            continue
        hosts = segment(topo, a.ns, a.dev)
        for b in topo.addresses:
            if (b.ns, b.dev) not in hosts or b.interface.network.prefixlen == a.interface.network.prefixlen:
                continue
            wider = ipaddress.ip_interface(f"{a.interface.ip}/{b.interface.network.prefixlen}")
            if b.interface.ip in a.interface.network or b.interface.ip not in wider.network:
                continue
            do = (("ip", "addr", "del", a.cidr, "dev", a.dev), ("ip", "addr", "add", str(wider), "dev", a.dev))
            undo = (("ip", "addr", "del", str(wider), "dev", a.dev), ("ip", "addr", "add", a.cidr, "dev", a.dev))
            yield Change(a.ns, "prefix", do, undo, dev=a.dev)
