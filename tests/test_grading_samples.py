"""Every sample submission gets the score, the failed checks and (for the key
checks) the cause that its samples/expected.toml states, through the real CLI:
`nslab grade EXERCISE samples/*.sh --json --junit`, each in its own jail.

One CLI run per exercise grades all its samples (two at a time), cached for
the module; the tests then read its JSON, JUnit and text output.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nslab.grading import exercise as ex
from nslab.grading import jail

pytestmark = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))

EXERCISES = ex.EXERCISES
NAMES = sorted(p.parent.parent.name for p in EXERCISES.glob("*/samples/expected.toml"))
SAMPLES = [(name, key) for name in NAMES for key in tomllib.loads((EXERCISES / name / "samples" / "expected.toml").read_text())]
_runs: dict[str, dict] = {}


@pytest.fixture
def graded(nslab_sandbox, tmp_path_factory):
    """name -> {'json': ..., 'junit': Element, 'text': stdout, 'status': exit status}.

    Each exercise is graded once per test run: the first pytest-xdist worker
    that needs it grades it under a lock in the run's shared temporary
    directory, the other reads the files it wrote (pytest-xdist's recipe for
    session-wide data)."""

    def get(name: str) -> dict:
        if name not in _runs:
            base = tmp_path_factory.getbasetemp()
            # Under xdist every worker's basetemp sits in the run's own directory.
            shared = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "nslab-grading-samples" / name
            shared.mkdir(parents=True, exist_ok=True)
            with open(shared / "lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (shared / "status").exists():
                    _grade_samples(name, shared)
            _runs[name] = {
                "json": {Path(g["submission"]).stem: g for g in json.loads((shared / "g.json").read_text())["submissions"]},
                "junit": ET.parse(shared / "g.xml").getroot(),
                "text": (shared / "stdout").read_text(),
                "status": int((shared / "status").read_text()),
            }
        return _runs[name]

    return get


def _grade_samples(name: str, out: Path) -> None:
    scripts = sorted(str(p) for p in (EXERCISES / name / "samples").glob("*.sh"))
    proc = subprocess.run(
        [sys.executable, "-m", "nslab.cli.main", "grade", name, *scripts, "-j", "2", "--json", str(out / "g.json"), "--junit", str(out / "g.xml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stderr == ""
    (out / "stdout").write_text(proc.stdout)
    (out / "status").write_text(str(proc.returncode))


def expected(name: str, sample: str) -> dict:
    return tomllib.loads((EXERCISES / name / "samples" / "expected.toml").read_text())[sample]


@pytest.mark.parametrize("name, sample", SAMPLES, ids=[f"{n}/{s}" for n, s in SAMPLES])
def test_sample_gets_its_expected_score_failures_and_causes(graded, name, sample):
    want = expected(name, sample)
    exercise = ex.load(name)
    grade = graded(name)["json"][sample]
    failed = [c for c in grade["checks"] if not c["passed"]]
    assert grade["reason"] is None
    assert (grade["score"], grade["total"]) == (want["score"], exercise.total)
    assert [c["id"] for c in failed] == want.get("failed", [])
    assert grade["score"] == exercise.total - sum(c["points"] for c in failed)
    by_id = {c["id"]: c for c in grade["checks"]}
    for check_id, cause in want.get("causes", {}).items():
        assert by_id[check_id]["cause"] == cause, by_id[check_id]
        assert by_id[check_id]["explanation"], "a failed probe carries nslab's explanation"
    hints = {c.id: c.hint for c in exercise.checks}
    for c in failed:
        assert c["hint"] == hints[c["id"]]


@pytest.mark.parametrize("name", NAMES)
def test_the_report_shows_each_failed_checks_hint_and_why(graded, name):
    run = graded(name)
    assert run["status"] == 1  # not every sample has full marks
    for sample, grade in run["json"].items():
        block = run["text"].split(f"{sample}.sh: ", 1)[1].split("\nexercises/", 1)[0]
        assert block.startswith(f"{grade['score']}/{grade['total']} points")
        for c in grade["checks"]:
            if not c["passed"]:
                assert f"hint: {c['hint']}" in block
                if c["explanation"]:
                    assert f"why:  {c['explanation']}" in block


@pytest.mark.parametrize("name", NAMES)
def test_junit_has_a_suite_per_submission_and_a_failure_per_failed_check(graded, name):
    run = graded(name)
    suites = {Path(s.get("name")).stem: s for s in run["junit"].iter("testsuite")}
    assert set(suites) == set(run["json"])
    for sample, grade in run["json"].items():
        cases = suites[sample].findall("testcase")
        assert [c.get("name") for c in cases] == [c["id"] for c in grade["checks"]]
        failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
        assert set(failures) == {c["id"] for c in grade["checks"] if not c["passed"]}
        for c in grade["checks"]:
            if not c["passed"]:
                assert f"hint: {c['hint']}" in failures[c["id"]].text


def test_correct_solutions_alone_exit_0(nslab_sandbox):
    scripts = [str(EXERCISES / "veth-two-namespaces" / "samples" / "correct.sh")] * 2
    proc = subprocess.run([sys.executable, "-m", "nslab.cli.main", "grade", "veth-two-namespaces", *scripts], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count(": 18/18 points") == 2
