"""One model, many views: a Topology as `ip` commands, as a diagram, as JSON.

    print(ip_script(topology))              # what a learner would type
    svg = draw(topology, "svg")             # Graphviz, offline (Debian's graphviz)
    print(to_json(topology))

`nslab show` (nslab/cli/show.py) prints these views of a catalog lab.

The commands follow the build plan (nslab/model/plan.py), the very steps
Lab.build applies, in the same order.
"""

from __future__ import annotations

import functools
import json
import shlex
import shutil
import subprocess

from nslab.model.plan import AddAddress, AddBridge, AddNamespace, AddRoute, AddVeth, LinkUp, SetMaster, SetSysctl, Step, plan
from nslab.model.topology import LabError, Route, Topology
from nslab.views import dot as kept_dot

FORMATS = ("svg", "png")


class DiagramUnavailable(RuntimeError):
    """Graphviz cannot draw here; the message says how to fix it."""


# -- ip(8) commands -------------------------------------------------------------
def _cmd(*words: object) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def ip_command(step: Step) -> str:
    """The `ip` command a learner types for one step of the build plan."""
    match step:
        case AddNamespace(ns):
            return _cmd("ip", "netns", "add", ns)
        case SetSysctl(ns, key, value):
            return _cmd("ip", "netns", "exec", ns, "sysctl", "-w", f"{key}={value}")
        case AddBridge(ns, name):
            return _cmd("ip", "-n", ns, "link", "add", name, "type", "bridge")
        case AddVeth(ns, name, peer_ns, peer):
            return _cmd("ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer, *(() if peer_ns == ns else ("netns", peer_ns)))
        case SetMaster(ns, dev, master):
            return _cmd("ip", "-n", ns, "link", "set", dev, "master", master)
        case AddAddress(ns, dev, cidr):
            return _cmd("ip", "-n", ns, "addr", "add", cidr, "dev", dev, *(("nodad",) if ":" in cidr else ()))
        case LinkUp(ns, dev):
            return _cmd("ip", "-n", ns, "link", "set", dev, "up")
        case AddRoute(r):
            return _cmd("ip", "-n", r.ns, "route", "add", *route_words(r))
    raise TypeError(f"not a build step: {step!r}")


def route_words(r: Route) -> list[str]:
    """`DST [via VIA] [dev DEV] [onlink]`, as ip(8) takes a route."""
    return [r.dst] + (["via", r.via] if r.via else []) + (["dev", r.dev] if r.dev else []) + (["onlink"] if r.onlink else [])


def ip_commands(topo: Topology) -> list[tuple[str, list[str]]]:
    """The model as `ip` commands, in the build plan's phases: [(what this step does, [commands])].

    `ip -n NS ...` is short for `ip netns exec NS ip ...`; a veth is born with
    its peer already in the peer's namespace (`peer name P netns NS`), which
    is what `ip link add` + `ip link set P netns NS` leave behind."""
    return [(phase.title, [ip_command(step) for step in phase.steps]) for phase in plan(topo) if phase.steps]


def ip_script(topo: Topology, title: str | None = None) -> str:
    """A shell script (run as root) that builds *topo* with `ip`, commented by step."""
    lines = [f"# {title}"] if title else []
    lines.append("# ip -n NS CMD is short for: ip netns exec NS ip CMD")
    for what, cmds in ip_commands(topo):
        lines += ["", f"# {what}", *cmds]
    return "\n".join(lines) + "\n"


# -- diagram ----------------------------------------------------------------------
def _q(text: object) -> str:
    """A DOT double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node(ns: str, dev: str) -> str:
    return _q(f"{ns}/{dev}")


def to_dot(topo: Topology, title: str | None = None) -> str:
    """Graphviz DOT: a box per namespace (its SVG title is `cluster_NAME`), a node
    per interface with its addresses, a thick edge per veth, a dashed edge from
    each bridge port to its bridge; routes and sysctls as a note in the box."""
    addrs: dict[tuple[str, str], list[str]] = {(ns.name, "lo"): ["127.0.0.1/8"] for ns in topo.namespaces if ns.lo_up}
    for a in topo.addresses:
        addrs.setdefault((a.ns, a.dev), []).append(a.cidr)
    ups = {(b.ns, b.name): b.up for b in topo.bridges}
    for v in topo.veths:
        ups[(v.ns, v.name)], ups[(v.peer_ns, v.peer)] = v.up, v.peer_up

    out = [
        "graph lab {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=12, nodesep=0.3, ranksep=0.9"
        + (f", label={_q(title)}, labelloc=t" if title else "")
        + "];",
        '  node [fontname=Helvetica, fontsize=10, shape=box, style="rounded,filled", fillcolor=white];',
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    for ns in topo.namespaces:
        out += [f"  subgraph {_q('cluster_' + ns.name)} {{", f"    label={_q(ns.name)};", '    style="rounded,filled"; fillcolor="#eef3fa"; color="#5b7fb3";']
        links = topo.links_in(ns.name)
        shown = [dev for dev in links if dev != "lo" or (ns.name, "lo") in addrs]
        for dev in shown:
            kind = links[dev]
            up = ns.lo_up if dev == "lo" else ups.get((ns.name, dev), True)
            label = "\n".join([f"{dev}" + ("" if up else " (down)"), *addrs.get((ns.name, dev), [])])
            style = '"rounded,filled' + ("" if up else ",dashed") + '"'
            fill = {"bridge": "#ffe7a8", "loopback": "#e8e8e8"}.get(kind, "white")
            out.append(f"    {_node(ns.name, dev)} [label={_q(label)}, style={style}, fillcolor={_q(fill)}, tooltip={_q(kind)}];")
        notes = [_route_text(r) for r in topo.routes if r.ns == ns.name] + [f"{k}={v}" for k, v in ns.sysctls]
        if notes or not shown:
            text = "\\l".join(_q(n)[1:-1] for n in notes) + "\\l" if notes else "no links in the model"
            out.append(f'    {_node(ns.name, "#notes")} [label="{text}", shape=note, style=filled, fillcolor="#fdfdf3", fontsize=9];')
        out.append("  }")
    for v in topo.veths:
        out.append(f'  {_node(v.ns, v.name)} -- {_node(v.peer_ns, v.peer)} [label="veth", penwidth=2, color="#2d6a4f"];')
    for v in topo.veths:
        for end_ns, name, master in v.ends():
            if master:
                # bridge first, so the layout reads bridge -> port -> container
                out.append(f'  {_node(end_ns, master)} -- {_node(end_ns, name)} [style=dashed, label="master", color="#b07d00"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _route_text(r: Route) -> str:
    return " ".join(route_words(r))


def draw(topo: Topology, fmt: str = "svg", title: str | None = None) -> bytes:
    """The diagram drawn by Graphviz's `dot` as SVG or PNG bytes."""
    return run_dot(to_dot(topo, title), fmt)


@functools.lru_cache(maxsize=256)
def run_dot(source: str, fmt: str = "svg") -> bytes:
    """Graphviz's `dot -TFMT` on a DOT *source* (to_dot's, perhaps with marks added).

    Remembered per process: the same lab drawn again (every step of a tutorial, a
    class's submissions with the same mistake) costs no second drawing. SVG comes
    from the process's kept `dot` (nslab/views/dot.py), and from a `dot` of its
    own when that one cannot draw it (which then says why)."""
    if fmt not in FORMATS:
        raise LabError("fmt", f"diagram format {fmt!r} is not one of {FORMATS}")
    dot = shutil.which("dot")
    if dot is None:
        raise DiagramUnavailable("Graphviz's `dot` is not installed; install it with: apt-get install graphviz")
    if fmt == "svg" and (drawn := kept_dot.svg(dot, source, timeout=60)) is not None:
        return drawn
    proc = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise DiagramUnavailable(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def inline_svg(topo: Topology, title: str | None = None, *, source: str | None = None) -> str:
    """The SVG diagram (of *topo*, or of a DOT *source*) without its XML prolog and DOCTYPE, ready to embed in HTML."""
    svg = run_dot(source if source is not None else to_dot(topo, title)).decode()
    return svg[svg.index("<svg") :]


def to_json(topo: Topology) -> str:
    return json.dumps(topo.to_dict(), indent=2)


__all__ = ["DiagramUnavailable", "draw", "inline_svg", "ip_command", "ip_commands", "ip_script", "route_words", "to_dot", "to_json"]
