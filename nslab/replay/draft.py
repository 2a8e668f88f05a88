"""A draft exercise from a replayed tutorial (`nslab replay TUTORIAL --exercise DIR`).

The checks come from what the tutorial left in the stage and from its probes,
for the names its own commands use (the stand-ins' docker0 is not the
tutorial's work):

- each named namespace (`namespace`), its lo when up (`loopback`);
- each veth and bridge (`link`: kind, up, master), each IPv4 address (`address`);
- each route the tutorial added (`route`; the kernel's own are left out);
- each probe (`ping`), its expectation the final state's verdict: a reply, or
  no reply for the cause nslab names (an isolation check).

Each check's hint is the tutorial's command that made it, with its line.
The instructor edits the draft (goal, points, hints); it parses as an
exercise (nslab/grading/exercise.py) when written.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from nslab.grading.exercise import parse
from nslab.replay.stage import Stage

HOST = "host"
POINTS = {"namespace": 1, "loopback": 1, "link": 1, "address": 1, "route": 2, "ping": 2}


@dataclass(frozen=True)
class Probe:
    """A probe of the tutorial, as the final state answers it."""

    src: str
    dst: str
    ok: bool
    cause: str | None  # nslab's cause when it fails


def final_state(stage: Stage) -> dict[str, dict[str, list]]:
    """{namespace: {"link": [...], "addr": [...], "route": [...]}} as `ip -j` reads the stage ("host" its own)."""
    out = {}
    for ns in [HOST, *sorted(stage.namespaces())]:
        prefix = "ip" if ns == HOST else f"ip -n {shlex.quote(ns)}"
        ran = stage.run(f"{prefix} -j -d link show; echo; {prefix} -j -4 addr show; echo; {prefix} -j -4 route show", timeout=10)
        parts = [p for p in ran.output.split("\n") if p.strip().startswith("[")]
        if ran.status == 0 and len(parts) == 3:
            out[ns] = dict(zip(("link", "addr", "route"), (json.loads(p) for p in parts)))
    return out


def checks(state: dict[str, dict[str, list]], probes: list[Probe], known: set[str]) -> list[dict]:
    """The draft's checks (without hints) for the names in *known*."""
    out: list[dict] = []
    for ns, read in state.items():
        if ns != HOST and ns in known:
            out.append({"id": ns, "type": "namespace", "ns": ns})
        for link in read["link"]:
            out += _link(ns, link, known)
        for a in read["addr"]:
            for info in a.get("addr_info", []):
                cidr = f"{info['local']}/{info['prefixlen']}"
                if info.get("scope") == "global" and info["local"] in known:
                    out.append({"id": f"addr-{ns}-{a['ifname']}", "type": "address", "ns": ns, "dev": a["ifname"], "cidr": cidr})
        for r in read["route"]:
            if r.get("protocol") == "kernel" or not (r["dst"] in known or r.get("gateway") in known or r["dst"] == "default"):
                continue
            row = {"id": f"route-{ns}-{r['dst'].replace('/', '_')}", "type": "route", "ns": ns, "dst": r["dst"]}
            row.update({k: v for k, v in (("via", r.get("gateway")), ("dev", r.get("dev"))) if v})
            out.append(row)
    for p in dict.fromkeys(probes):
        row = {"id": f"ping-{p.src}-{p.dst}", "type": "ping", "from": p.src, "to": p.dst}
        if not p.ok:
            row.update({"expect": "no-reply", **({"cause": p.cause} if p.cause else {})})
        out.append(row)
    return list({c["id"]: c for c in out}.values())


def _link(ns: str, link: dict, known: set[str]) -> list[dict]:
    name, kind = link["ifname"], (link.get("linkinfo") or {}).get("info_kind")
    if name == "lo":
        return [{"id": f"lo-{ns}", "type": "loopback", "ns": ns}] if ns != HOST and "UP" in link.get("flags", []) else []
    if name not in known or kind not in ("veth", "bridge"):
        return []
    row = {"id": f"{ns}-{name}", "type": "link", "ns": ns, "dev": name, "kind": kind, "up": "UP" in link.get("flags", [])}
    return [{**row, "master": link["master"]} if link.get("master") else row]


def hint(check: dict, commands: list[tuple[int, str]]) -> str:
    """The tutorial's command that made what *check* checks, with its line: the first naming a
    namespace or link, the last naming an address or route, a `ping` for a ping (never a clean-up)."""
    keys = [str(check[k]) for k in ("dev", "cidr", "dst", "via", "to") if k in check and check[k] != "default"] or [str(check.get("ns", ""))]
    if check["type"] == "route" and check["dst"] == "default":
        keys = ["default", *keys]
    if check["type"] == "ping":
        keys = ["ping", *keys]
    made = [(line, text) for line, text in commands if not re.search(r"\b(?:del|delete)\b", text)]
    for line, text in made if check["type"] in ("namespace", "link", "ping") else reversed(made):
        if all(re.search(rf"(?<![\w.-]){re.escape(k)}(?![\w-])", text) for k in keys if k):
            return f"line {line} of the tutorial: {text}"
    return "what the tutorial builds: see its commands"


def exercise_toml(title: str, tutorial: str, items: list[dict], commands: list[tuple[int, str]], given: str | None) -> str:
    """The draft as TOML (checked by the grader's own parser before it is returned)."""
    names = sorted({str(c[k]) for c in items for k in ("ns", "from") if k in c})
    goal = (
        f"Build what the tutorial {tutorial} builds. The checks use its names: namespaces {', '.join(names) or 'none'}"
        f" ({HOST!r} is the namespace your script starts in). Edit this draft: the goal, the points, the hints."
    )
    lines = [f"title = {json.dumps(title)}", f"tutorial = {json.dumps(tutorial)}", f"host = {json.dumps(HOST)}", f"goal = {json.dumps(goal)}"]
    if given:
        lines.append(f'given = """\n{given.strip()}\n"""')
    rows = []
    for c in items:
        row = {**c, "points": POINTS[c["type"]], "hint": hint(c, commands)}
        rows.append(row)
        lines += ["", "[[checks]]"] + [f"{k} = {_value(v)}" for k, v in row.items()]
    parse({"title": title, "tutorial": tutorial, "host": HOST, "goal": goal, "given": given or "", "checks": rows}, name="draft")
    return "\n".join(lines) + "\n"


def _value(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v) if isinstance(v, int) else json.dumps(v)
