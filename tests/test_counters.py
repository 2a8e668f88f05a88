"""A probe's counter changes (`Counters.since`, parsed only where the files differ) are the
ones iproute2's `nstat` reads around the same traffic.

    ns1 (lo up): ping 127.0.0.1, three echoes; ping ::1, two
"""

from __future__ import annotations

import json

from nslab import Lab


def nstat(ns) -> dict[str, int]:
    """Every counter of *ns* by `nstat` (absolute values, zeros included, its history untouched)."""
    out = json.loads(ns.run(["nstat", "--ignore", "--zeros", "--noupdate", "--json"], check=True).stdout)
    return {name: value for table in out.values() for name, value in table.items()}


def test_the_changes_since_a_reading_are_those_nstat_sees(nslab_sandbox):
    with Lab() as lab:
        ns = lab.add_namespace("ns1")
        ns.set_link("lo", up=True)
        capture = ns.watcher
        before, nstat_before = capture.counters(), nstat(ns)
        ns.run(["ping", "-c", "3", "-i", "0.01", "127.0.0.1"], check=True)
        ns.run(["ping", "-6", "-c", "2", "-i", "0.01", "::1"], check=True)
        changed, nstat_after = capture.counters().since(before), nstat(ns)
        assert changed["Icmp.InEchos"] == changed["Icmp.OutEchoReps"] == 3
        assert changed["Icmp6.InEchos"] == changed["Icmp6.OutEchoReplies"] == 2
        # nstat names run together (IcmpInEchos, Icmp6InEchos): the same changes, the same sizes.
        want = {name: nstat_after[name] - nstat_before.get(name, 0) for name in nstat_after if nstat_after[name] != nstat_before.get(name, 0)}
        assert {name.replace(".", ""): delta for name, delta in changed.items()} == want
        assert capture.counters().since(capture.counters()) == {}  # nothing happened in between
