"""Reading a machine adopts whatever the kernel holds (`nslab why`'s reading path).

Random valid kernel states (tests/ip_labs.py: veths, bridges and port flags,
macvlans, vxlans, addresses with odd prefixes, routes of every type in several
tables with metrics, rules, neighbours), plus what the model once refused: two
default routes of different metrics, one address on two links with two
prefixes. Each is made with plain `ip` commands, then adopted as `nslab why`
adopts a machine: a forked child opens the namespaces, enters a sandbox of its
own and runs `machine.adopt`. Nothing may be refused, and the model holds
every IPv4 address and every single-hop main-table unicast route the kernel
shows on a veth or bridge.
"""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, Phase, given, settings

from nslab.advice import machine
from nslab.kernel import dump
from nslab.lab.live import Lab
from tests.ip_labs import build_fresh, ip_commands
from tests.own_sandbox import in_own_sandbox

STATES = 30
REFUSED_ONCE = [
    "link add x0 type veth peer name x1",
    "link set x0 up",
    "link set x1 up",
    "addr add 10.50.0.1/24 dev x0",
    "addr add 10.50.0.1/16 dev x1",
    "route add default via 10.50.0.254 dev x0 metric 10",
    "route add default via 10.50.0.253 dev x0 metric 100",
    "route add 10.60.0.0/16 via 10.50.0.254 dev x0 table 100",
]


def expected(states: dict[str, dump.NsState]) -> dict[str, list]:
    """What the model must hold of *states*: IPv4 addresses and single-hop main-table unicast routes on veths and bridges."""
    out: dict[str, list] = {"addresses": [], "routes": []}
    for name, d in states.items():
        modelled = {link.name for link in d.links if link.kind in ("veth", "bridge") and (link.kind == "bridge" or link.peer is not None)}
        out["addresses"] += [[name, a.dev, a.cidr] for a in d.addresses if a.family == 4 and a.dev in modelled]
        out["routes"] += [
            [name, "default" if r.dst == "default" else r.dst, r.gateway, r.dev]
            for r in d.routes
            if r.family == 4 and r.table == 254 and r.type == "unicast" and not r.nexthops and r.dev in modelled
        ]
    return out


def adopted(names: list[str]) -> dict:
    """`nslab why`'s reading path on the namespaces *names*, in a forked child: the model it adopted."""

    def open_machine() -> machine.Machine:
        m = machine.Machine()
        for name in names:
            m.add(name, os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC), f"ip netns exec {name} ")
        return m  # opened before the sandbox is entered, as `nslab why` opens them

    def work(m: machine.Machine) -> dict:
        topo = machine.adopt(m, timeout=1.0).topology
        return {
            "addresses": [[a.ns, a.dev, a.cidr] for a in topo.addresses],
            "routes": [[r.ns, r.dst, r.via, r.dev] for r in topo.routes],
            "namespaces": [ns.name for ns in topo.namespaces],
        }

    return in_own_sandbox(work, open_machine, timeout=60)


def test_random_kernel_states_are_all_adopted(nslab_sandbox):
    tried: list[int] = []

    runs = itertools.count()  # a failing example is run again: each run its own names

    @settings(max_examples=STATES, derandomize=True, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(ip_commands())
    def one(cmds):
        first = next(iter(cmds))
        cmds = build_fresh(lab, {**cmds, first: REFUSED_ONCE + cmds[first]}, runs)  # first: the random routes may take a default
        first = next(iter(cmds))
        states = dump.read_all({name: lab.ns(name).handle for name in cmds}, sysctls=False, ruleset=False)
        want = expected(states)
        assert [first, "default", "10.50.0.254", "x0"] in want["routes"] and [first, "default", "10.50.0.253", "x0"] in want["routes"]
        got = adopted(list(cmds))
        assert "error" not in got, f"refused: {got['error']}; after {cmds}"
        assert sorted(got["namespaces"]) == sorted(cmds)
        for part in ("addresses", "routes"):
            missing = [item for item in want[part] if item not in got[part]]
            assert not missing, f"{part} the kernel holds and the model left out: {missing}; after {cmds}"
        tried.append(1)

    with Lab() as lab:
        one()
    assert len(tried) == STATES
