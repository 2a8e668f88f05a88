"""The output a tutorial shows for an `ip` command, against what it printed.

Only the parts that matter are compared, and only for what the tutorial's
own commands name (its namespaces, links and addresses; `lo`): interface
indexes, MAC addresses and the author's other interfaces (`enp0s3`) differ
from machine to machine and say nothing. What is compared:

- `ip link` / `ip addr`: each interface shown is there, in the state shown
  (`state DOWN`), with the master shown, holding the addresses shown;
- `ip netns [list]`: each namespace shown is there.

    differences("ip link", shown_lines, printed_text, known_names)  ->  ['v1 is UP, the tutorial shows DOWN']
"""

from __future__ import annotations

import re
import shlex

IFACE = re.compile(r"^\s*#?\s*\d+:\s+([\w.-]+)(?:@[\w.-]+)?:?(?=\s|$)(.*)$")
STATE = re.compile(r"\bstate\s+([A-Z]+)\b")
MASTER = re.compile(r"\bmaster\s+(\S+)")
INET = re.compile(r"\binet\s+([\d.]+/\d+)")
IP_SHOW = re.compile(r"^ip(?:\s+-\S+)*\s+(l|li|lin|link|a|ad|add|addr|addre|addres|address)(?:\s+(?:show|list|ls|sh))?(?:\s+(?:dev\s+)?[\w.@-]+)?\s*$")
NETNS_LIST = re.compile(r"^ip\s+netns(?:\s+(?:list|ls|show))?\s*$")


def comparable(command: str) -> str | None:
    """The `ip` command *command* runs, when its output can be compared ('link', 'netns'); else None."""
    text = _unwrap(command)
    if text is None or "|" in text:
        return None
    if NETNS_LIST.match(text):
        return "netns"
    return "link" if IP_SHOW.match(text) else None


def _unwrap(command: str) -> str | None:
    """`ip netns exec NS CMD`, `docker exec [-ti] ID CMD`, `bash -c "CMD"` -> CMD."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    while argv:
        if argv[:3] == ["ip", "netns", "exec"] and len(argv) > 4:
            argv = argv[4:]
        elif argv[:2] == ["docker", "exec"]:
            rest = [w for w in argv[2:]]
            while rest and rest[0].startswith("-"):
                rest = rest[1:]
            argv = rest[1:]
        elif argv[0] in ("bash", "sh") and argv[1:2] == ["-c"] and len(argv) > 2:
            argv = shlex.split(argv[2])
        else:
            break
    return " ".join(argv)


def differences(kind: str, shown: tuple[str, ...], printed: str, known: set[str]) -> list[str]:
    """What the tutorial shows and the command did not print (one sentence each)."""
    if kind == "netns":
        have = {line.split()[0] for line in printed.splitlines() if line.split()}
        want = [line.split()[0] for line in shown if line.split() and line.split()[0] in known]
        return [f"namespace {n} is not listed, the tutorial shows it" for n in want if n not in have]
    printed_ifs, shown_ifs = _interfaces(printed.splitlines()), _interfaces(list(shown))
    out = []
    for name, facts in shown_ifs.items():
        if name not in known:
            continue
        got = printed_ifs.get(name)
        if got is None:
            out.append(f"{name} is not listed, the tutorial shows it")
            continue
        for key, what in (("state", "state"), ("master", "master")):
            if facts.get(key) and got.get(key) != facts[key]:
                out.append(f"{name}'s {what} is {got.get(key) or 'none'}, the tutorial shows {facts[key]}")
        missing = [a for a in facts["inet"] if a not in got["inet"] and a.split("/")[0] in known]
        out += [f"{name} has no address {a}, the tutorial shows it" for a in missing]
    return out


def _interfaces(lines: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    current = None
    for line in lines:
        m = IFACE.match(line)
        if m:
            rest = m.group(2)
            state, master = STATE.search(rest), MASTER.search(rest)
            current = out.setdefault(m.group(1), {"state": state.group(1) if state else None, "master": master.group(1) if master else None, "inet": []})
            continue
        a = INET.search(line)
        if a and current is not None:
            current["inet"].append(a.group(1))
    return out


def known_names(commands: list[str]) -> set[str]:
    """Every word and address the tutorial's commands use (and `lo`): what its output may be checked for."""
    words = {"lo"}
    for c in commands:
        for w in re.split(r"[\s'\"=:]+", c):
            words.add(w)
            words.add(w.split("/")[0])
    return words
