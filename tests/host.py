"""The real host's network state, read from the namespaces this process came
from (a test process may be inside its sandbox), for before/after comparisons.

A snapshot that cannot be read fails loudly: two empty snapshots would compare
equal and hide a leak."""

from __future__ import annotations

import subprocess

from nslab.kernel import sandbox

# /run/netns may not exist on a host that never made a named namespace: that is an empty list, not an error.
COMMANDS = (["ip", "netns", "list"], ["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"],
            ["sh", "-c", "[ ! -e /run/netns ] || ls -A /run/netns"])


class HostStateUnreadable(AssertionError):
    """A command that reads the host's state failed; the message says which and why."""


def host_state() -> str:
    parts = []
    for argv in COMMANDS:
        done = subprocess.run(sandbox.from_outside(argv), capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            raise HostStateUnreadable(f"cannot read the host's state: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[:300]}")
        parts.append(f"$ {' '.join(argv)}\n{done.stdout}")
    state = "\n".join(parts)
    if ": lo:" not in state:
        raise HostStateUnreadable(f"cannot read the host's state: `ip -o link` lists no lo (read from outside the sandbox: {sandbox.current() is not None})")
    return state
