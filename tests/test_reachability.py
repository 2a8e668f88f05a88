"""nslab.lab.reachability: expectations by groups or a function, the tables and
the wrong cells of a report, each with its cause and the line that reproduces it."""

from __future__ import annotations

import pytest

from nslab import Address, Bridge, Cause, LabError, Namespace, Route, Topology, Veth
from nslab.lab.reachability import Reachability

pytestmark = pytest.mark.needs("bridge")


def bridge(n: int, *, detached: int | None = None) -> Topology:
    """c1..cn on br0 (10.8.0.0/16); c<detached>'s host end is no port of br0."""
    return Topology(
        [Namespace("host")] + [Namespace(f"c{i}") for i in range(1, n + 1)],
        veths=[Veth("host", f"p{i}", f"c{i}", "eth0", master=None if i == detached else "br0") for i in range(1, n + 1)],
        bridges=[Bridge("host", "br0")],
        addresses=[Address("host", "br0", "10.8.0.1/16")] + [Address(f"c{i}", "eth0", f"10.8.0.{i + 1}/16") for i in range(1, n + 1)],
        routes=[Route(f"c{i}", "default", via="10.8.0.1") for i in range(1, n + 1)],
    )


def hosts(n: int) -> dict[str, str]:
    return {f"c{i}": f"10.8.0.{i + 1}" for i in range(1, n + 1)}


def test_rules_apply_in_order_by_groups_or_by_a_function(lab):
    lab.build(bridge(4))
    matrix = Reachability(lab, hosts(4))
    matrix.expect(src="c1", reach=False).expect(src="c1", dst=["c2"], reach=True)
    assert [matrix.expected("c1", d) for d in ("c2", "c3", "c4")] == [True, False, False]
    matrix.expect_when(lambda s, d: d != "c4")
    assert matrix.expected("c1", "c2") and matrix.expected("c1", "c3") and not matrix.expected("c2", "c4")
    with pytest.raises(LabError, match=r"^dst: \['c9'\] are not hosts of this matrix; its hosts: \['c1', 'c2', 'c3', 'c4'\]$"):
        matrix.expect(dst=["c9"], reach=False)
    with pytest.raises(LabError, match=r"^ns: no namespace 'nobody' in this lab"):
        Reachability(lab, {"nobody": "10.8.0.9"})


def test_a_matrix_that_holds_reports_one_line(lab):
    lab.build(bridge(5))
    report = Reachability(lab, hosts(5)).assert_ok()
    assert report.ok and (report.correct, report.incorrect) == (20, 0)
    assert str(report).startswith("reachability: correct: 20, incorrect: 0 (20 pairs swept in ")


def test_each_wrong_cell_carries_its_cause_and_a_line_that_reproduces_it(lab):
    lab.build(bridge(4, detached=4))
    matrix = Reachability(lab, hosts(4)).expect(src="c1", dst="c2", reach=False)  # wrong on purpose: c1 reaches c2
    with pytest.raises(AssertionError) as failed:
        matrix.assert_ok(timeout=0.5)
    text = str(failed.value)
    assert "reachability: correct: 5, incorrect: 7" in text
    assert "expected (. reaches, X does not):" in text and "observed:" in text and "differences (X: observed is not as expected):" in text
    report = matrix.check(timeout=0.5)
    cells = {(c.src, c.dst): c for c in report.wrong}
    assert set(cells) == {("c1", "c2")} | {(f"c{i}", "c4") for i in (1, 2, 3)} | {("c4", f"c{i}") for i in (1, 2, 3)}
    unexpected = cells[("c1", "c2")]
    assert not unexpected.expected and unexpected.observed and unexpected.result.replied and "it replies" in str(unexpected)
    cut = cells[("c1", "c4")]
    assert cut.cause is Cause.NOT_ON_BRIDGE and cut.where.ns == "host", cut
    assert cut.reproduce() == "lab.ns('c1').ping('10.8.0.5')    # ip netns exec c1 ping -c1 -W1 10.8.0.5"
    assert "cause NOT_ON_BRIDGE" in str(cut) and "reproduce: lab.ns('c1').ping('10.8.0.5')" in str(cut)
    assert report.reprobed == 7 and f"one try each, in {report.reprobe_seconds:.2f} s" in str(report)


def test_a_large_matrix_prints_the_wrong_cells_not_the_tables(lab):
    n = 45
    lab.build(bridge(n, detached=n))
    report = Reachability(lab, hosts(n)).check(timeout=0.3, within=0.5)
    assert (report.correct, report.incorrect) == (n * (n - 1) - 2 * (n - 1), 2 * (n - 1))
    text = str(report)
    assert "expected (. reaches" not in text and f"correct: {n * (n - 1) - 2 * (n - 1)}, incorrect: {2 * (n - 1)}" in text
    assert f"... and {2 * (n - 1) - 20} more wrong cells" in text
    assert 1 <= report.reprobed < report.incorrect and "not probed again (the second looks' deadline passed)" in text
