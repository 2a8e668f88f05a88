"""The real host's network state, read from the namespaces this process came
from (a test process may be inside its sandbox), for before/after comparisons."""

from __future__ import annotations

import subprocess

from nslab.kernel import sandbox

COMMANDS = (["ip", "netns", "list"], ["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"], ["ls", "-A", "/run/netns"])


def host_state() -> str:
    parts = []
    for argv in COMMANDS:
        done = subprocess.run(sandbox.from_outside(argv), capture_output=True, text=True, timeout=10, check=False)
        parts.append(f"$ {' '.join(argv)}\n{done.stdout}")
    return "\n".join(parts)
