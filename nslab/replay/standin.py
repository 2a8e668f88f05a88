"""`docker` and `kind` as the tutorials use them, played inside the replay's stage.

A container is a process in a network namespace of its own; nothing else of
Docker is played (the image is not pulled: its command runs from this
machine's files, `sleep infinity` when it has none).

    docker run -d --net=none IMAGE CMD...   a namespace and a process; prints its ID
    docker run -d IMAGE CMD...              the same, wired as Docker's default bridge does it:
                                            docker0 172.17.0.1/16, eth0 172.17.0.N/16, MAC 02:42:ac:11:00:0N
    docker run --net=container:ID ...       a process in ID's namespace
    docker inspect -f '{{.State.Pid}}' ID   that process's PID (also .Id, .Name, .NetworkSettings.IPAddress)
    docker exec [-ti] ID CMD...             CMD in ID's namespace
    docker ps [-q] [--format ...]           the containers

A container the tutorial uses but never starts (`docker exec 4d0e8ada345c`)
is one its machine already ran: the replay starts it first (`given`), on the
default bridge. A `kind-*` container is a kind node, a namespace the replay
built first as the cluster lab builds its nodes (nslab/replay/given.py).

The stand-in runs inside the stage (`python3 standin.py docker ...`, installed
as /tmp/.nslab-bin/docker), so all it makes lives and dies there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time

BIN = "/tmp/.nslab-bin"  # in the stage's private /tmp
STATE = "/tmp/.nslab-docker"
PLAYED = {"docker": {"run", "inspect", "exec", "ps"}, "kind": {"create cluster", "get nodes"}}
BRIDGE, NETWORK = "docker0", "172.17.0"
KIND_NODE = re.compile(r"^kind-(control-plane|worker(\d*))$")
FORMAT_FIELDS = {
    ".State.Pid": "pid",
    ".Id": "id",
    ".ID": "short",
    ".Name": "name",
    ".Names": "name",
    ".NetworkSettings.IPAddress": "ip",
    ".State.Running": "running",
}


def install_script(python: str) -> str:
    """The shell lines that put the stand-ins on the stage's PATH (run inside the stage, by *python*,
    one the stage's user may run: this file imports nothing of nslab). The file itself is written
    into the stage: the stage's user may not read the checkout (a mode-700 home)."""
    with open(__file__) as f:
        source = f.read()
    lines = [f"mkdir -p {BIN} {STATE}", f"printf %s {shlex.quote(source)} > {BIN}/standin.py"]
    for tool in ("docker", "kind"):
        body = f'#!/bin/sh\nexec {shlex.quote(python)} -I -B {BIN}/standin.py {tool} "$@"\n'
        lines.append(f"printf %s {shlex.quote(body)} > {BIN}/{tool} && chmod +x {BIN}/{tool}")
    return "\n".join(lines)


def given(commands: list[str], containers: list[str]) -> list[str]:
    """The containers a tutorial uses but never starts (IDs and kind nodes), in order of first use."""
    started = any(re.search(r"\bdocker\s+run\b", c) for c in commands)
    out: list[str] = []
    for text in commands:
        for m in re.finditer(r"\bdocker\s+(?:exec|inspect)\s+((?:-\S+\s+(?:'[^']*'\s+|\"[^\"]*\"\s+)?)*)([\w.-]+)", text):
            name = m.group(2)
            if name not in out and not name.startswith("$") and (KIND_NODE.match(name) or re.fullmatch(r"[0-9a-f]{12,64}", name) or not started):
                out.append(name)
    return out + [c for c in containers if c not in out]


def host_veths(commands: list[str]) -> list[str]:
    """Docker's own names (`vetheeed635`) the tutorial uses and never makes: its given containers' host ends."""
    made = {m.group(1) for c in commands for m in re.finditer(r"\blink\s+add\s+(?:name\s+|dev\s+)?(\S+)", c)}
    names = [m.group(0) for c in commands for m in re.finditer(r"\bveth[0-9a-f]{7}\b", c)]
    return list(dict.fromkeys(n for n in names if n not in made))


# -- inside the stage ----------------------------------------------------------------------
def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    os.makedirs(STATE, exist_ok=True)
    if tool == "kind":
        return _kind(args)
    if not args:
        return _usage("docker COMMAND")
    sub, rest = args[0], args[1:]
    if sub == "__given":  # the replay's own: a container the tutorial's machine already ran
        _given(rest[0], rest[1] if len(rest) > 1 else None)
        return 0
    if sub == "__bridge":  # the replay's own: docker0, there whenever Docker is
        _bridge()
        return 0
    handler = {"run": _run, "inspect": _inspect, "exec": _exec, "ps": _ps}.get(sub)
    if handler is None:
        return _usage(f"docker {sub}: the stand-in plays only {', '.join(sorted(PLAYED['docker']))}")
    return handler(rest)


def _usage(text: str) -> int:
    print(f"nslab's docker stand-in: {text}", file=sys.stderr)
    return 125


def _containers() -> list[dict]:
    out = []
    for name in sorted(os.listdir(STATE), key=lambda n: os.stat(os.path.join(STATE, n)).st_mtime_ns):
        with open(os.path.join(STATE, name)) as f:
            out.append(json.load(f))
    return out


def _find(ref: str) -> dict | None:
    found = [c for c in _containers() if c["id"].startswith(ref) or c["name"] == ref]
    return found[0] if len(found) == 1 else None


def _save(c: dict) -> dict:
    with open(os.path.join(STATE, c["id"]), "w") as f:
        json.dump(c, f)
    return c


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, stdout=subprocess.DEVNULL)


def _spawn(argv: list[str], *, new_netns: bool, join: int | None = None) -> int:
    """Start *argv* detached (as `docker run -d` does), in a new or *join*'s namespace; its PID."""
    if argv and shutil.which(argv[0]) is None:
        argv = ["sleep", "infinity"]  # the image's program is not on this machine
    prefix = ["unshare", "-n", "--"] if new_netns else (["nsenter", "-t", str(join), "-n", "--"] if join else [])
    proc = subprocess.Popen(
        prefix + (argv or ["sleep", "infinity"]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    if prefix:
        _moved(proc.pid)
    return proc.pid


def _moved(pid: int, timeout: float = 30.0) -> None:
    """Wait until *pid* has left this namespace (unshare and nsenter switch after they start)."""
    here, deadline = os.readlink("/proc/self/ns/net"), time.monotonic() + timeout
    while os.readlink(f"/proc/{pid}/ns/net") == here:
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} did not enter its namespace within {timeout:g} s")
        time.sleep(0.005)  # polled with a deadline: no netlink event tells when another process switches


def _new(ident: str | None, name: str | None, pid: int, ip: str | None) -> dict:
    ident = ident or secrets.token_hex(32)
    if len(ident) < 64:
        ident += hashlib.sha256(ident.encode()).hexdigest()[: 64 - len(ident)]
    return _save({"id": ident, "name": name or ident[:12], "pid": pid, "ip": ip or ""})


def _bridge_wire(pid: int, host_veth: str | None = None) -> str:
    """Docker's default network for the namespace of *pid*: docker0, a veth, eth0 172.17.0.N/16."""
    _bridge()
    n = 2 + sum(1 for c in _containers() if c["ip"].startswith(NETWORK + "."))
    ip, host = f"{NETWORK}.{n}", host_veth or "veth" + secrets.token_hex(4)[:7]
    _ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", str(pid))
    _ip("link", "set", host, "master", BRIDGE, "up")
    inside = ["nsenter", "-t", str(pid), "-n", "--", "ip"]
    for args in (
        ["link", "set", "eth0", "address", "02:42:ac:11:00:%02x" % n],
        ["addr", "add", f"{ip}/16", "dev", "eth0"],
        ["link", "set", "lo", "up"],
        ["link", "set", "eth0", "up"],
        ["route", "add", "default", "via", f"{NETWORK}.1"],
    ):
        subprocess.run(inside + args, check=True)
    return ip


def _bridge() -> None:
    if not os.path.exists(f"/sys/class/net/{BRIDGE}"):
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{NETWORK}.1/16", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")


def _given(ref: str, host_veth: str | None) -> None:
    if _find(ref) is not None:
        return
    if KIND_NODE.match(ref):
        _node(ref)
        return
    pid = _spawn(["sleep", "infinity"], new_netns=True)
    _save(
        {
            **_new(ref if re.fullmatch(r"[0-9a-f]+", ref) else None, None if re.fullmatch(r"[0-9a-f]+", ref) else ref, pid, None),
            "ip": _bridge_wire(pid, host_veth),
        }
    )


def _options(args: list[str], valued: set[str]) -> tuple[dict[str, str], list[str]]:
    """`--net=none -d --name x IMAGE CMD` -> ({'--net': 'none', '-d': '', '--name': 'x'}, [IMAGE, CMD...])."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        key, eq, value = args[i].partition("=")
        if not eq and key in valued and i + 1 < len(args):
            value, i = args[i + 1], i + 1
        for flag in [key] if key.startswith("--") or len(key) == 2 or eq else [f"-{c}" for c in key[1:]]:
            opts[flag] = value
        i += 1
    return opts, args[i:]


def _run(args: list[str]) -> int:
    opts, rest = _options(args, {"--net", "--network", "--name", "-e", "--env", "-v", "-p", "-w", "--hostname", "-h"})
    if not rest:
        return _usage('"docker run" requires at least 1 argument (an image)')
    net = opts.get("--net", opts.get("--network", "bridge"))
    command = rest[1:]
    if net.startswith("container:"):
        other = _find(net.split(":", 1)[1])
        if other is None:
            return _usage(f"no such container: {net.split(':', 1)[1]}")
        pid = _spawn(command, new_netns=False, join=other["pid"]) if "-d" in opts else None
        if pid is None:
            return subprocess.call(["nsenter", "-t", str(other["pid"]), "-n", "--", *(command or ["true"])])
        c = _new(None, opts.get("--name"), pid, other["ip"])
    else:
        pid = _spawn(command if "-d" in opts else ["sleep", "infinity"], new_netns=net != "host")
        c = _new(None, opts.get("--name"), pid, None)
        if net in ("bridge", "default"):
            c = _save({**c, "ip": _bridge_wire(pid)})
        if "-d" not in opts:
            return subprocess.call(["nsenter", "-t", str(pid), "-n", "--", *(command or ["true"])])
    print(c["id"])
    return 0


def _inspect(args: list[str]) -> int:
    opts, refs = _options(args, {"-f", "--format", "--type"})
    template = opts.get("-f", opts.get("--format"))
    status = 0
    for ref in refs:
        c = _find(ref)
        if c is None:
            print(f"Error: No such object: {ref}", file=sys.stderr)
            status = 1
            continue
        if template is None:
            print(
                json.dumps(
                    [{"Id": c["id"], "Name": "/" + c["name"], "State": {"Pid": c["pid"], "Running": True}, "NetworkSettings": {"IPAddress": c["ip"]}}], indent=4
                )
            )
        else:
            print(_render(template, c))
    return status


def _render(template: str, c: dict) -> str:
    values = {**c, "short": c["id"][:12], "running": "true", "name": "/" + c["name"]}

    def field(m: re.Match) -> str:
        key = FORMAT_FIELDS.get(m.group(1))
        return str(values[key]) if key else m.group(0)

    return re.sub(r"\{\{\s*([.\w]+)\s*\}\}", field, template)


def _exec(args: list[str]) -> int:
    opts, rest = _options(args, {"-e", "--env", "-w", "-u", "--user"})
    if len(rest) < 2:
        return _usage('"docker exec" requires at least 2 arguments (a container and a command)')
    c = _find(rest[0])
    if c is None:
        print(f"Error response from daemon: No such container: {rest[0]}", file=sys.stderr)
        return 1
    return subprocess.call(["nsenter", "-t", str(c["pid"]), "-n", "--", *rest[1:]])


def _ps(args: list[str]) -> int:
    opts, _ = _options(args, {"--format", "-f", "--filter"})
    rows = list(reversed(_containers()))  # newest first, as docker ps lists them
    if "-q" in opts:
        print("\n".join(c["id"][:12] for c in rows))
        return 0
    template = opts.get("--format")
    if template is None:
        print("CONTAINER ID   NAMES")
        print("\n".join(f"{c['id'][:12]}   {c['name']}" for c in rows))
        return 0
    table = template.startswith("table ")
    template = template[6:] if table else template
    if table:
        print(re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: {"ID": "CONTAINER ID"}.get(m.group(1), m.group(1).upper()), template))
    for c in sorted(rows, key=lambda c: c["id"]) if table else rows:
        print(_render(template, c))
    return 0


# -- kind ----------------------------------------------------------------------------------
def _kind(args: list[str]) -> int:
    if args[:2] == ["get", "nodes"]:
        print("\n".join(c["name"] for c in _containers() if KIND_NODE.match(c["name"])))
        return 0
    if args[:2] == ["create", "cluster"]:
        print("the replay made the cluster before the first command (nodes: kind get nodes)")
        return 0
    return _usage(f"kind {' '.join(args[:2])}: the stand-in plays only `kind create cluster` and `kind get nodes`")


def _node(name: str) -> None:
    """Register the kind node *name*, a namespace the replay built (nslab/replay/given.py), as a container."""
    if _find(name) is None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", name, "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _moved(proc.pid)
        _new(None, name, proc.pid, "")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
