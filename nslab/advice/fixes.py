"""Verified fixes for a failed probe of a lab, as the lines a learner types.

    for line in fixes_for(result, lab):
        print("fix (verified):", line)

The namespaces involved are read (never changed), copied into a fresh
sandbox, and changes are tried there (nslab/advice/trials.py). Commands are
shown as typed from the machine's own namespace: `ip netns exec NS ...` for a
named namespace, nothing for the one given as *here* (a tutorial's "host"),
`nsenter -t PID -n ...` for one known by a process.
"""

from __future__ import annotations

import shlex
import time
from typing import Mapping

from nslab.advice.changes import Hint
from nslab.advice.copy import owner, read_state
from nslab.advice.trials import Probe, Search, hint_of, search
from nslab.lab.live import Lab
from nslab.model.queries import veth_peers
from nslab.probes.result import Cause, Result

COPY_ALL_UP_TO = 16  # namespaces; a larger lab is copied around the probe's way only


def fixes_for(result: Result, lab: Lab, *, prefixes: Mapping[str, str] | None = None, budget: float = 3.0) -> list[str]:
    """The verified fixes for *result* (a failed probe of *lab*), one line each
    (two changes together are joined with `&&`); [] when it succeeded or none was found."""
    found = find(result, lab, budget=budget)
    return [fix_line(f.changes, prefixes) for f in found.fixes]


def find(result: Result, lab: Lab, *, budget: float = 3.0, names: list[str] | None = None) -> Search:
    """Search verified fixes for *result*; the Search says why when there are none."""
    if result.ok:
        return Search(note="the probe succeeded: nothing to fix")
    probe = Probe.of(result)
    if probe is None:
        return Search(note=f"no fix is searched for a {result.probe} probe")
    if result.cause is Cause.PORT_CLOSED and not result.remedies:  # a remedy says the network should not have delivered it there
        return Search(note=f"the network delivered it: no socket there takes it on port {probe.port}; start the server, or bind it to the address asked for")
    start = time.monotonic()
    hint = hint_of(result)
    state = read_state(lab, names or _names(lab, probe, hint), target=probe.dst)
    held = owner(state, probe.dst)
    if probe.kind == "tcp" and held is not None:
        state.listeners = {held[0]: [probe.port or 0]}
    found = search(state, probe, hint, budget=budget, origin=start)
    found.seconds = time.monotonic() - start  # reading the namespaces included, as for each Fix.seconds
    return found


def _names(lab: Lab, probe: Probe, hint: Hint) -> list[str]:
    """Every namespace of a small lab; else the sender, the target, where it
    stopped or was seen, and their veth neighbours."""
    names = [ns.name for ns in lab.namespaces]
    if len(names) <= COPY_ALL_UP_TO:
        return names
    target = lab.owner_of(probe.dst)
    core = {probe.src, hint.where, *(hint.seen), target.name if target else None} - {None}
    peers = veth_peers(lab.topology)
    near = {far[0] for end, far in peers.items() if end[0] in core}
    return [n for n in names if n in core | near]


# -- as typed ---------------------------------------------------------------------------
def prefix(ns: str, prefixes: Mapping[str, str] | None) -> str:
    """How a command is run in *ns* from the machine's namespace ('' for that one itself)."""
    if prefixes is not None and ns in prefixes:
        return prefixes[ns]
    return f"ip netns exec {shlex.quote(ns)} "


def change_lines(change: dict, prefixes: Mapping[str, str] | None) -> list[str]:
    return [prefix(change["ns"], prefixes) + shlex.join(argv) for argv in change["commands"]]


def fix_line(changes: list[dict], prefixes: Mapping[str, str] | None) -> str:
    return " && ".join(line for change in changes for line in change_lines(change, prefixes))
