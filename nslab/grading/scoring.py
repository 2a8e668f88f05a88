"""Scores and the three ways to show them: text for people, JSON and JUnit XML for autograders."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from nslab.grading.checks import Verdict
from nslab.grading.exercise import Check, Exercise

OUTPUT_TAIL = 5  # lines of the script's output shown under a score short of full marks


@dataclass
class CheckResult:
    id: str
    description: str
    points: int
    earned: int
    passed: bool
    detail: str
    hint: str = ""  # shown only for a failed check
    explanation: str = ""
    cause: str | None = None
    fixes: list[str] = field(default_factory=list)  # verified fixes of a failed check (nslab grade --fixes)
    path: str = ""  # a failed probe's way drawn on the lab, as Graphviz DOT (nslab grade --out)

    @classmethod
    def of(cls, check: Check, verdict: Verdict) -> CheckResult:
        return cls(
            check.id,
            check.describe(),
            check.points,
            check.points if verdict.passed else 0,
            verdict.passed,
            verdict.detail,
            "" if verdict.passed else check.hint,
            verdict.explanation,
            verdict.cause,
        )


@dataclass
class Grade:
    """One submission's result. `reason` is set when it was not graded on its
    merits (stopped by a limit, the jail failed): the score is then zero."""

    submission: str
    exercise: str
    score: int
    total: int
    checks: list[CheckResult] = field(default_factory=list)
    reason: str | None = None
    script_status: int | None = None
    output: str = ""
    elapsed: float = 0.0

    @property
    def full_marks(self) -> bool:
        return self.reason is None and self.score == self.total

    @classmethod
    def scored(cls, submission: str, exercise: Exercise, results: list[CheckResult], **extra: Any) -> Grade:
        return cls(submission, exercise.name, sum(r.earned for r in results), exercise.total, results, **extra)

    @classmethod
    def zero(cls, submission: str, exercise: Exercise, reason: str, **extra: Any) -> Grade:
        results = [CheckResult(c.id, c.describe(), c.points, 0, False, f"not checked: {reason}") for c in exercise.checks]
        return cls(submission, exercise.name, 0, exercise.total, results, reason=reason, **extra)

    def to_dict(self) -> dict[str, Any]:
        """As plain data (a grader's answer, the --json file). Every field is a string, a number,
        None or a list of strings, so one copy per level does (dataclasses.asdict deep-copies
        each value: 4% of a grader's CPU)."""
        return {**vars(self), "checks": [{**vars(c), "fixes": list(c.fixes)} for c in self.checks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grade:
        checks = [CheckResult(**c) for c in data.pop("checks")]
        return cls(checks=checks, **data)


def text(grade: Grade, *, verbose: bool = False) -> str:
    """The report a student reads: score, each check, and for each failure the hint and the why."""
    lines = [f"{grade.submission}: {grade.score}/{grade.total} points ({grade.exercise}, {grade.elapsed:.2f} s)"]
    if grade.reason:
        lines.append(f"  graded zero: {grade.reason}")
    elif grade.score == 0:
        lines.append("  graded zero: none of the checks passed")
    if grade.script_status:
        lines.append(f"  note: the script exited with status {grade.script_status}")
    if not grade.full_marks and grade.output.strip():
        tail = [line for line in grade.output.splitlines() if line.strip()][-OUTPUT_TAIL:]
        lines.append("  the script's output ends with:")
        lines += ["  | " + "".join(c if c.isprintable() else "?" for c in line[:200]) for line in tail]
    if grade.reason and not verbose:
        return "\n".join(lines)
    for r in grade.checks:
        lines.append(f"  {'PASS' if r.passed else 'FAIL'} {r.earned:>2}/{r.points:<2} {r.description}")
        if not r.passed or verbose:
            lines.append(f"             saw:  {r.detail}")
        if r.explanation:
            lines.append(f"             why:  {r.explanation}")
        if r.hint:
            lines.append(f"             hint: {r.hint}")
        lines += [f"             fix (verified): {fix}" for fix in r.fixes]
    return "\n".join(lines)


def to_json(grades: list[Grade]) -> str:
    return json.dumps({"submissions": [g.to_dict() for g in grades]}, indent=2)


def to_junit(grades: list[Grade]) -> str:
    """One <testsuite> per submission, one <testcase> per check (failed checks carry hint and why)."""
    root = ET.Element("testsuites", name="nslab grade")
    for g in grades:
        failures = sum(not r.passed for r in g.checks)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=g.submission,
            tests=str(len(g.checks)),
            failures=str(failures),
            errors="0",
            time=f"{g.elapsed:.3f}",
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (("exercise", g.exercise), ("score", g.score), ("total", g.total), ("reason", g.reason or "")):
            ET.SubElement(props, "property", name=key, value=str(value))
        for r in g.checks:
            case = ET.SubElement(suite, "testcase", classname=f"{g.exercise}.{g.submission}", name=r.id)
            if not r.passed:
                message = r.detail if not r.hint else f"{r.detail} -- hint: {r.hint}"
                fail = ET.SubElement(case, "failure", message=message, type=r.cause or "check")
                fail.text = "\n".join(x for x in (f"saw: {r.detail}", f"why: {r.explanation}" if r.explanation else "", f"hint: {r.hint}" if r.hint else "") if x)
        if g.output:
            ET.SubElement(suite, "system-out").text = g.output
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
