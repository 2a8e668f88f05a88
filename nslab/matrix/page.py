"""The matrix as one self-contained HTML page: kernels, differences with each
kernel's evidence side by side, then every test by kernel."""

from __future__ import annotations

from html import escape
from pathlib import Path

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
.passed{background:#e6f4e6}.failed,.error{background:#fbe3e3}.skipped{background:#f6f1dc}
.xfail{background:#e8eaf6}.absent{color:#888}
pre{white-space:pre-wrap;font-size:12px;margin:0;max-height:30em;overflow:auto}
.diff td{width:45%}
"""


def write(runs: list, different: list[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(runs, different))
    return path


def render(runs: list, different: list[str]) -> str:
    ran = [r for r in runs if not r.problem]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>nslab matrix</title><style>{STYLE}</style></head><body>",
             "<h1>nslab matrix</h1>",
             "<h2>Kernels</h2><table><tr><th>kernel</th><th>release</th><th>acceleration</th><th>wall time</th><th>result</th><th>JUnit</th></tr>"]
    for r in runs:
        junit = f"<a href='{escape(r.kernel.slug)}/junit.xml'>junit.xml</a>" if r.cases else ""
        took = f"{r.seconds:.1f} s" if r.seconds else "-"
        parts.append(f"<tr><td>{escape(r.kernel.label)}</td><td>{escape(r.release)}</td><td>{escape(r.accel)}</td>"
                     f"<td>{took}</td><td>{escape(r.counts())}</td><td>{junit}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>Differences between kernels ({len(different)})</h2>")
    if len(ran) < 2:
        parts.append("<p>Fewer than two kernels ran; nothing to compare.</p>")
    for test in different:
        parts.append(f"<h3>{escape(test)}</h3><table class='diff'><tr>")
        parts += [f"<th>{escape(r.kernel.label)} ({escape(r.release)})</th>" for r in ran]
        parts.append("</tr><tr>")
        for r in ran:
            case = r.cases.get(test)
            verdict = case.verdict if case else "absent"
            detail = case.detail if case and case.detail else ""
            probes = r.evidence.get(test, "")
            evidence = f"<p>probes:</p><pre>{escape(probes)}</pre>" if probes else ""
            parts.append(f"<td class='{verdict}'><b>{verdict}</b><pre>{escape(detail)}</pre>{evidence}</td>")
        parts.append("</tr></table>")
    tests = sorted({t for r in ran for t in r.cases})
    if tests:
        parts.append("<h2>All tests</h2><table><tr><th>test</th>")
        parts += [f"<th>{escape(r.kernel.label)}</th>" for r in ran]
        parts.append("</tr>")
        for test in tests:
            parts.append(f"<tr><td>{escape(test)}</td>")
            for r in ran:
                case = r.cases.get(test)
                verdict = case.verdict if case else "absent"
                title = f" title='{escape(case.detail[:500], quote=True)}'" if case and case.detail else ""
                reason = f": {escape(case.detail.splitlines()[0][:120])}" if case and case.verdict in ("skipped", "xfail") and case.detail else ""
                parts.append(f"<td class='{verdict}'{title}>{verdict}{reason}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    problems = [r for r in runs if r.problem]
    if problems:
        parts.append("<h2>Kernels without verdicts</h2><ul>")
        parts += [f"<li>{escape(r.kernel.label)}: {escape(r.problem)}</li>" for r in problems]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
