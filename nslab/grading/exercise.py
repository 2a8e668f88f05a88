"""Exercise files (TOML or JSON) -> validated Exercise objects.

An instructor writes data, not Python:

    title = "Two namespaces wired by a veth pair"
    goal = "..."
    [[checks]]
    id = "ping-ns1-ns2"
    type = "ping"
    from = "ns1"
    to = "10.0.0.2"
    points = 2
    hint = "Both ends must be up and have an address in the same subnet."

Every mistake is one line naming the file, the field and the fix:
`exercise.toml: checks[3].points: missing; every check needs points (a whole number > 0)`.
The check types and their fields are listed in CHECK_FIELDS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nslab.model.topology import (
    LabError,
    check_ifname,
    check_nsname,
    parse_address,
    parse_interface,
    parse_network,
)
from nslab.probes.result import Cause

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: exercises in JSON only
    tomllib = None  # type: ignore[assignment]

# a wheel carries the exercises in the package (nslab/exercises); a checkout has them at its top
_PACKAGE = Path(__file__).resolve().parents[1]
EXERCISES = _PACKAGE / "exercises" if (_PACKAGE / "exercises").is_dir() else _PACKAGE.parent / "exercises"
TOP_FIELDS = {"title", "tutorial", "goal", "host", "given", "checks"}
COMMON = {"id", "type", "points", "hint", "name"}
# type -> (required fields, optional fields)
CHECK_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "namespace": ({"ns"}, set()),
    "loopback": ({"ns"}, set()),
    "link": ({"ns", "dev"}, {"kind", "up", "master", "peer"}),
    "address": ({"ns", "dev", "cidr"}, set()),
    "route": ({"ns", "dst"}, {"via", "dev"}),
    "arp": ({"from", "dev", "target"}, {"timeout"}),
    "ping": ({"from", "to"}, {"expect", "cause", "timeout"}),
    "tcp": ({"from", "server", "to", "port"}, {"server_port", "expect", "cause", "timeout"}),
}
EXPECT = ("reply", "no-reply")
LINK_KINDS = ("veth", "bridge", "loopback")


class ExerciseError(ValueError):
    """An invalid exercise file; the message is one line: file, field, what to fix."""

    def __init__(self, source: str, where: str, message: str):
        self.field = where
        super().__init__(f"{source}: {where}: {message}")


@dataclass(frozen=True)
class Check:
    id: str
    type: str
    points: int
    hint: str
    args: dict[str, Any]
    name: str = ""

    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)

    @property
    def namespaces(self) -> list[str]:
        """The namespaces this check needs to exist."""
        return [self.args[k] for k in ("ns", "from", "server") if k in self.args]

    def describe(self) -> str:
        """What is checked, in a sentence (the instructor's `name` if given)."""
        if self.name:
            return self.name
        a = self.args
        if self.type == "namespace":
            return f"namespace {a['ns']} exists"
        if self.type == "loopback":
            return f"lo is up in {a['ns']}"
        if self.type == "link":
            extra = [a.get("kind", "")] + (["up"] if a.get("up") else []) + ([f"in bridge {a['master']}"] if a.get("master") else [])
            extra += [f"peer of {a['peer']}"] if a.get("peer") else []
            return f"{a['ns']} has {a['dev']}" + (f" ({', '.join(x for x in extra if x)})" if any(extra) else "")
        if self.type == "address":
            return f"{a['ns']} has {a['cidr']} on {a['dev']}"
        if self.type == "route":
            parts = [a["dst"]] + ([f"via {a['via']}"] if a.get("via") else []) + ([f"dev {a['dev']}"] if a.get("dev") else [])
            return f"{a['ns']} has the route {' '.join(parts)}"
        if self.type == "arp":
            return f"{a['from']} resolves {a['target']} on {a['dev']} (ARP)"
        verb = {"ping": "pings", "tcp": "opens a TCP connection to"}[self.type]
        target = a["to"] + (f":{a['port']}" if self.type == "tcp" else "")
        if a.get("server_port"):
            target += f" (forwarded to {a['server']}:{a['server_port']})"
        if a.get("expect", "reply") == "no-reply":
            return f"{a['from']} must NOT reach {target} ({self.type})"
        return f"{a['from']} {verb} {target}"


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    goal: str
    checks: tuple[Check, ...]
    host: str | None = None  # the name checks give the script's starting (root) namespace
    given: str = ""  # shell run before the submission, in the jail only
    tutorial: str = ""
    path: Path | None = field(default=None, compare=False)

    @property
    def total(self) -> int:
        return sum(c.points for c in self.checks)


def find(spec: str) -> Path:
    """A path to an exercise file, a directory holding exercise.toml/json, or a name under exercises/."""
    for candidate in (Path(spec), EXERCISES / spec):
        if candidate.is_dir():
            for fname in ("exercise.toml", "exercise.json"):
                if (candidate / fname).is_file():
                    return candidate / fname
        elif candidate.is_file():
            return candidate
    known = sorted(p.name for p in EXERCISES.iterdir() if p.is_dir()) if EXERCISES.is_dir() else []
    raise ExerciseError(spec, "exercise", f"no such exercise file or directory; known exercises: {', '.join(known) or 'none'}")


def load(spec: str | Path) -> Exercise:
    path = find(str(spec))
    source = path.name if path.parent == EXERCISES else str(path)
    if path.suffix != ".json" and tomllib is None:
        raise ExerciseError(source, "syntax", "TOML exercises need Python 3.11 or later; run with it, or write the exercise as JSON")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ExerciseError(source, "syntax", str(exc).splitlines()[0]) from None
    name = path.parent.name if path.stem == "exercise" else path.stem
    return parse(data, name=name, source=source, path=path)


def parse(data: Any, *, name: str, source: str = "exercise", path: Path | None = None) -> Exercise:
    def fail(where: str, message: str) -> ExerciseError:
        return ExerciseError(source, where, message)

    if not isinstance(data, dict):
        raise fail("exercise", f"expected a table of fields, got {type(data).__name__}")
    unknown = set(data) - TOP_FIELDS
    if unknown:
        raise fail(min(unknown), f"unknown field; an exercise has {', '.join(sorted(TOP_FIELDS))}")
    for key in ("title", "goal"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise fail(key, "missing; write it as a non-empty string")
    for key in ("tutorial", "given"):
        if not isinstance(data.get(key, ""), str):
            raise fail(key, f"must be a string, got {data[key]!r}")
    host = data.get("host")
    if host is not None:
        _field(fail, "host", lambda: check_nsname(host, "host"))
    rows = data.get("checks")
    if not isinstance(rows, list) or not rows:
        raise fail("checks", "missing; list at least one check ([[checks]] in TOML)")
    checks = tuple(_check(fail, f"checks[{i}]", row) for i, row in enumerate(rows))
    seen: set[str] = set()
    for i, c in enumerate(checks):
        if c.id in seen:
            raise fail(f"checks[{i}].id", f"{c.id!r} is used twice; ids must be unique")
        seen.add(c.id)
    return Exercise(name, data["title"].strip(), data["goal"].strip(), checks, host, data.get("given", ""), data.get("tutorial", ""), path)


def _field(fail, where: str, validate) -> Any:
    try:
        return validate()
    except LabError as exc:
        raise fail(where, str(exc).split(": ", 1)[-1]) from None


def _check(fail, where: str, row: Any) -> Check:
    if not isinstance(row, dict):
        raise fail(where, f"expected a table of fields, got {row!r}")
    typ = row.get("type")
    if typ not in CHECK_FIELDS:
        raise fail(f"{where}.type", f"unknown check type {typ!r}; use one of {', '.join(CHECK_FIELDS)}")
    required, optional = CHECK_FIELDS[typ]
    for key in sorted(required | {"id", "points", "hint"}):
        if key not in row:
            raise fail(f"{where}.{key}", f"missing; a {typ} check needs {', '.join(sorted(required | {'id', 'points', 'hint'}))}")
    unknown = set(row) - required - optional - COMMON
    if unknown:
        allowed = sorted((required | optional | COMMON) - {"type"})
        raise fail(f"{where}.{min(unknown)}", f"unknown field for a {typ} check; it takes {', '.join(allowed)}")
    if not isinstance(row["id"], str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", row["id"]):
        raise fail(f"{where}.id", f"{row['id']!r} must be a word of letters, digits, '-', '_' or '.'")
    points = row["points"]
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise fail(f"{where}.points", f"{points!r} is not a whole number > 0")
    for key in ("hint", "name"):
        if not isinstance(row.get(key, ""), str) or (key == "hint" and not row[key].strip()):
            raise fail(f"{where}.{key}", "must be a non-empty string" if key == "hint" else "must be a string")
    args = {k: v for k, v in row.items() if k not in COMMON}
    for key, value in args.items():
        _validate_arg(fail, f"{where}.{key}", key, value)
    if "cause" in args and args.get("expect") != "no-reply":
        raise fail(f"{where}.cause", "a cause is what an isolation check requires; add expect = \"no-reply\" or remove the cause")
    return Check(row["id"], typ, points, row["hint"].strip(), args, row.get("name", ""))


def _validate_arg(fail, where: str, key: str, value: Any) -> None:
    if key in ("ns", "from", "server"):
        _field(fail, where, lambda: check_nsname(value, where))
    elif key in ("dev", "master"):
        _field(fail, where, lambda: check_ifname(value, where))
    elif key == "cidr":
        _field(fail, where, lambda: parse_interface(value, where))
    elif key == "dst":
        _field(fail, where, lambda: parse_network(value, where))
    elif key in ("to", "target", "via"):
        _field(fail, where, lambda: parse_address(value, where))
    elif key in ("port", "server_port"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise fail(where, f"{value!r} is not a TCP port (1-65535)")
    elif key == "timeout":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10:
            raise fail(where, f"{value!r} is not a number of seconds in (0, 10]")
    elif key == "expect":
        if value not in EXPECT:
            raise fail(where, f"{value!r}; use 'reply' or 'no-reply' (an isolation check)")
    elif key == "cause":
        if value not in Cause.__members__:
            raise fail(where, f"unknown cause {value!r}; use one of {', '.join(Cause.__members__)}")
    elif key == "kind":
        if value not in LINK_KINDS:
            raise fail(where, f"{value!r}; use one of {', '.join(LINK_KINDS)}")
    elif key == "up":
        if not isinstance(value, bool):
            raise fail(where, f"{value!r}; use true or false")
    elif key == "peer":
        ns, _, dev = str(value).partition(":")
        if not dev:
            raise fail(where, f"{value!r}; write the peer end as 'NAMESPACE:DEV', e.g. 'ns2:v2'")
        _field(fail, where, lambda: (check_nsname(ns, where), check_ifname(dev, where)))


__all__ = ["CHECK_FIELDS", "Check", "Exercise", "ExerciseError", "find", "load", "parse"]
