"""What the tutorial's machine already had, made in the stage before its first command.

- Docker and kind, played by nslab/replay/standin.py, when the tutorial uses them: docker0,
  and the containers it uses but never starts (`docker exec 4d0e8ada345c ...`), their host
  ends named as the tutorial names them (`vetheeed635`);
- a value its machine printed (a PID, a container ID) that the stage prints otherwise: later
  commands that use the shown value get the stage's (`ln -s /proc/7863/ns/net ...`).
"""

from __future__ import annotations

import os
import re
import sys

from nslab.replay import standin
from nslab.replay.stage import Stage
from nslab.replay.tutorial import Command

USES = re.compile(r"(?:^|[;&|(`]\s*|\$\(\s*)(docker|kind)\s")
VALUE = re.compile(r"^[\w.:-]+$")


def uses_stand_ins(found: list[Command]) -> bool:
    return any(USES.search(c.text) for c in found) or any(c.container for c in found)


def prepare(stage: Stage, found: list[Command], timeout: float) -> list[str]:
    """Install the stand-ins and start the given containers; what was made, one line each (or why not)."""
    if not uses_stand_ins(found):
        return []
    script = standin.install_script(_python()) + f'\nexport PATH={standin.BIN}:"$PATH"'
    texts = [c.text for c in found]
    containers = standin.given(texts, [c.container for c in found if c.container])
    veths = standin.host_veths(texts)
    if any(re.search(r"\bkind\s+create\s+cluster\b", t) for t in texts) and not any(standin.KIND_NODE.match(r) for r in containers):
        containers.append("kind-control-plane")  # `kind create cluster` finds it made
    nodes = [ref for ref in containers if standin.KIND_NODE.match(ref)]
    lines = [f"{standin.BIN}/docker __bridge", *kind_cluster(nodes)]
    for ref in containers:
        veth = veths.pop(0) if veths and not standin.KIND_NODE.match(ref) else ""
        lines.append(f"{standin.BIN}/docker __given {ref} {veth}".rstrip())
    ran = stage.run(script + "\n" + " && ".join(lines), timeout=timeout)
    if ran.status != 0:
        return [f"the Docker stand-in could not start (exit {ran.status}): {ran.output.strip()[-200:]}"]
    made = ["docker and kind: nslab's stand-ins (run, inspect, exec, ps), docker0 172.17.0.1/16"]
    made += [f"kind nodes {', '.join(_node_names(nodes))}: built as nslab's cluster lab builds them (2 pods each)"] if nodes else []
    return made + [f"container {ref}: already running on the tutorial's machine, started first" for ref in containers if ref not in nodes]


def _python() -> str:
    """A Python the stage's user (uid 65534 outside) may run: the system's, else this one."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def _node_names(nodes: list[str]) -> list[str]:
    wanted = max((int(m.group(2) or 1) + 1 if m.group(2) is not None else 1 for m in map(standin.KIND_NODE.match, nodes) if m), default=1)
    return ["kind-control-plane"] + ["kind-worker" + (str(n) if n > 1 else "") for n in range(1, wanted)]


def kind_cluster(nodes: list[str]) -> list[str]:
    """The commands that build a kind cluster up to the last of *nodes* in the stage (its host the
    stage's own namespace, the nodes named as kind names them); none without nodes."""
    if not nodes:
        return []
    from nslab.tutorials.cluster import cluster, node
    from nslab.views.render import ip_commands

    names = {node(n): name for n, name in enumerate(_node_names(nodes), 1)}
    out = []
    for _, commands in ip_commands(cluster(len(names), 2)):
        for line in commands:
            if line == "ip netns add host":
                continue
            line = line.replace("ip -n host ", "ip ").replace("ip netns exec host ", "")
            for lab, kind in names.items():
                line = re.sub(rf"(?<![\w-]){lab}(?![\w-])", kind, line)
            out.append(line)
    return out


def learned(cmd: Command, printed: str) -> tuple[str, str] | None:
    """(shown, printed) when the tutorial shows one value (a PID, an ID) and the stage printed another."""
    shown = [line.strip() for line in cmd.shown if line.strip()]
    got = [line.strip() for line in printed.splitlines() if line.strip()]
    if len(shown) == 1 and len(got) == 1 and VALUE.match(shown[0]) and VALUE.match(got[0]) and shown[0] != got[0]:
        return shown[0], got[0]
    return None


def substitute(text: str, values: dict[str, str]) -> str:
    """*text* with each shown value that stands alone (`/proc/7863/ns`, not `ns-7863`) replaced."""
    for old, new in values.items():
        text = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, text)
    return text
