"""The observed state of some namespaces as plain data, and a copy of it built
in a fresh private sandbox, where changes can be tried without touching the
original.

    state = read_state(lab, ["host", "container1"], port=None)
    # ... in a child that entered a sandbox of its own:
    copy = build(state)

What is copied: links (veth pairs, bridges, ports), IPv4 addresses (lo's
extra ones too), main-table routes, the sysctls that decide forwarding and
filtering, the nftables ruleset where nft is installed, and the TCP listeners
the probe needs. What cannot be modelled (a physical uplink, a dummy) is left
out; `State.missing` lists it so a search can say so.
"""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass, field

from nslab.advice import outside
from nslab.advice.outside import Uplink
from nslab.grading.observed import Snapshot, observe
from nslab.kernel.state import RouteState
from nslab.lab.live import Lab
from nslab.model.topology import LabError, Topology

# Per-namespace knobs that change where a packet may go (ip_forward is conf.all.forwarding).
GLOBAL_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.proxy_arp",
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.accept_local",
    "net.bridge.bridge-nf-call-iptables",
)
DEVICE_SYSCTLS = ("forwarding", "rp_filter", "proxy_arp", "arp_ignore", "accept_local")


@dataclass
class State:
    """What the kernel showed of the namespaces involved, enough to build them again."""

    topology: Topology  # links, addresses and routes the model can hold
    kernel_routes: set[tuple[str, str, str | None]]  # (ns, dst, dev) the kernel made for an address
    routes: dict[str, list[str]]  # ns -> `ip route` lines, to reconcile the copy with
    sysctls: dict[str, dict[str, str]]
    lo_addresses: dict[str, list[str]] = field(default_factory=dict)
    rulesets: dict[str, str] = field(default_factory=dict)  # ns -> `nft list ruleset`
    listeners: dict[str, list[int]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # what could not be copied, in words
    uplinks: list[Uplink] = field(default_factory=list)  # links to what was not copied: stand-ins in the copy

    @property
    def names(self) -> list[str]:
        return [ns.name for ns in self.topology.namespaces]


def read_state(lab: Lab, names: list[str] | None = None, *, port: int | None = None, target: str | None = None) -> State:
    """The state of *names* (default: every namespace of *lab*), read from the kernel; changes nothing.
    A *target* no copied namespace holds is put behind the uplink its sender would use (outside.py)."""
    snap = Snapshot.read(lab)
    topo = _only(observe(lab, snap), names)
    kept = {ns.name for ns in topo.namespaces}
    kernel_routes = {(ns, r.dst, r.dev) for ns, rs in snap.routes.items() for r in rs if ns in kept and r.proto == "kernel"}
    routes = {ns: sorted(_route_line(r) for r in rs if _copyable(r)) for ns, rs in snap.routes.items() if ns in kept}
    state = State(topo, kernel_routes, routes, {})
    state.uplinks = outside.uplinks(snap, {name: topo.links_in(name) for name in kept})
    if target is not None and owner(state, target) is None:
        state.uplinks = outside.aim(state.uplinks, lab, target)
    for name in kept:
        ns = lab.ns(name)
        devs = [dev for dev in topo.links_in(name) if "." not in dev] + [u.dev for u in state.uplinks if u.ns == name]
        state.sysctls[name] = _sysctls(ns, devs)
        state.lo_addresses[name] = [a.cidr for a in snap.addresses[name] if a.dev == "lo" and ":" not in a.cidr and not a.cidr.startswith("127.")]
        ruleset = _ruleset(ns)
        if ruleset:
            state.rulesets[name] = ruleset
        if port is not None and ns.listening(port):
            state.listeners[name] = [port]
        copied = set(topo.links_in(name)) | {u.dev for u in state.uplinks if u.ns == name}
        state.missing += [f"{link.name} ({link.kind or 'a device'}) in {name}" for link in snap.links[name] if link.name not in copied]
    return state


def _only(topo: Topology, names: list[str] | None) -> Topology:
    if names is None:
        return topo
    keep = set(names)
    veths = [v for v in topo.veths if v.ns in keep and v.peer_ns in keep]
    ends = {(e[0], e[1]) for v in veths for e in v.ends()} | {(b.ns, b.name) for b in topo.bridges if b.ns in keep}
    return Topology(
        [ns for ns in topo.namespaces if ns.name in keep],
        veths,
        [b for b in topo.bridges if b.ns in keep],
        [a for a in topo.addresses if (a.ns, a.dev) in ends],
        [r for r in topo.routes if r.ns in keep and (r.dev is None or (r.ns, r.dev) in ends)],
    )


def _copyable(r: RouteState) -> bool:
    return r.type == "unicast" and ":" not in r.dst


def _route_line(r: RouteState) -> str:
    return " ".join([r.dst] + (["via", r.via] if r.via else []) + (["dev", r.dev] if r.dev else []))


def _sysctls(ns, devs: list[str]) -> dict[str, str]:
    keys = list(GLOBAL_SYSCTLS) + [f"net.ipv4.conf.{dev}.{knob}" for dev in devs if dev != "lo" for knob in DEVICE_SYSCTLS]
    out = {}
    for key in keys:
        try:
            out[key] = ns.sysctl(key)
        except OSError:
            continue  # not in this kernel (bridge-nf without br_netfilter)
    return out


def _ruleset(ns) -> str:
    if shutil.which("nft") is None:
        return ""
    done = ns.run(["nft", "list", "ruleset"], timeout=10)
    return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else ""


# -- the copy ------------------------------------------------------------------------
def build(state: State, *, timeout: float = 0.25) -> Lab:
    """Build *state* as a new lab in this process's sandbox (the caller entered a fresh one)."""
    topo = state.topology
    built = topo.replace(routes=tuple(r for r in topo.routes if (r.ns, r.dst, r.dev) not in state.kernel_routes))
    lab = Lab(built, timeout=timeout).open()
    outside.attach(lab, state.uplinks)
    for name, values in state.sysctls.items():
        ns = lab.ns(name)
        for key in sorted(values, key=lambda k: k != "net.ipv4.ip_forward"):  # the global switch first
            try:
                ns.set_sysctl(key, values[key])
            except (OSError, LabError):
                continue
    for name, cidrs in state.lo_addresses.items():
        for cidr in cidrs:
            lab.ns(name).add_address(cidr, "lo")
    for name, text in state.rulesets.items():
        lab.ns(name).run(["nft", "-f", "-"], input=text.encode() + b"\n", timeout=10)
    reconcile_routes(lab, state)
    for name, ports in state.listeners.items():
        for port in ports:
            lab.ns(name).listen(port)
    return lab


def reconcile_routes(lab: Lab, state: State) -> None:
    """Make each namespace's main table what the original showed: drop routes the
    copy has and the original had not (a connected route the learner deleted),
    add back those still missing (where the kernel takes them)."""
    for name, want in state.routes.items():
        ns = lab.ns(name)
        have = {_route_line(r): r for r in ns.routes() if _copyable(r)}
        for line, r in have.items():
            if line not in want:
                try:
                    ns.del_route(r.dst, via=r.via, dev=r.dev)
                except Exception:  # noqa: BLE001, S112 - the copy then differs; fingerprints tell
                    continue
        for line in want:
            if line not in have:
                _add_route_line(ns, line)


def _add_route_line(ns, line: str) -> None:
    words = line.split()
    via = words[words.index("via") + 1] if "via" in words else None
    dev = words[words.index("dev") + 1] if "dev" in words else None
    try:
        ns.add_route(words[0], via=via, dev=dev)
    except Exception:  # noqa: BLE001 - a route over a device the copy lacks: listed in State.missing
        return


def fingerprint(lab: Lab) -> tuple:
    """Links, addresses and routes of every namespace of *lab*: equal before and after an undo."""
    out = []
    for ns in sorted(lab.namespaces, key=lambda n: n.name):
        links = sorted((link.name, link.up, link.master) for link in ns.links())
        addrs = sorted((a.dev, a.cidr) for a in ns.addresses(version=4))
        routes = sorted(_route_line(r) for r in ns.routes() if _copyable(r))
        out.append((ns.name, tuple(links), tuple(addrs), tuple(routes)))
    return tuple(out)


def owner(state: State, address: str) -> tuple[str, str] | None:
    """(namespace, address with prefix) of the interface that holds *address* (lo's included)."""
    ip = ipaddress.ip_address(address)
    hit = next((a for a in state.topology.addresses if a.interface.ip == ip), None)
    if hit is not None:
        return hit.ns, hit.cidr
    for name, cidrs in state.lo_addresses.items():
        for cidr in cidrs:
            if ipaddress.ip_interface(cidr).ip == ip:
                return name, cidr
    return None
