"""What is wrong with a replayed step: a typo (the command or an argument does not parse, or
names what is not there but something close is), a hang, an outcome other than the one the
tutorial expects, an unexpected failure; and which failures only follow from an earlier one.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import shlex
from typing import TYPE_CHECKING

from nslab.replay import kinds
from nslab.replay.tutorial import LEADING

if TYPE_CHECKING:
    from nslab.replay.runner import Options, Step
    from nslab.replay.stage import Stage

IP_OBJECTS = [
    "link",
    "address",
    "addrlabel",
    "route",
    "rule",
    "neighbour",
    "ntable",
    "tunnel",
    "maddress",
    "monitor",
    "netns",
    "netconf",
    "vrf",
    "xfrm",
    "nexthop",
    "mptcp",
]
PARSE_ERRORS = [
    (re.compile(r'Object "([^"]+)" is unknown'), lambda m: f'ip has no object "{m.group(1)}"' + _did_you_mean(m.group(1), IP_OBJECTS)),
    (re.compile(r'Command "([^"]+)" is unknown'), lambda m: f'"{m.group(1)}" is not a command of this ip object'),
    (re.compile(r'Error: either "([^"]+)" is duplicate, or "([^"]+)" is a garbage'), lambda m: f'ip does not take "{m.group(2)}" there'),
    (re.compile(r'Error: argument "([^"]+)" is wrong: ([^\n]+)'), lambda m: f'argument "{m.group(1)}" is wrong: {m.group(2)}'),
    (re.compile(r"(?im)^.*\b(usage:|invalid option|unrecognized option|unknown option|illegal option|syntax error)\b.*$"), lambda m: m.group(0).strip()[:160]),
]


def networks_in(text: str) -> list:
    """The IPv4 networks of the addresses with a prefix length in *text* (`10.0.0.1/24` -> 10.0.0.0/24)."""
    out = []
    for m in re.finditer(r"\b\d+\.\d+\.\d+\.\d+/\d+\b", text):
        try:
            out.append(ipaddress.ip_interface(m.group(0)).network)
        except ValueError:
            continue
    return out


def cascade(step: Step, broken: list[tuple[int, str]]) -> None:
    """A failure that follows from an earlier one (a name a broken step was to make, a gateway in the
    network it was to address) is noted as such, not found again; a typo is always its own finding.
    *broken*: (line, command) of the steps with findings so far; *step* joins it when it has one."""
    failed = [f for f in step.findings if f["kind"] == "failed"]
    if failed:
        named = set(re.findall(r'"([^"]+)"', step.raw))
        via = re.search(r"\bvia\s+(\d+\.\d+\.\d+\.\d+)", step.command)
        for line, command in reversed(broken):  # the latest first: the likeliest cause
            nets = networks_in(command)
            words = set(command.split())
            if named & words or (via and "gateway" in step.raw and any(ipaddress.ip_address(via.group(1)) in net for net in nets)):
                step.findings = [f for f in step.findings if f["kind"] != "failed"]
                step.note = f"fails because line {line} failed ({command}): not a finding of its own"
                break
    if step.findings:
        broken.append((step.line, step.command))


def findings(stage: Stage, step: Step, shell: str | None, options: Options) -> list[dict]:
    out: list[dict] = []
    raw = step.raw
    if step.hung:
        why = "does it wait for input, or for an answer that never comes?"
        if step.verdict is not None and step.verdict["ok"]:
            why = "nslab's probe gets through, so it waits on the other end (a server that does not answer) or for input"
        elif step.verdict is not None:
            why = f"nslab's probe fails ({step.verdict['cause_text']}), and the command waits for an answer that cannot come"
        out.append({"kind": "hang", "text": f"still running after {options.timeout:g} s, stopped: {why}"})
    typo = _typo(stage, step, raw, shell) if step.ok is False and not step.hung else None
    if typo is not None:
        out.append({"kind": "typo", "text": typo})
    if step.expect is not None and step.ok is not None and not step.hung and typo is None and (step.expect == "ok") != step.ok:
        said, did = ("succeed", "failed") if step.expect == "ok" else ("fail", "succeeded")
        out.append({"kind": "mismatch", "text": f"the tutorial says it should {said}, but it {did}"})
    elif step.expect is None and step.ok is False and not step.hung and typo is None:
        said = f": {step.output[-1]}" if step.output else ""
        out.append(
            {"kind": "failed", "text": f"exit status {step.status}{said}; the tutorial does not say it should fail (mark it `# expect: fail` if it should)"}
        )
    return out


def _typo(stage: Stage, step: Step, raw: str, shell: str | None) -> str | None:
    """Why *step* did not parse (a typo), or None for a failure of another kind."""
    if step.status == 127 or "command not found" in raw:
        word = kinds.words(step.command)[0] if kinds.words(step.command) else step.command
        return f"{word!r} is not a command here" + _did_you_mean(word, sorted(LEADING - {"sudo"}))
    m = re.search(r'Cannot open network namespace "([^"]+)"|argument "([^"]+)" is wrong: Invalid "netns" value', raw)
    if m:
        return _misnamed("namespace", m.group(1) or m.group(2), list(stage.namespaces()))
    m = re.search(r'Cannot find device "([^"]+)"|argument "([^"]+)" is wrong: Device does not exist', raw)
    if m:
        return _misnamed("device", m.group(1) or m.group(2), _devices(stage, _namespace_of(step.command) or shell))
    for pattern, say in PARSE_ERRORS:
        m = pattern.search(raw)
        if m:
            return say(m)
    return None


def _misnamed(what: str, name: str, names: list[str]) -> str | None:
    """A typo when a close but different name exists; else None (it is just not there)."""
    near = _did_you_mean(name, [n for n in names if n != name])
    return f'there is no {what} "{name}" there{near}' if near and name not in names else None


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _namespace_of(command: str) -> str | None:
    argv = kinds.words(command)
    ns, _ = kinds.netns_prefix(argv)
    if ns is None and argv[:2] == ["ip", "-n"] and len(argv) > 2:
        return argv[2]
    return ns


def _devices(stage: Stage, ns: str | None) -> list[str]:
    prefix = f"ip netns exec {shlex.quote(ns)} " if ns else ""
    ran = stage.run(prefix + "ip -o link show", timeout=5)
    return [m.group(1) for m in re.finditer(r"(?m)^\d+:\s+([^:@\s]+)", ran.output)]
