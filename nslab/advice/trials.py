"""Verified fixes: try changes on a copy of the namespaces, keep those that make
the same probe succeed.

`search()` forks a child that enters a fresh private sandbox of its own,
builds the copy there (nslab/advice/copy.py), checks that the probe fails
there too, then tries each single change (apply, probe, undo), and, when no
single change works, pairs of them within a time bound. The original
namespaces are only read, before the fork. The child (nslab/kernel/child.py)
answers with a Search and exits; the kernel drops its sandbox and the copy
with it. The copy's probes go without the kernel's drop reasons: captures and
counters decide, and no bpftrace takes a second to attach in each child.
"""

from __future__ import annotations

import itertools
import shutil
import time
from dataclasses import dataclass, field

from nslab.advice.changes import Change, Hint, candidates
from nslab.advice.copy import State, build, fingerprint
from nslab.kernel import child
from nslab.lab.live import Lab, wait_ready
from nslab.probes.result import Cause, Result

MAX_FIXES = 4  # verified single changes kept (the likeliest first)
MAX_PAIR_PARTS = 14  # the likeliest singles combined into pairs
TRIAL_TIMEOUT = 0.2  # s per trial probe the evidence cannot settle earlier (a fix answers in ms)
PROPOSED_TIMEOUT = 1.0  # s for a trial of what the decision that stopped the packet proposes: the likeliest fix
# is not to be lost to a busy machine that keeps the probe from running for a moment


@dataclass(frozen=True)
class Probe:
    """The probe to repeat on the copy: ping, TCP connect or ARP, from *src* to *dst*."""

    kind: str  # 'ping', 'tcp', 'arp'
    src: str
    dst: str
    port: int | None = None
    dev: str | None = None  # ARP: the interface asked on

    @classmethod
    def of(cls, result: Result) -> Probe | None:
        """The probe behind *result* (an HTTP GET is repeated as its TCP handshake)."""
        if result.probe == "ping":
            return cls("ping", result.src, result.dst)
        if result.probe == "arp":
            return cls("arp", result.src, result.dst, dev=result.dev)
        if result.probe in ("tcp", "http"):
            hostport = result.dst.split("/", 1)[0]
            host, _, port = hostport.rpartition(":")
            host = host[1:-1] if host.startswith("[") else host  # an IPv6 address is written [fd00::2]:80
            return cls("tcp", result.src, host, int(port)) if port.isdigit() else None
        return None

    def run(self, lab: Lab, timeout: float | None = None) -> Result:
        ns = lab.ns(self.src)
        if self.kind == "ping":
            return ns.ping(self.dst, timeout=timeout)
        if self.kind == "arp":
            return ns.arp(self.dst, self.dev or "", timeout=timeout)
        return ns.connect(self.dst, self.port or 0, timeout=timeout)

    def __str__(self) -> str:
        to = f"{self.dst}:{self.port}" if self.port else self.dst
        return f"{self.kind} from {self.src} to {to}" + (f" on {self.dev}" if self.dev else "")


@dataclass
class Fix:
    changes: list[dict]  # Change.to_dict() of each part
    seconds: float  # from the start of the search to this fix verified


@dataclass
class Search:
    fixes: list[Fix] = field(default_factory=list)
    tried: int = 0  # trials run (singles and pairs)
    seconds: float = 0.0
    note: str | None = None  # why nothing was verified, or what was left out
    verdict: dict | None = None  # the probe on the copy, before any change (see verdict_of)


def search(state: State, probe: Probe, hint: Hint | None, *, budget: float = 3.0, fixes: bool = True, origin: float | None = None) -> Search:
    """Find verified fixes for *probe* on a copy of *state* (in a forked child, bounded).

    The probe's verdict on the copy comes back as `Search.verdict`; *hint*
    None takes it from that verdict; *fixes* False stops after the verdict. Times
    (the budget, each Fix.seconds) count from *origin* (time.monotonic(); default: now)."""
    start = time.monotonic() if origin is None else origin
    _preload()
    try:
        found = child.run(_in_sandbox, state, probe, hint, budget, fixes, start, timeout=start + budget + 20.0 - time.monotonic())
    except child.ChildTimeout:
        found = Search(note="no fix was searched: the search was stopped at its deadline")
    except Exception as exc:  # noqa: BLE001 - the search's own failure, said in the answer
        found = Search(note=f"no fix was searched: {type(exc).__name__}: {exc}")
    found.seconds = time.monotonic() - start
    return found


def _preload() -> None:
    """Import what the child uses here, once, so that each forked child starts warm (about 0.2 s each)."""
    import nslab.diagnosis.explain
    import nslab.diagnosis.watch
    import nslab.probes.arp
    import nslab.probes.icmp
    import nslab.probes.tcp  # noqa: F401


# -- in the child ----------------------------------------------------------------------
def _in_sandbox(state: State, probe: Probe, hint: Hint | None, budget: float, fixes: bool, start: float) -> Search:
    from nslab.kernel import sandbox

    sandbox.enter()  # a forked child enters a sandbox of its own
    return _run(state, probe, hint, budget, fixes, start)


def _run(state: State, probe: Probe, hint: Hint | None, budget: float, fixes: bool, start: float) -> Search:
    lab = build(state, timeout=TRIAL_TIMEOUT if fixes else 1.0, drop_reasons=False)
    base = _afresh(lab, probe)
    found = Search(verdict=verdict_of(base))
    if base.ok:
        if fixes:
            found.note = f"the copy of {', '.join(state.names)} answers the same probe, so no change could be verified; what differs was not copied: {_missing(state)}"
        return found
    if not fixes or (base.cause is Cause.PORT_CLOSED and not base.remedies and not (hint and hint.remedies)):  # a remedy: not where it should have been delivered
        return found
    lab.timeout = TRIAL_TIMEOUT
    singles = candidates(lab, state, probe.src, probe.dst, hint or hint_of(base), base.remedies)
    trial = _Trials(lab, state, probe, fingerprint(lab), start)
    found.fixes = _singles(trial, singles, budget)
    note = None
    if not found.fixes:
        found.fixes, note = _pairs(trial, singles, budget)
    if not found.fixes:
        tried = f"{trial.count} change{'s' if trial.count != 1 else ''} tried" if singles else "no change to try"
        note = f"no verified fix found ({tried}{'; ' + note if note else ''})" + (f"; not copied: {_missing(state)}" if state.missing else "")
    found.tried, found.note = trial.count, note
    return found


def _afresh(lab: Lab, probe: Probe, timeout: float | None = None) -> Result:
    """*probe* on the copy, its learnt neighbours forgotten and its links ready: the baseline as each
    trial. With the copied entries the baseline's first packet left at once, and a netdev egress
    chain's drop failed the send (ENOBUFS); a trial's waited for its next hop, was dropped later, and
    timed out (./run soundness --generated 120 --seed 41, case 87: the copy's outcome differed from
    the original's)."""
    for ns in lab.namespaces:
        ns.flush_neighbours()
    wait_ready(lab)
    return probe.run(lab, timeout=timeout)


def _singles(trial: "_Trials", singles: list[Change], budget: float) -> list[Fix]:
    out: list[Fix] = []
    for change in singles:
        if time.monotonic() - trial.start > budget or len(out) >= MAX_FIXES:
            break
        if trial.works([change]):
            out.append(Fix([change.to_dict()], time.monotonic() - trial.start))
    return out


def _pairs(trial: "_Trials", singles: list[Change], budget: float) -> tuple[list[Fix], str | None]:
    for pair in itertools.combinations(singles[:MAX_PAIR_PARTS], 2):
        if time.monotonic() - trial.start > budget:
            return [], f"stopped trying pairs at the time bound ({budget:g} s)"
        if trial.works(list(pair)):
            return [Fix([c.to_dict() for c in pair], time.monotonic() - trial.start)], None
    return [], None


def verdict_of(result: Result) -> dict:
    """A result as plain data: verdict, cause, where, the kernel's reason, explanation, trace."""
    return {
        "ok": result.ok,
        "outcome": result.outcome.value,
        "summary": result.summary(),
        "decided_early": result.decided_early,
        "cause": result.cause.name if result.cause else None,
        "cause_text": result.cause.value if result.cause else None,
        "where": str(result.where) if result.where else None,
        "reason": result.reason,
        "explanation": result.explanation,
        "trace": result.evidence.trace() if result.evidence is not None else "",
    }


def hint_of(result: Result) -> Hint:
    """What *result*'s evidence says about where to look."""
    ev = result.evidence
    seen = tuple(dict.fromkeys(s.ns for s in ev.sightings)) if ev is not None else ()
    source = (ev.request_src or ev.sender_route.src) if ev is not None else None
    return Hint(result.cause.name if result.cause else None, result.where.ns if result.where else None, source, seen, result.remedies)


def _missing(state: State) -> str:
    unread = ["nftables rules, if any (nft is not installed: apt-get install nftables)"] if shutil.which("nft") is None else []  # nslab reads them with nft
    return ", ".join(state.missing + unread) or "nothing nslab reads (it reads no tc state: queueing disciplines, filters, actions)"


class _Trials:
    """Apply, probe, undo; rebuild the copy if an undo did not bring it back."""

    def __init__(self, lab: Lab, state: State, probe: Probe, baseline: tuple, start: float):
        self.lab, self.state, self.probe, self.baseline, self.start = lab, state, probe, baseline, start
        self.count = 0

    def works(self, changes: list[Change]) -> bool:
        self.count += 1
        done: list[Change] = []
        ok = False
        try:
            for change in changes:
                done.append(change)
                if not self._apply(change):
                    return False
            ok = _afresh(self.lab, self.probe, PROPOSED_TIMEOUT if any(c.proposed for c in changes) else None).ok
        finally:
            for change in reversed(done):
                self._undo(change)
            if fingerprint(self.lab) != self.baseline:
                self.lab.close()
                self.lab = build(self.state, timeout=TRIAL_TIMEOUT)
        return ok

    def _apply(self, change: Change) -> bool:
        ns = self.lab.ns(change.ns)
        return all(ns.run(list(argv), timeout=10).returncode == 0 for argv in change.commands)

    def _undo(self, change: Change) -> None:
        ns = self.lab.ns(change.ns)
        if change.restore_rules:
            text = "flush ruleset\n" + self.state.rulesets.get(change.ns, "") + "\n"
            ns.run(["nft", "-f", "-"], input=text.encode(), timeout=10)
        for argv in change.undo:
            ns.run(list(argv), timeout=10)
