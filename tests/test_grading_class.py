"""Grading a class: `nslab grade EXERCISE DIR --out OUT` writes a gradebook an LMS
imports, a feedback page per student and the class summary, and the pages are
what headless Chromium shows (as tests/test_reporting.py checks the HTML report).

A class of three, graded once for the module: a correct solution, a mistake
whose failed probe gets a verified fix (--fixes), and a hostile script stopped
by the output limit.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nslab.grading import exercise as ex
from nslab.grading import jail

pytestmark = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))

EXERCISE = "veth-two-namespaces"
SAMPLES = ex.EXERCISES / EXERCISE / "samples"
CLASS = {"ada": SAMPLES / "correct.sh", "bob": SAMPLES / "forgot-lo-up.sh", "eve": SAMPLES / "hostile" / "output-flood.sh"}


def grade(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nslab.cli.main", "grade", EXERCISE, *args], capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, nslab_sandbox):
    base = tmp_path_factory.mktemp("class")
    submissions = base / "submissions"
    submissions.mkdir()
    for sid, src in CLASS.items():
        shutil.copy(src, submissions / f"{sid}.sh")
    (submissions / ".hidden").write_text("not a student")
    out = base / "grades"
    proc = grade(str(submissions), "--out", str(out), "--fixes", "--json", str(base / "g.json"))
    grades = {Path(g["submission"]).stem: g for g in json.loads((base / "g.json").read_text())["submissions"]}
    return proc, out, grades


def test_every_file_is_a_student_and_the_outputs_are_written(graded):
    proc, out, grades = graded
    assert proc.returncode == 1, proc.stderr  # not everyone has full marks
    assert set(grades) == set(CLASS)  # the hidden file is no student
    assert (grades["ada"]["score"], grades["bob"]["score"], grades["eve"]["score"]) == (18, 15, 0)
    assert grades["eve"]["reason"].startswith("output limit:")
    assert sorted(p.name for p in out.iterdir()) == ["gradebook.csv", "index.html", "student-ada.html", "student-bob.html", "student-eve.html"]
    # one bpftrace: the graders follow this test run's (NSLAB_DROPS), or the grading run's own
    assert any(f"drop reasons: {how}" in proc.stdout for how in ("the run's bpftrace (NSLAB_DROPS), followed by 3 graders", "one bpftrace for the run", "unavailable"))


def test_the_gradebook_has_id_total_maximum_and_a_column_per_check(graded):
    _, out, grades = graded
    with open(out / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "total", "maximum", *(c.id for c in ex.load(EXERCISE).checks)]
    assert [r[0] for r in rows[1:]] == ["ada", "bob", "eve"]
    for row in rows[1:]:
        g = grades[row[0]]
        assert (int(row[1]), int(row[2])) == (g["score"], g["total"])
        assert [int(x) for x in row[3:]] == [c["earned"] for c in g["checks"]]
        assert sum(int(x) for x in row[3:]) == int(row[1])


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.refs: list[str] = []  # every href and src
        self.ids: set[str] = set()
        self.svgs = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("href", "src") and v]
        if "id" in a:
            self.ids.add(a["id"])
        self.svgs += tag == "svg"

    def handle_data(self, data):
        self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def rendered(page: Path, tmp_path: Path) -> _Dom:
    """The DOM headless Chromium builds from *page* (and a screenshot: it really drew it)."""
    png = tmp_path / f"{page.stem}.png"
    argv = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000", f"--screenshot={png}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = _Dom()
    dom.feed(proc.stdout)
    return dom


def _self_contained(dom: _Dom, out: Path) -> None:
    for ref in dom.refs:
        assert "://" not in ref and not ref.startswith("//"), ref  # opens offline
        assert (out / ref.split("#")[0]).is_file(), ref  # links only to sibling pages


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")


@needs_chromium
@needs_dot
def test_a_students_page_shows_each_check_the_why_the_path_and_the_verified_fix(graded, tmp_path):
    _, out, grades = graded
    bob = grades["bob"]
    dom = rendered(out / "student-bob.html", tmp_path)
    assert f"{bob['score']} / {bob['total']} points" in dom.words
    for c in bob["checks"]:
        assert f"check-{c['id']}" in dom.ids
        assert " ".join(c["detail"].split()) in dom.words
        if not c["passed"]:
            assert " ".join(c["hint"].split()) in dom.words
            if c["explanation"]:
                assert " ".join(c["explanation"].split()) in dom.words
    (probe,) = [c for c in bob["checks"] if not c["passed"] and c["path"]]
    assert probe["id"] == "ping-ns1-self" and probe["fixes"]
    assert all(fix in dom.words for fix in probe["fixes"])  # the verified fix, as --fixes found it
    assert dom.svgs == 1 and "stopped here: loopback down" in dom.words  # the packet's path drawn, where it stopped
    _self_contained(dom, out)


@needs_chromium
def test_a_hostile_students_page_says_why_it_was_graded_zero(graded, tmp_path):
    _, out, grades = graded
    dom = rendered(out / "student-eve.html", tmp_path)
    assert "0 / 18 points" in dom.words
    assert f"Graded zero: {grades['eve']['reason']}" in dom.words
    assert "all work and no play" in dom.words  # the end of its output


@needs_chromium
def test_the_class_summary_shows_pass_rates_and_the_most_common_causes_with_the_students(graded, tmp_path):
    _, out, grades = graded
    dom = rendered(out / "index.html", tmp_path)
    assert "3 students, 1 with full marks" in dom.words
    assert "ping-ns1-self ns1 pings 127.0.0.1 1/3 (33%)" in dom.words  # ada only: bob's lo is down, eve is zero
    assert "tcp-chat ns2 opens a TCP connection to 10.0.0.1:8080 2/3 (67%)" in dom.words
    assert "1 loopback down (LOOPBACK_DOWN) ping-ns1-self bob" in dom.words
    assert "1 not graded: output limit (all) eve" in dom.words
    assert {"student-ada.html", "student-bob.html", "student-eve.html"} <= set(dom.refs)
    _self_contained(dom, out)


def test_two_files_of_one_student_id_are_refused_in_one_line(tmp_path):
    (tmp_path / "ada.sh").write_text("true\n")
    (tmp_path / "ada.txt").write_text("true\n")
    proc = grade(str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == "nslab grade: SCRIPT: ada.sh and ada.txt give the same student id 'ada'; rename one\n"


def test_an_empty_class_is_refused_in_one_line(tmp_path):
    proc = grade(str(tmp_path))
    assert (proc.returncode, proc.stderr) == (2, f"nslab grade: SCRIPT: {str(tmp_path)!r} holds no submission (each regular file in it is one)\n")
