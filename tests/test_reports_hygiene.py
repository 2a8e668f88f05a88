"""A run's reports are its own and come without warnings: the pcaps of earlier
runs are removed when a run starts, and a per-test JUnit property (nslab's
pcap, the CNI plugins a lab used) is written without pytest's xunit2 warning."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent

INNER = """
def test_records_a_property(record_property):
    record_property("cni_plugins", "bridge host-local")
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('pytest_plugins = ["nslab.fixtures.plugin", "nslab.fixtures.reporting"]\n')
    pytester.makepyfile(test_inner=INNER)

    def runner(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--nslab-reports=out", *args)

    return runner


def test_stale_pcaps_are_removed_and_properties_come_without_warnings(pytester: pytest.Pytester, run):
    stale = pytester.path / "out" / "pcap" / "test_of_an_earlier_run.pcap"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    result = run("-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=0)
    result.stdout.no_fnmatch_line("*PytestWarning*")
    assert not stale.exists() and not stale.parent.exists()
    case = ET.parse(pytester.path / "out" / "junit.xml").getroot().find(".//testcase")
    assert [(p.get("name"), p.get("value")) for p in case.iter("property")] == [("cni_plugins", "bridge host-local")]


def test_a_family_the_user_names_is_kept(run):
    result = run("-o", "junit_family=xunit2")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*record_property is incompatible with junit_family 'xunit2'*"])
