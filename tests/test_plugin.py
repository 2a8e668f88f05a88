"""The pytest plugin as users meet it: installed with nslab, registered by its
pytest11 entry point, run with pytester in a subprocess from a temporary
project that has no conftest and does not have this repository on its path."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BROKEN_SCENARIO = """
from nslab.tutorials.catalog import LABS

def test_container_answers(lab):
    # tutorial 002's final lab with the fix step (the container's default route) left out
    final = LABS["host-to-container"].topology
    lab.build(final.replace(routes=[r for r in final.routes if r.ns != "container1"]))
    assert lab.ns("host").ping("172.16.0.2").replied
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)  # nslab comes from its installation, not from this checkout

    def runner(*args: str) -> pytest.RunResult:
        assert not (pytester.path / "conftest.py").exists()
        return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)

    return runner


def test_failure_output_explains_the_probe(pytester: pytest.Pytester, run):
    pytester.makepyfile(test_broken=BROKEN_SCENARIO)
    result = run(f"--nslab-reports={pytester.path / 'reports'}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*assert False*",
            "*the echo request reached container1 on ceth1, but container1 has no route back to 10.0.0.10*",
            "*nslab: ping from host to 172.16.0.2: no reply (settled early by evidence)*",
            "*per-hop trace:*",
            "*host veth1 * out *ICMP 10.0.0.10 > 172.16.0.2 echo-request*",
            "*container1 ceth1 * in *ICMP 10.0.0.10 > 172.16.0.2 echo-request*",
        ]
    )
    pcaps = list((pytester.path / "reports" / "pcap").glob("*.pcap"))
    assert len(pcaps) == 1 and pcaps[0].stat().st_size > 100
    assert "fix (verified)" not in result.stdout.str()  # only when asked


def test_failure_output_shows_verified_fixes_when_asked(pytester: pytest.Pytester, run):
    pytester.makepyfile(test_broken=BROKEN_SCENARIO)
    result = run(f"--nslab-reports={pytester.path / 'reports'}", "--nslab-fixes")
    result.assert_outcomes(failed=1)
    # the fix a learner types, tried on a copy of the lab, where the same ping then succeeded
    result.stdout.fnmatch_lines(["*fix (verified): ip netns exec container1 ip route add *"])


def test_passing_lab_tests_under_two_workers(pytester: pytest.Pytester, run):
    pytester.makepyfile(
        test_pair="""
from nslab import Address, Topology, Veth
TOPO = Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")],
                addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")])

def test_a(make_lab):
    assert make_lab(TOPO).ns("ns1").ping("10.0.0.2").replied

def test_b(make_lab):
    assert make_lab(TOPO).ns("ns2").ping("10.0.0.1").replied
"""
    )
    run("-n", "2").assert_outcomes(passed=2)


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester, run):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = run("--nslab-timeout=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nslab-timeout=0.0: must be a number of seconds in (0, 60]*"])


def test_installed_plugin_brings_fixtures_options_and_marker(pytester: pytest.Pytester, run):
    pytester.makepyfile(
        test_installed="""
import pytest
from nslab.tutorials.catalog import LABS

@pytest.mark.needs("veth")
def test_pair(lab, request):
    assert request.config.getoption("--nslab-timeout") == 2.5
    lab.build(LABS["veth-two-namespaces"].topology)
    assert lab.ns("ns1").ping("10.0.0.2").replied
"""
    )
    result = run("--nslab-timeout=2.5", f"--nslab-reports={pytester.path / 'reports'}")
    result.assert_outcomes(passed=1)
    run("--markers").stdout.fnmatch_lines(["@pytest.mark.needs(*features): skip unless the kernel supports*"])
    run("--help").stdout.fnmatch_lines(["nslab: hermetic network labs:", "*--nslab-timeout=SECONDS*"])


def test_naming_the_plugin_again_registers_it_once(pytester: pytest.Pytester, run):
    pytester.makepyfile(
        test_named='import nslab.fixtures.plugin as p\ndef test_x(request):\n    assert request.config.pluginmanager.get_plugin("nslab.fixtures.plugin") is p'
    )
    for spec in ("nslab.fixtures.plugin", "nslab.fixtures.reporting"):
        run("-p", spec, f"--nslab-reports={pytester.path / 'reports'}").assert_outcomes(passed=1)


def test_make_lab_closes_in_reverse_every_close_runs_and_failures_are_reported(pytester: pytest.Pytester, run):
    pytester.makepyfile(
        test_teardown="""
CLOSED = []

def test_three_labs(make_lab):
    for number in (1, 2, 3):
        the_lab = make_lab()
        the_lab.add_namespace(f"ns{number}")
        real = the_lab.close

        def close(real=real, number=number):
            CLOSED.append(number)
            real()
            if number in (2, 3):
                raise RuntimeError(f"close {number} failed on purpose")

        the_lab.close = close

def test_every_lab_was_closed_latest_first():
    assert CLOSED == [3, 2, 1]
"""
    )
    result = run("-v", f"--nslab-reports={pytester.path / 'reports'}")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_three_labs*",
            "*make_lab: 2 of 3 labs failed to tear down*",
            "*RuntimeError: close 3 failed on purpose*",
            "*closing lab 3 of 3 (made by make_lab)*",
            "*RuntimeError: close 2 failed on purpose*",
            "*closing lab 2 of 3 (made by make_lab)*",
        ]
    )
