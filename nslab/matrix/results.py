"""One kernel's verdicts, and the table that compares kernels (differences first)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from nslab.matrix.kernels import Kernel


@dataclass(frozen=True)
class Case:
    test: str
    verdict: str  # passed, failed, error, skipped, xfail
    detail: str = ""  # skip/xfail reason, or the failure text with nslab's explanation and trace


@dataclass
class Run:
    kernel: Kernel
    release: str = ""
    userland: str = ""  # whose ip, nft, ping and Python ran the labs, with their versions
    accel: str = ""
    seconds: float = 0.0
    problem: str = ""  # 'did not boot: ...' and the like: the run produced no verdicts
    cases: dict[str, Case] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # test -> its probes' verdicts, explanations, traces
    extra_skips: list[str] = field(default_factory=list)  # skipped here, run by the clean run, not for a missing feature
    compared_with: str = ""  # the clean run's label

    def counts(self) -> str:
        if self.problem:
            return self.problem
        tally: dict[str, int] = {}
        for case in self.cases.values():
            tally[case.verdict] = tally.get(case.verdict, 0) + 1
        text = ", ".join(f"{n} {v}" for v, n in sorted(tally.items())) or "no tests"
        if self.extra_skips:
            text += f" ({len(self.extra_skips)} more skipped than {self.compared_with}, not for a missing kernel feature)"
        return text

    @property
    def skipped(self) -> int:
        return sum(c.verdict == "skipped" for c in self.cases.values())

    @property
    def ok(self) -> bool:
        return not self.problem and not self.extra_skips and all(c.verdict not in ("failed", "error") for c in self.cases.values())


MISSING_FEATURE = "kernel lacks "  # how fixtures.features words a skip for a feature the kernel does not have


def compare_skips(runs: list[Run]) -> Run | None:
    """Mark, in each run, the tests it skipped that the clean run ran, unless the skip
    names a kernel feature this kernel lacks (what the matrix is for). The clean run is
    the host's if it ran, else the one that skipped least. A skip for any other reason
    (no sandbox, a missing tool) would hide a test, so such a run is not ok."""
    ran = [r for r in runs if not r.problem]
    if len(ran) < 2:
        return None
    clean = next((r for r in ran if r.kernel.name == "host"), None) or min(ran, key=lambda r: r.skipped)
    for r in ran:
        if r is clean:
            continue
        r.compared_with = clean.kernel.label
        r.extra_skips = [t for t, c in sorted(r.cases.items())
                         if c.verdict == "skipped" and not c.detail.startswith(MISSING_FEATURE)
                         and t in clean.cases and clean.cases[t].verdict != "skipped"]
    return clean


def read_junit(path: Path) -> dict[str, Case]:
    """Verdicts by test id ('test_module.py::test_name') from pytest's JUnit XML."""
    cases = {}
    for tc in ElementTree.parse(path).iter("testcase"):
        module, _, cls = tc.get("classname", "").partition(".")
        module, _, cls = (cls if module in ("scenarios", "tests") else f"{module}.{cls}").partition(".")
        test = f"{module.rsplit('.', 1)[-1]}.py::" + (f"{cls}::" if cls else "") + tc.get("name", "?")
        verdict, detail = "passed", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                verdict = "failed" if child.tag == "failure" else "error"
                detail = f"{child.get('message', '')}\n\n{child.text or ''}".strip()
                break
            if child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                verdict, detail = ("xfail" if xfail else "skipped"), child.get("message", "")
                break
        cases[test] = Case(test, verdict, detail)
    return cases


def read_evidence(path: Path) -> dict[str, str]:
    """Each test's probes (verdict, explanation, per-hop trace) from the run's summary.json."""
    try:
        tests = json.loads(path.read_text()).get("tests", [])
    except (OSError, ValueError):
        return {}
    evidence = {}
    for test in tests:
        probes = [p for lab in test.get("labs", []) for p in lab.get("probes", [])]
        text = "\n\n".join(f"{p.get('summary', '')}\n{p.get('explanation', '')}\n{p.get('trace', '')}".strip() for p in probes)
        if text:
            evidence[test.get("nodeid", "").rsplit("/", 1)[-1]] = text
    return evidence


# -- the table -----------------------------------------------------------------
def differences(runs: list[Run]) -> list[str]:
    """Tests whose verdict is not the same on every kernel that ran."""
    ran = [r for r in runs if not r.problem]
    tests = sorted({t for r in ran for t in r.cases})
    return [t for t in tests if len({r.cases[t].verdict if t in r.cases else "absent" for r in ran}) > 1]


def table(runs: list[Run]) -> str:
    lines = [f"nslab matrix: {len(runs)} kernel(s)"]
    width = max(len(r.kernel.label) for r in runs)
    why_accel: dict[str, str] = {}  # 'tcg' -> why (said once, below the rows)
    for r in runs:
        took = f"{r.seconds:6.1f} s" if r.seconds else "       -"
        accel, _, why = (r.accel or "-").partition(" (")
        if why:
            why_accel.setdefault(accel, why.removesuffix(")"))
        lines.append(f"  {r.kernel.label:<{width}}  {r.release or '-':<24} {took}  {accel}: {r.counts()}")
        if r.userland:
            lines.append(f"  {'':<{width}}  userland: {r.userland}")
    lines += [f"  ({accel}: {why})" for accel, why in why_accel.items()]
    diff = differences(runs)
    lines += ["", f"Differences between kernels: {len(diff) if len([r for r in runs if not r.problem]) > 1 else 'n/a (fewer than two kernels ran)'}"]
    for test in diff:
        lines.append(f"  {test}")
        for r in runs:
            if not r.problem:
                case = r.cases.get(test)
                lines.append(f"    {r.kernel.label:<{width}}  " + (_cell(case, full=True) if case else "absent"))
    ran = [r for r in runs if not r.problem]
    tests = sorted({t for r in ran for t in r.cases})
    if tests:
        notes: list[str] = []
        first = max(len(t) for t in tests)
        cols = [max(len(r.kernel.label), 10) for r in ran]
        lines += ["", "  ".join([f"{'test':<{first}}"] + [f"{r.kernel.label:<{w}}" for r, w in zip(ran, cols)])]
        for test in tests:
            cells = []
            for r, w in zip(ran, cols):
                case = r.cases.get(test)
                cell = "absent" if case is None else _cell(case)
                if case is not None and case.verdict in ("skipped", "xfail") and case.detail:
                    note = f"{case.verdict}: {case.detail}"
                    if note not in notes:
                        notes.append(note)
                    cell += f" [{notes.index(note) + 1}]"
                cells.append(f"{cell:<{w}}")
            lines.append("  ".join([f"{test:<{first}}"] + cells))
        lines += [""] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    for r in runs:
        if r.extra_skips:
            lines.append(f"{r.kernel.label}: skipped {', '.join(r.extra_skips)}, which {r.compared_with} ran (a skip that is not a missing kernel feature)")
    for r in runs:
        if r.problem:
            lines.append(f"{r.kernel.label}: {r.problem}")
    return "\n".join(lines)


def _cell(case: Case, full: bool = False) -> str:
    word = {"failed": "FAILED", "error": "ERROR"}.get(case.verdict, case.verdict)
    if not full or not case.detail:
        return word
    return f"{word}: {case.detail.splitlines()[0][:160]}"


# -- the command -------------------------------------------------------------
