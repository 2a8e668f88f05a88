"""A replayed step as the lines `nslab replay` prints."""

from __future__ import annotations

from nslab.replay.runner import Step


def step_text(step: Step) -> str:
    expect = f"   # expect: {step.expect}" if step.expect else ""
    lines = [f"[{step.n:>2}] line {step.line}: {step.command}{expect}"]
    pad = " " * 5
    if step.kind in ("skipped", "shell"):
        lines.append(f"{pad}{'skipped' if step.kind == 'skipped' else 'shell'}: {step.note}")
        return "\n".join(lines)
    lines.append(pad + _status(step))
    lines += [f"{pad}| {line}" for line in step.output]
    if step.note and step.kind not in ("server", "reach"):
        lines.append(f"{pad}{step.note}")
    if step.verdict is not None:
        v = step.verdict
        lines.append(f"{pad}nslab: {v['summary']}")
        if not v["ok"]:
            where = f" ({v['where']})" if v["where"] else ""
            reason = f"; the kernel's drop reason: {v['reason']}" if v["reason"] else ""
            lines.append(f"{pad}       cause: {v['cause_text'] or 'unknown'}{where}{reason}")
        if v["explanation"]:
            lines.append(f"{pad}       why: {v['explanation']}")
    if step.note and step.kind == "reach":
        lines.append(f"{pad}{step.note}")
    lines += [f"{pad}fix (verified): {fix}" for fix in step.fixes]
    lines += [f"{pad}FINDING {f['kind']}: {f['text']}" for f in step.findings]
    return "\n".join(lines)


def _status(step: Step) -> str:
    if step.kind == "server":
        return f"server: {step.note}"
    if step.hung:
        return f"hung: still running after {step.elapsed:.1f} s, stopped"
    if step.interrupted:
        return f"ran until interrupted: Ctrl-C after {step.elapsed:.1f} s, exit {step.status}"
    return f"exit {step.status} ({step.elapsed:.2f} s)"
