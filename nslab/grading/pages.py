"""A class's feedback as HTML: one page per student and a class summary page.

Each page is self-contained (styles inline, diagrams inline SVG, no script, no
link outside the output directory but to its sibling pages), so the
directory opens offline, as files or from an LMS. Diagrams are drawn by the
caller's `svg_of` (DOT -> inline SVG; the CLI passes nslab.views' renderer):
the grading layer does not draw.
"""

from __future__ import annotations

from html import escape
from typing import Callable

from nslab.grading.exercise import Exercise
from nslab.grading.gradebook import causes, page_name, pass_rates, student_id
from nslab.grading.scoring import OUTPUT_TAIL, CheckResult, Grade

SvgOf = Callable[[str], str]  # DOT source -> inline <svg> (or a sentence saying why there is none)
SUMMARY = "index.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1d2733; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.5em; }
.score { font-size: 1.3em; font-weight: bold; }
.check { border: 1px solid #d5dbe3; border-radius: 6px; margin: .6em 0; padding: .5em .8em; }
.check.pass { border-left: 6px solid #2d8a3e; } .check.fail { border-left: 6px solid #c0392b; background: #fffafa; }
.verdict { font-weight: bold; } .pass .verdict { color: #2d8a3e; } .fail .verdict { color: #c0392b; }
dl { display: grid; grid-template-columns: 6em 1fr; gap: .2em .8em; margin: .4em 0; } dt { color: #5b6776; } dd { margin: 0; }
code, pre { font-family: ui-monospace, monospace; font-size: .92em; } pre { background: #f4f6f8; padding: .6em; overflow-x: auto; }
.path svg { max-width: 100%; height: auto; } .note { color: #5b6776; }
table { border-collapse: collapse; } td, th { border-bottom: 1px solid #d5dbe3; padding: .25em .7em; text-align: left; vertical-align: top; }
.bar { background: #e4e9ef; width: 10em; height: .9em; display: inline-block; } .bar span { background: #2d8a3e; height: 100%; display: block; }
"""


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head><body>", *body, "</body></html>", ""]
    )


def student_page(exercise: Exercise, grade: Grade, svg_of: SvgOf) -> str:
    """A student's feedback: score, every check (what was seen; for a failure the why, the hint,
    the packet's path drawn and the verified fixes), and the end of the script's output."""
    sid = student_id(grade.submission)
    body = [
        f'<p><a href="{SUMMARY}">Class summary</a></p>',
        f"<h1>{escape(exercise.title)}: {escape(sid)}</h1>",
        f'<p class="score" id="score">{grade.score} / {grade.total} points</p>',
    ]
    if grade.reason:
        body.append(f'<p class="fail" id="reason">Graded zero: {escape(grade.reason)}</p>')
    if grade.script_status:
        body.append(f'<p class="note">Your script exited with status {grade.script_status}.</p>')
    tail = [line for line in grade.output.splitlines() if line.strip()][-OUTPUT_TAIL:]
    if tail and not grade.full_marks:
        body += ["<h2>The end of your script's output</h2>", f"<pre>{escape(chr(10).join(tail))}</pre>"]
    body.append("<h2>Checks</h2>")
    body += [_check(r, svg_of) for r in grade.checks]
    return _page(f"{sid}: {exercise.title}", body)


def _check(r: CheckResult, svg_of: SvgOf) -> str:
    state = "pass" if r.passed else "fail"
    rows = [("saw", escape(r.detail))]
    if r.explanation:
        rows.append(("why", escape(r.explanation)))
    if r.hint:
        rows.append(("hint", escape(r.hint)))
    rows += [("fix", f"<code>{escape(fix)}</code> <span class='note'>(verified on a copy of your namespaces)</span>") for fix in r.fixes]
    parts = [
        f'<div class="check {state}" id="check-{escape(r.id)}">',
        f'<span class="verdict">{state.upper()}</span> {r.earned}/{r.points} {escape(r.description)}',
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>",
    ]
    if r.path:
        parts.append(f'<div class="path"><p class="note">The packet\'s path (numbered in order) and where it stopped:</p>{svg_of(r.path)}</div>')
    parts.append("</div>")
    return "\n".join(parts)


def summary_page(exercise: Exercise, grades: list[Grade], drop_reasons: str = "") -> str:
    """The class at a glance: scores, the pass rate of each check, the most common causes with
    their counts and the students who ran into each."""
    n = len(grades)
    full = sum(g.full_marks for g in grades)
    mean = sum(g.score for g in grades) / n if n else 0.0
    body = [
        f"<h1>{escape(exercise.title)}: class summary</h1>",
        f'<p id="overview">{n} students, {full} with full marks; mean score {mean:.1f} of {exercise.total}.</p>',
        "<h2>Pass rate per check</h2>",
        '<table id="pass-rates"><tr><th>check</th><th>what</th><th>passed</th><th></th></tr>',
    ]
    for cid, what, passed, total in pass_rates(exercise, grades):
        pct = 100 * passed / total if total else 0
        body.append(
            f"<tr><td>{escape(cid)}</td><td>{escape(what)}</td><td>{passed}/{total} ({pct:.0f}%)</td>"
            f'<td><span class="bar"><span style="width:{pct:.0f}%"></span></span></td></tr>'
        )
    body += ["</table>", "<h2>Most common causes</h2>", '<table id="causes"><tr><th>students</th><th>cause</th><th>checks</th><th>who</th></tr>']
    for cause in causes(grades):
        who = ", ".join(f'<a href="{page_name(s)}">{escape(s)}</a>' for s in cause.students)
        body.append(f"<tr><td>{len(cause.students)}</td><td>{escape(cause.key)}</td><td>{escape(', '.join(sorted(cause.checks)))}</td><td>{who}</td></tr>")
    body += ["</table>", "<h2>Students</h2>", '<table id="students"><tr><th>student</th><th>score</th><th></th></tr>']
    for g in sorted(grades, key=lambda g: student_id(g.submission)):
        sid = student_id(g.submission)
        body.append(f'<tr><td><a href="{page_name(sid)}">{escape(sid)}</a></td><td>{g.score}/{g.total}</td><td>{escape(g.reason or "")}</td></tr>')
    body.append("</table>")
    if drop_reasons:
        body.append(f'<p class="note">{escape(drop_reasons)}</p>')
    return _page(f"{exercise.title}: class summary", body)


__all__ = ["SUMMARY", "student_page", "summary_page"]
