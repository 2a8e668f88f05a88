"""fixtures/reporting.py: JUnit, HTML and JSON reports match what a run really did.

One small project runs once under `pytest -n 2` (a module-scoped fixture: the
run takes a few seconds and every check below reads the same files; pytester
is function-scoped, so this runs the inner pytest the way
`pytester.runpytest_subprocess` does). It builds the bridge lab from
nslab.tutorials.catalog: one test passes, one fails on purpose (a ping that cannot be
answered), one is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nslab.tutorials import catalog

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = catalog.LABS["bridge-three-containers"]

INNER_TESTS = '''
import pytest
from nslab.tutorials import catalog

BRIDGE = catalog.LABS["bridge-three-containers"].topology


def test_containers_on_the_bridge_reach_each_other(lab):
    lab.build(BRIDGE)
    assert lab.ns("container1").ping("172.17.0.3").replied


def test_deliberate_failure_nothing_answers_outside_the_bridge(lab):
    lab.build(BRIDGE)
    result = lab.ns("container1").ping("192.0.2.1")
    assert result.replied, str(result)


def test_skipped_on_purpose():
    pytest.skip("skipped on purpose")
'''

PASS = "test_inner.py::test_containers_on_the_bridge_reach_each_other"
FAIL = "test_inner.py::test_deliberate_failure_nothing_answers_outside_the_bridge"
SKIP = "test_inner.py::test_skipped_on_purpose"


@pytest.fixture(scope="module")
def run(tmp_path_factory, nslab_sandbox):  # nslab_sandbox: skip, saying how, where labs cannot be built
    project = tmp_path_factory.mktemp("inner")
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text('pytest_plugins = ["nslab.fixtures.plugin", "nslab.fixtures.reporting"]\n')
    (project / "test_inner.py").write_text(INNER_TESTS)
    reports = project / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--nslab-reports", str(reports)]
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc, reports


def junit_cases(reports: Path) -> dict[str, ET.Element]:
    root = ET.parse(reports / "junit.xml").getroot()
    return {f"test_inner.py::{case.get('name')}": case for case in root.iter("testcase")}


def test_one_merged_set_of_reports_under_xdist(run):
    proc, reports = run
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "1 failed, 1 passed, 1 skipped" in proc.stdout
    assert sorted(os.listdir(reports)) == ["junit.xml", "pcap", "report.html", "summary.json"]
    assert len(os.listdir(reports / "pcap")) == 1


def test_junit_and_json_agree_with_the_real_outcomes(run):
    _, reports = run
    cases = junit_cases(reports)
    summary = json.loads((reports / "summary.json").read_text())
    tests = {t["nodeid"]: t for t in summary["tests"]}

    assert set(cases) == set(tests) == {PASS, FAIL, SKIP}
    assert summary["counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert summary["exitstatus"] == 1
    assert {n: t["outcome"] for n, t in tests.items()} == {PASS: "passed", FAIL: "failed", SKIP: "skipped"}
    assert [child.tag for child in cases[PASS] if child.tag in ("failure", "error", "skipped")] == []
    assert [child.tag for child in cases[SKIP] if child.tag in ("failure", "error", "skipped")] == ["skipped"]
    failure = cases[FAIL].find("failure")
    assert failure is not None

    # The failing probe in the JSON is the one the assertion printed, word for word.
    (probe,) = tests[FAIL]["labs"][0]["probes"]
    assert (probe["src"], probe["dst"]) == ("container1", "192.0.2.1") and probe["outcome"] != "reply"
    assert probe["summary"] in failure.text and probe["explanation"] and probe["explanation"] in failure.text
    assert probe["trace"].count("\n") >= 1  # seen on at least two interfaces on its way
    assert probe["cause"] and probe["where"]["ns"]  # what the cause is about, by namespace (and interface)
    (passed,) = tests[PASS]["labs"][0]["probes"]
    assert passed["outcome"] == "reply" and passed["cause"] is None and passed["where"] is None
    assert tests[PASS]["labs"][0]["topology"] == BRIDGE.topology.to_dict()

    # The pcap the JSON and the JUnit property name is the failing test's, and a real capture.
    (pcap,) = tests[FAIL]["pcaps"]
    props = {p.get("name"): p.get("value") for p in cases[FAIL].iter("property")}
    assert Path(props["nslab_pcap"]) == reports / pcap
    assert (reports / pcap).read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")
    assert tests[PASS]["pcaps"] == [] and tests[SKIP]["labs"] == []


class _Dom(HTMLParser):
    """Collects SVG <title> texts inside the report's diagrams, and link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.diagram_depth = 0
        self.stack: list[str] = []
        self.titles: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append(tag)
        if "nslab-diagram" in (attrs.get("class") or "").split():
            self.diagram_depth = len(self.stack)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop() == tag:
                break
        if len(self.stack) < self.diagram_depth:
            self.diagram_depth = 0

    def handle_data(self, data):
        if self.diagram_depth and self.stack and self.stack[-1] == "title":
            self.titles.append(data)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_html_report_rendered_by_chromium_shows_the_bridge_lab(run, tmp_path):
    _, reports = run
    png = tmp_path / "report.png"
    argv = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2400", f"--screenshot={png}", "--dump-dom", (reports / "report.html").as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dom = _Dom()
    dom.feed(proc.stdout)
    # The rows are drawn by the report's script: these exist only in the rendered DOM
    # (in the page source they are escaped inside a JSON attribute).
    for ns in BRIDGE.topology.namespaces:
        assert dom.titles.count(f"cluster_{ns.name}") == 2, ns.name  # in both lab tests
    assert "host/br0" in dom.titles and "container1/eth0--host/veth1" not in dom.titles
    assert "host/veth1--container1/eth0" in dom.titles
    summary = json.loads((reports / "summary.json").read_text())
    (pcap,) = [p for t in summary["tests"] for p in t["pcaps"]]
    assert pcap in dom.links
    failing = next(t for t in summary["tests"] if t["outcome"] == "failed")
    assert failing["labs"][0]["probes"][0]["summary"] in proc.stdout
    # the failed probe's way, drawn on its lab: where it was seen and where it stopped, and why
    stop = failing["labs"][0]["probes"][0]["path"]["stop"]
    assert 'class="nslab-path"' in proc.stdout and f"stopped here: {stop['cause']}" in proc.stdout


def test_explicit_junitxml_is_kept_and_every_outcome_is_counted_as_pytest_does(pytester):
    """No labs here, so in-process (hypothesis off: its summary hook imports it, 2 s):
    xfail, xpass, setup error and collection error
    land in summary.json as pytest's own summary line counts them."""
    pytester.makeconftest('pytest_plugins = ["nslab.fixtures.plugin", "nslab.fixtures.reporting"]')
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup breaks")

        def test_error_in_setup(broken):
            pass

        @pytest.mark.xfail(reason="known", strict=False)
        def test_xfailed():
            assert False

        @pytest.mark.xfail(reason="fixed meanwhile", strict=False)
        def test_xpassed():
            pass
        """,
        test_b="import no_such_module_here\n",
    )
    result = pytester.runpytest("--junitxml=custom.xml", "--nslab-reports=out", "-p", "no:randomly", "--continue-on-collection-errors", "-p", "no:hypothesispytest")
    result.assert_outcomes(errors=2, xfailed=1, xpassed=1)
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"error": 2, "xfailed": 1, "xpassed": 1}
    outcomes = {t["nodeid"]: t["outcome"] for t in summary["tests"]}
    assert outcomes == {"test_b.py": "error", "test_a.py::test_error_in_setup": "error", "test_a.py::test_xfailed": "xfailed", "test_a.py::test_xpassed": "xpassed"}
    assert "setup breaks" in next(t["message"] for t in summary["tests"] if t["nodeid"].endswith("setup"))
    assert (pytester.path / "custom.xml").exists() and not (pytester.path / "out" / "junit.xml").exists()
    assert summary["reports"]["junit"] == "custom.xml"
