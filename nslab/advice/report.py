"""A probe's verdict, explanation, trace and verified fixes, for people and for scripts.

The text reads like a scenario failure: the verdict, the cause and where,
nslab's sentence, the per-hop trace, then each verified fix as the command
a learner types. The JSON holds the same, field by field.
"""

from __future__ import annotations

from typing import Mapping

from nslab.advice.fixes import fix_line
from nslab.advice.path import marks_of, role_of
from nslab.advice.trials import Search
from nslab.probes.result import Result


def to_dict(result: Result, found: Search | None, prefixes: Mapping[str, str] | None = None, target: str | None = None) -> dict:
    """Everything `nslab why --json` prints."""
    ev = result.evidence
    out = {
        "probe": result.probe,
        "src": result.src,
        "dst": result.dst,
        "target": target,
        "ok": result.ok,
        "outcome": result.outcome.value,
        "summary": result.summary(),
        "decided_early": result.decided_early,
        "elapsed_ms": round(result.elapsed * 1000, 3),
        "cause": result.cause.name if result.cause else None,
        "cause_text": result.cause.value if result.cause else None,
        "where": {"ns": result.where.ns, "dev": result.where.dev} if result.where else None,
        "reason": result.reason,
        "explanation": spoken(result.explanation, prefixes),
        "trace": _trace(result),
        "drops": [{"ns": d.ns, "dev": d.dev, "reason": d.reason} for d in ev.drops] if ev is not None else [],
        "drop_reasons_unread": ev.drop_reasons if ev is not None else None,
    }
    if found is not None:
        out["fixes"] = [{"command": fix_line(f.changes, prefixes), "changes": f.changes, "seconds": round(f.seconds, 3)} for f in found.fixes]
        out["fix_search"] = {"tried": found.tried, "seconds": round(found.seconds, 3), "note": found.note}
    out["path"] = marks_of(result, [f.changes for f in found.fixes] if found is not None else None)  # what --svg draws
    return out


def _trace(result: Result) -> list[dict]:
    ev = result.evidence
    if ev is None or not ev.sightings:
        return []
    t0 = min(s.time_ns for s in ev.sightings)
    return [
        {"ms": round((s.time_ns - t0) / 1e6, 3), "ns": s.ns, "dev": s.dev, "direction": s.direction, "role": role_of(result, s), "frame": s.summary()}
        for s in ev.sightings
    ]


def spoken(text: str, prefixes: Mapping[str, str] | None) -> str:
    """*text* with each `ip netns exec NAME ` the stages wrote said the way this machine reaches
    NAME: nothing for the namespace nslab runs in, `nsenter -t PID -n ` for one known by its process."""
    for name, prefix in (prefixes or {}).items():
        text = text.replace(f"ip netns exec {name} ", prefix)
    return text


def to_text(result: Result, found: Search | None, prefixes: Mapping[str, str] | None = None, target: str | None = None) -> str:
    """What `nslab why` prints."""
    head = result.summary()
    if target:
        head = head.replace(f" to {result.dst}", f" to {result.dst} ({target})", 1)
    lines = [head]
    if not result.ok:
        where = f" ({result.where})" if result.where else ""
        lines.append(
            f"cause: {result.cause.value if result.cause else 'unknown'}{where}" + (f"; the kernel's drop reason: {result.reason}" if result.reason else "")
        )
    if result.explanation:
        lines.append(f"why: {spoken(result.explanation, prefixes)}")
    if result.evidence is not None:
        lines.append("per-hop trace:")
        lines += ["  " + line for line in result.evidence.trace().splitlines()]
    if found is not None:
        lines += _fix_lines(found, prefixes)
    return "\n".join(lines)


def _fix_lines(found: Search, prefixes: Mapping[str, str] | None) -> list[str]:
    lines = []
    for f in found.fixes:
        label = "fix (verified)" if len(f.changes) == 1 else "fix (verified, both changes together)"
        lines.append(f"{label}: {fix_line(f.changes, prefixes)}")
    if found.fixes:
        lines.append(f"(each fix was tried on a copy of these namespaces in a private sandbox: {found.tried} trials in {found.seconds:.2f} s)")
    if found.note:
        lines.append(f"fixes: {found.note}")
    return lines
