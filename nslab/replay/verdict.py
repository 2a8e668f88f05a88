"""nslab's verdict on a tutorial's reachability command, taken on a copy.

The stage's namespaces are adopted and read by a forked child in a sandbox of
its own (so the replay holds no reference to them between commands: `ip netns
del` works as on a real machine), then the same probe runs on a copy of them
(nslab/advice/trials.py). The tutorial's own servers and sockets are never
touched: a one-shot `nc -l` is still there for the learner's client.
"""

from __future__ import annotations

from nslab.advice.copy import State, read_state
from nslab.advice.trials import Probe, Search, search
from nslab.kernel import child
from nslab.replay.stage import Stage

HOST = "host"


def state_of(stage: Stage, port: int | None = None, *, target: str | None = None, timeout: float = 20.0) -> State | str:
    """The stage's namespaces ("host" and each of its /run/netns) as a State, or why not (one line)."""
    try:
        return child.run(_read, stage, port, target, timeout=timeout)
    except child.ChildTimeout:
        return "the stage's namespaces could not be read in time"
    except Exception as exc:  # noqa: BLE001 - said in one line
        return f"{type(exc).__name__}: {exc}"


def verdict(stage: Stage, src: str, dst: str, port: int | None, *, fixes: bool = False, budget: float = 3.0) -> Search:
    """The probe from *src* to *dst* (TCP *port*, else ping) on a copy of the stage's namespaces."""
    state = state_of(stage, port, target=dst)
    if isinstance(state, str):
        return Search(note=state)
    if src not in state.names:
        return Search(note=f"no namespace {src!r} in the tutorial's sandbox (it has {', '.join(state.names)})")
    return search(state, Probe("tcp" if port else "ping", src, dst, port), None, budget=budget, fixes=fixes)


def _read(stage: Stage, port: int | None, target: str | None) -> State:
    """In a forked child: adopt the stage's namespaces into a sandbox of the child's own, and read them."""
    from nslab.lab.live import Lab

    lab = Lab(drop_reasons=False).open()  # only reads: no probe, no bpftrace
    paths = {HOST: stage.host_path, **{n: p for n, p in stage.namespaces().items() if n != HOST}}
    for name, path in paths.items():
        try:
            lab.adopt_namespace(name, path)
        except Exception:  # noqa: BLE001, S112 - a name nslab cannot use, or not a namespace: left out
            continue
    return read_state(lab, port=port, target=target)  # with the listeners on *port*: the copy listens there too
