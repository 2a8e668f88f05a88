"""What kind of command a tutorial line is: skipped (and why), a shell entered or
left, a server to start in the background, a reachability check (and its
target), or one that runs until the learner presses Ctrl-C.

Only the words are read; nothing here runs anything.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from nslab.replay.standin import PLAYED

NEEDS = {
    "docker": "needs Docker, which nslab's stand-in plays only in part (run, inspect, exec, ps)",
    "podman": "needs a container runtime, which the sandbox lacks",
    "crictl": "needs a container runtime, which the sandbox lacks",
    "ctr": "needs a container runtime, which the sandbox lacks",
    "kind": "needs kind, which nslab's stand-in plays only in part (create cluster, get nodes)",
    "kubectl": "needs a Kubernetes cluster, which the sandbox lacks",
    "minikube": "needs a Kubernetes cluster, which the sandbox lacks",
    "systemctl": "needs systemd, which the sandbox lacks",
    "service": "needs an init system, which the sandbox lacks",
    "vagrant": "manages a VM outside the sandbox",
    "brew": "installs software: the sandbox has what this machine has",
    "apt": "installs software: the sandbox has what this machine has",
    "apt-get": "installs software: the sandbox has what this machine has",
    "yum": "installs software: the sandbox has what this machine has",
    "dnf": "installs software: the sandbox has what this machine has",
    "snap": "installs software: the sandbox has what this machine has",
    "ssh": "logs in elsewhere: replay runs everything on the tutorial's host",
    "man": "opens a manual page",
    "su": "becomes root: replay already runs as root",
}
SHELLS = {"bash", "sh", "zsh", "ash"}
PING_VALUES = frozenset({"-c", "-W", "-w", "-i", "-I", "-s", "-t", "-M", "-Q", "-l", "-p", "-m", "-q"})
CURL_VALUES = frozenset(
    {
        "-o",
        "-O",
        "-w",
        "-H",
        "-d",
        "-X",
        "-u",
        "-A",
        "-e",
        "-m",
        "-T",
        "-x",
        "-b",
        "-c",
        "-F",
        "-K",
        "-E",
        "--output",
        "--write-out",
        "--header",
        "--data",
        "--request",
        "--user",
        "--max-time",
        "--connect-timeout",
        "--interface",
        "--resolve",
        "-P",
        "-t",
        "--timeout",
        "--tries",
        "--output-document",
    }
)
# A script's positional parameters ($@, $*, $1..$9, ${1}): a tutorial line using them outside a function is a script's line.
POSITIONAL = re.compile(r"\$(?:[@*1-9]|\{[@*1-9]\})")
COMMAND_START = re.compile(r"(?:^|[;&|(]\s*|\$\(\s*|`\s*|\bsudo\s+|\bexec\s+)([\w.-]+)(?:\s+([\w-]+)(?:\s+([\w-]+))?)?")


@dataclass(frozen=True)
class Target:
    """A reachability command's probe: from namespace *ns* (None: where the shell is) to *dst*[:*port*]."""

    tool: str  # 'ping', 'curl', 'wget', 'nc'
    ns: str | None
    dst: str | None  # IPv4 address, or None when it names a host nslab cannot resolve
    port: int | None = None
    name: str | None = None  # the host name as written, when it is not an address


def words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.split()


def skip_reason(text: str) -> str | None:
    """Why the sandbox cannot run *text* (a tool it lacks, a script's arguments it is not given), else None."""
    given = script_argument(text)
    if given is not None:
        return f"uses {given}, an argument of the script the line comes from: a tutorial replayed command by command is given none, so it is not run"
    for m in COMMAND_START.finditer(text):
        played = PLAYED.get(m.group(1), set())  # what nslab/replay/standin.py plays
        if m.group(2) in played or f"{m.group(2)} {m.group(3)}" in played:
            continue
        if m.group(1) in NEEDS:
            return f"{m.group(1)}: {NEEDS[m.group(1)]}"
    return None


def script_argument(text: str) -> str | None:
    """The first positional parameter *text* expands (`docker run --net=container:$id $@`), else None:
    not inside single quotes (awk's `$2`), nor in a line that defines a function (its own arguments)."""
    if re.search(r"(?:^|[;&|]\s*)(?:function\s+)?[\w.-]+\s*\(\s*\)", text):
        return None
    m = POSITIONAL.search(re.sub(r"'[^']*'", "", text))
    return m.group(0) if m else None


def netns_prefix(argv: list[str]) -> tuple[str | None, list[str]]:
    """(`ip netns exec NS` / `nsenter --net=/run/netns/NS` namespace, the rest; `busybox` dropped)."""
    ns, rest = _netns_prefix(argv)
    return ns, rest[1:] if rest[:1] == ["busybox"] else rest


def _netns_prefix(argv: list[str]) -> tuple[str | None, list[str]]:
    if argv[:3] == ["ip", "netns", "exec"] and len(argv) > 3:
        return argv[3], argv[4:]
    if argv[:1] == ["nsenter"]:
        for i, w in enumerate(argv[1:], 1):
            m = re.match(r"^(?:--net=|-n)(?:/var)?/run/netns/(\S+)$", w)
            if m:
                rest = [x for x in argv[i + 1 :] if not x.startswith("-")] if "--" not in argv else argv[argv.index("--") + 1 :]
                return m.group(1), rest
    return None, argv


def tool(text: str) -> str | None:
    """The program a command runs (inside `ip netns exec NS`), e.g. 'nc'; None for shell syntax."""
    argv = words(text)
    _, rest = _netns_prefix(argv)
    if not rest or "=" in rest[0] or not re.match(r"^[\w.+-]+$", rest[0]):
        return None
    return rest[0]


def entered_shell(text: str) -> str | None:
    """The namespace whose interactive shell *text* opens (`ip netns exec NS bash`), else None."""
    argv = words(text)
    ns, rest = netns_prefix(argv)
    if ns is not None and (not rest or (rest[0] in SHELLS and all(w.startswith("-") for w in rest[1:]))):
        return ns
    return None


def is_exit(text: str) -> bool:
    return words(text)[:1] in (["exit"], ["logout"])


def server_port(text: str) -> int | None | bool:
    """The TCP port a server command listens on; True for a server whose port is unknown; None if no server."""
    _, argv = netns_prefix(words(text.rstrip("& ")))
    if not argv:
        return None
    tool, rest = argv[0], argv[1:]
    if tool in ("nc", "ncat", "netcat") and any(re.match(r"^-\w*l", w) for w in rest):
        ports = [int(w) for w in rest if w.isdigit()] + [int(m.group(1)) for w in rest if (m := re.match(r"^-\w*p(\d+)$", w))]
        return ports[-1] if ports else True
    if tool.startswith("python") and ("http.server" in rest or "SimpleHTTPServer" in rest):
        nums = [int(w) for w in rest if w.isdigit()]
        return nums[0] if nums else 8000
    if tool == "socat" and any(w.upper().startswith("TCP-LISTEN:") or w.upper().startswith("TCP4-LISTEN:") for w in rest):
        w = next(w for w in rest if "LISTEN:" in w.upper())
        digits = re.match(r"\d+", w.split(":", 1)[1])
        return int(digits.group(0)) if digits else True
    if tool in ("iperf", "iperf3") and "-s" in rest:
        return 5201 if tool == "iperf3" else 5001
    return True if text.rstrip().endswith("&") and not text.rstrip().endswith("&&") else None


def until_interrupted(text: str) -> bool:
    """Does it run until Ctrl-C (a ping without a count, a capture, a monitor, an nc client)?"""
    _, argv = netns_prefix(words(text))
    if not argv:
        return False
    tool, rest = argv[0], argv[1:]
    if tool == "ping":
        return not any(re.match(r"^-(c|w)\d*$", w) for w in rest)
    if tool in ("tcpdump", "watch", "top", "htop"):
        return True
    if tool == "ip" and "monitor" in rest[:3]:
        return True
    if tool == "tail" and "-f" in rest:
        return True
    return tool in ("nc", "ncat", "netcat") and not any(re.match(r"^-\w*[zwNq]", w) for w in rest)


def target(text: str, ns: str | None) -> Target | None:
    """The probe behind `ping`, `curl`, `wget` or `nc HOST PORT` (None for other commands)."""
    inner, argv = netns_prefix(words(text))
    ns = inner or ns
    if not argv or "|" in argv:
        return None
    tool, rest = argv[0], argv[1:]
    if tool == "ping":
        host = next((w for w in reversed(rest) if not w.startswith("-") and not _option_value(rest, w)), None)
        return _target("ping", ns, host, None)
    if tool in ("curl", "wget"):
        plain = [w for w in rest if not w.startswith("-") and not _option_value(rest, w, CURL_VALUES) and re.match(r"^[\w.-]+(:\d+)?(/\S*)?$", w)]
        url = next((w for w in rest if "://" in w), None) or next(iter(plain), None)
        if url is None:
            return None
        parts = urlsplit(url if "://" in url else f"http://{url}")
        return _target(tool, ns, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    if tool in ("nc", "ncat", "netcat") and server_port(text) is None:
        args = [w for w in rest if not w.startswith("-") and not _option_value(rest, w)]
        if len(args) >= 2 and args[-1].isdigit():
            return _target("nc", ns, args[-2], int(args[-1]))
    return None


def _option_value(argv: list[str], word: str, options: frozenset[str] = PING_VALUES) -> bool:
    """Is *word* the value of an option that takes one (`-c 1`, `-W 2`, `-I veth0`, `-o FILE`)?"""
    i = argv.index(word)
    return i > 0 and argv[i - 1] in options


def _target(tool: str, ns: str | None, host: str | None, port: int | None) -> Target | None:
    if host is None:
        return None
    if host == "localhost":
        return Target(tool, ns, "127.0.0.1", port, host)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return Target(tool, ns, None, port, host)
    return Target(tool, ns, str(ip), port) if ip.version == 4 else Target(tool, ns, None, port, host)
