"""The pytest plugin as users meet it, run with pytester in a subprocess:
a broken scenario's failure output carries nslab's explanation and trace."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent

BROKEN_SCENARIO = '''
from nslab import Address, Route, Topology, Veth

def test_container_answers(lab):
    # tutorial 002 with the fix step (the container's default route) left out
    lab.build(Topology(
        ["host", "container1", "lan"],
        veths=[Veth("host", "veth1", "container1", "ceth1"), Veth("host", "enp0s8", "lan", "eth0")],
        addresses=[Address("host", "enp0s8", "10.0.0.10/24"), Address("lan", "eth0", "10.0.0.1/24"),
                   Address("container1", "ceth1", "172.16.0.2/24")],
        routes=[Route("host", "172.16.0.0/24", dev="veth1")],
    ))
    assert lab.ns("host").ping("172.16.0.2").replied
'''


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    def runner(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "fixtures.plugin", "-p", "no:randomly", "-p", "no:cacheprovider", *args)

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
