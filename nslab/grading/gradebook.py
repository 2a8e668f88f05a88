"""A class's grades as files: the gradebook CSV an LMS imports, and the causes the class ran into.

    gradebook.csv   id,total,maximum,<one column per check id, the points earned>

A student's id is the stem of their submission's file name (`alice.sh` -> `alice`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from nslab.grading.exercise import Exercise
from nslab.grading.scoring import CheckResult, Grade
from nslab.probes.result import Cause

ID_CHARS = re.compile(r"[^A-Za-z0-9._@+-]")


def student_id(path: str) -> str:
    """The id of the student whose submission is *path*: its file name's stem."""
    return Path(path).stem


def page_name(sid: str) -> str:
    """The file name of a student's feedback page (safe on any file system, never hidden)."""
    return "student-" + ID_CHARS.sub("_", sid) + ".html"


def submissions(directory: Path) -> list[Path]:
    """Every regular, non-hidden file directly in *directory*, by name; ValueError when two share an id."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    seen: dict[str, Path] = {}
    for p in files:
        other = seen.setdefault(page_name(student_id(p.name)), p)
        if other is not p:
            raise ValueError(f"{other.name} and {p.name} give the same student id {student_id(p.name)!r}; rename one")
    return files


def csv_text(exercise: Exercise, grades: list[Grade]) -> str:
    """id, total, maximum, then the points earned in each check (in the exercise's order)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets and LMS importers expect
    writer.writerow(["id", "total", "maximum", *(c.id for c in exercise.checks)])
    for g in grades:
        earned = {r.id: r.earned for r in g.checks}
        writer.writerow([student_id(g.submission), g.score, g.total, *(earned.get(c.id, 0) for c in exercise.checks)])
    return out.getvalue()


@dataclass
class CommonCause:
    """One reason the class lost points, and who ran into it."""

    key: str  # what is shown: the probe's cause, the limit that stopped a script, or the failed check
    checks: set[str] = field(default_factory=set)
    students: list[str] = field(default_factory=list)


def causes(grades: list[Grade]) -> list[CommonCause]:
    """The causes of lost points, most common first (counted once per student)."""
    found: dict[str, CommonCause] = {}
    for g in grades:
        sid = student_id(g.submission)
        for key, check in _keys(g):
            cause = found.setdefault(key, CommonCause(key))
            cause.checks.add(check)
            if not cause.students or cause.students[-1] != sid:
                cause.students.append(sid)
    return sorted(found.values(), key=lambda c: (-len(c.students), c.key))


def _keys(g: Grade) -> list[tuple[str, str]]:
    if g.reason:
        return [(f"not graded: {g.reason.split(':')[0]}", "(all)")]
    return [(cause_of(r), r.id) for r in g.checks if not r.passed]


def cause_of(r: CheckResult) -> str:
    """A failed check's cause in words: the probe's (nslab.Cause), else the check that failed."""
    if r.cause is not None and r.cause in Cause.__members__:
        return f"{Cause[r.cause].value} ({r.cause})"
    return f"failed check: {r.description}"


def pass_rates(exercise: Exercise, grades: list[Grade]) -> list[tuple[str, str, int, int]]:
    """(check id, description, students who passed it, students) for each check."""
    rows = []
    for c in exercise.checks:
        passed = sum(1 for g in grades if any(r.id == c.id and r.passed for r in g.checks))
        rows.append((c.id, c.describe(), passed, len(grades)))
    return rows


__all__ = ["CommonCause", "causes", "csv_text", "page_name", "pass_rates", "student_id", "submissions"]
