"""The packet's path drawn on the lab: each interface the request and the reply
were seen on, in order, the point where it stopped (the cause and the kernel's
drop reason), and the interface a verified fix changes.

    svg = draw(topology, result, fixes)      # bytes, Graphviz
    dot = overlay(to_dot(topology), result, fixes)

It wraps the diagram of nslab/views/render.py (its DOT names each interface
node "NS/DEV" and each namespace box "cluster_NS"): the marks are DOT
statements added before the closing brace, so the drawing itself is the
one `nslab show` and the HTML report use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nslab.probes.result import Result
from nslab.views.render import run_dot, to_dot

COLOURS = {"request": "#1f5fbf", "reply": "#2d8a3e", "error": "#b35900", "arp request": "#6a4fb3", "arp reply": "#2d8a3e"}


@dataclass(frozen=True)
class Step:
    """One sighting of the probe's packet (ARP left out): the n-th, where, which way, which packet."""

    n: int
    ns: str
    dev: str
    direction: str  # 'in' or 'out'
    role: str  # 'request', 'reply', 'error', 'arp request' or 'arp reply'


def steps(result: Result) -> list[Step]:
    """The request's and the reply's sightings in causal order, numbered from 1;
    when no IP packet of the probe was seen (its ARP went unanswered), its ARP frames."""
    ev = result.evidence
    if ev is None:
        return []
    roles = [(s, role_of(result, s)) for s in ev.sightings]
    chosen = [(s, r) for s, r in roles if r in ("request", "reply", "error")] or [(s, r) for s, r in roles if r.startswith("arp")]
    return [Step(i + 1, s.ns, s.dev, s.direction, r) for i, (s, r) in enumerate(chosen)]


def role_of(result: Result, sighting) -> str:
    """'request', 'reply', 'error', 'arp request' or 'arp reply' for a sighting in *result*'s trace."""
    kind = sighting.kind
    if kind.startswith("arp"):
        return kind.replace("-", " ")
    p = sighting.packet
    flow = result.evidence.flow
    if p is None:
        return "other"
    return "error" if p.quoted else "request" if flow.is_request(p) else "reply" if flow.is_answer(p) else "other"


def _q(text: object) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node(ns: str, dev: str) -> str:
    return _q(f"{ns}/{dev}")


def marks_of(result: Result, fixes: list[list[dict]] | None = None) -> dict:
    """What the drawing marks, as plain data (JSON-ready, e.g. to draw it in another process):
    the path's steps, where it stopped and why, and the verified fixes' changes."""
    stop = None
    if not result.ok and result.where is not None:
        cause = result.cause.value if result.cause else "unknown"
        stop = {"ns": result.where.ns, "dev": result.where.dev, "cause": cause, "reason": result.reason}
    return {"steps": [dataclasses.asdict(s) for s in steps(result)], "stop": stop, "fixes": [list(changes) for changes in fixes or []]}


def overlay(dot: str, result: Result, fixes: list[list[dict]] | None = None) -> str:
    """*dot* (render.to_dot's output) with the path, the stop and the fixes marked."""
    return overlay_marks(dot, marks_of(result, fixes))


def overlay_marks(dot: str, data: dict) -> str:
    """*dot* with the marks of `marks_of()`'s *data*."""
    body = dot.rstrip().removesuffix("}")
    marks: list[str] = ["  graph [forcelabels=true];"]
    path = [Step(**s) for s in data["steps"]]
    stop = data.get("stop")
    fixes = data.get("fixes") or []
    _ensure_nodes(dot, marks, [(s.ns, s.dev) for s in path] + ([(stop["ns"], stop["dev"])] if stop else []) + _fix_points(fixes))
    _mark_path(marks, path)
    if stop:
        _mark_stop(marks, stop, path)
    for i, changes in enumerate(fixes):
        _mark_fix(marks, i, changes)
    return body + "\n".join(marks) + "\n}\n"


def _ensure_nodes(dot: str, marks: list[str], points: list[tuple[str, str | None]]) -> None:
    """Interfaces the model does not draw (lo, an uplink) get a plain node in their box."""
    for ns, dev in dict.fromkeys(points):
        if dev is not None and _node(ns, dev) not in dot:
            marks.append(
                f'  subgraph {_q("cluster_" + ns)} {{ label={_q(ns)}; {_node(ns, dev)} [label={_q(dev)}, style="rounded,filled", fillcolor="#f4f4f4"]; }}'
            )


def _fix_points(fixes: list[list[dict]] | None) -> list[tuple[str, str | None]]:
    return [(c["ns"], c.get("dev")) for changes in fixes or [] for c in changes]


def _mark_path(marks: list[str], path: list[Step]) -> None:
    seen: dict[tuple[str, str], list[str]] = {}
    for s in path:
        seen.setdefault((s.ns, s.dev), []).append(f"{s.n} {s.role} {s.direction}")
    for (ns, dev), labels in seen.items():
        roles = [s.role for s in path if (s.ns, s.dev) == (ns, dev)]
        colour = COLOURS[next((r for r in ("reply", "arp reply", "error") if r in roles), roles[0])]
        marks.append(f"  {_node(ns, dev)} [penwidth=2.5, color={_q(colour)}, xlabel={_q(chr(10).join(labels))}, fontcolor=black];")
    for a, b in zip(path, path[1:]):
        if (a.ns, a.dev) != (b.ns, b.dev) and a.role == b.role:
            colour = COLOURS[b.role]
            marks.append(
                f"  {_node(a.ns, a.dev)} -- {_node(b.ns, b.dev)} [dir=forward, color={_q(colour)}, fontcolor={_q(colour)}, "
                f"label={_q(str(b.n))}, constraint=false, penwidth=1.5, tooltip={_q(f'{b.n}: {b.role} {b.direction} on {b.ns}/{b.dev}')}];"
            )


def _mark_stop(marks: list[str], where: dict, path: list[Step]) -> None:
    ns, dev = where["ns"], where["dev"]
    text = f"stopped here: {where['cause']}"
    if where.get("reason"):
        text += f"\nkernel drop reason: {where['reason']}"
    stop = _q(f"{ns}/#stop")
    marks.append(
        f'  subgraph {_q("cluster_" + ns)} {{ {stop} [label={_q(text)}, shape=octagon, style=filled, fillcolor="#fde2e1", color="#c0392b", fontcolor="#7b1f16", penwidth=2]; }}'
    )
    anchor = (ns, dev) if dev else next(((s.ns, s.dev) for s in reversed(path) if s.ns == ns), None)
    if anchor is not None:
        marks.append(f'  {_node(*anchor)} [color="#c0392b", penwidth=3];')
        marks.append(f'  {stop} -- {_node(*anchor)} [color="#c0392b", style=bold, constraint=false];')


def _mark_fix(marks: list[str], i: int, changes: list[dict]) -> None:
    for j, change in enumerate(changes):
        words = [" ".join(argv) for argv in change["commands"]]
        text = ("verified fix" if len(changes) == 1 else f"verified fix (part {j + 1} of {len(changes)})") + ":\n" + "\n".join(_wrap(w) for w in words)
        ns, dev = change["ns"], change.get("dev")
        fix = _q(f"{ns}/#fix{i}.{j}")
        marks.append(
            f'  subgraph {_q("cluster_" + ns)} {{ {fix} [label={_q(text)}, shape=note, style=filled, fillcolor="#e3f6e5", color="#2d8a3e", fontsize=9]; }}'
        )
        if dev is not None:
            marks.append(f"  {_node(ns, dev)} [peripheries=2];")
            marks.append(f'  {fix} -- {_node(ns, dev)} [color="#2d8a3e", style=dashed, constraint=false];')


def _wrap(text: str, width: int = 48) -> str:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "  " + word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(lines + [line])


def draw(topology, result: Result, fixes: list[list[dict]] | None = None, fmt: str = "svg", title: str | None = None) -> bytes:
    """The lab with the path, the stop and the fixes, drawn by Graphviz's `dot`."""
    return run_dot(overlay(to_dot(topology, title), result, fixes), fmt)
