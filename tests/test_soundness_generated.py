"""The fault generator of `./run soundness --generated N --seed S` (corpus/generated.py).

Cheap checks of the instrument itself: a seed gives the same cases; every kind
of change applies to the lab it was drawn for (the command exits 0, the read
it names shows the change, and did not before); a hand-made Result's claims
score as they must (attributed, false claim, neither); the closing line.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from corpus import generated, twin6
from corpus.generated import KINDS, PORT, Case, Row, apply, cases, draw, shows, summary, where
from corpus.knobs import Change
from nslab import Lab, Outcome
from nslab.probes.result import Claim
from nslab.tutorials.catalog import LABS

SMALL_LABS = ("veth-two-namespaces", "root-to-blue", "host-to-container", "bridge-three-containers")
DRAWS_PER_KIND = 3


def test_the_same_seed_gives_the_same_cases():
    first = cases(40, 7)
    assert cases(40, 7) == first
    assert [c.change for c in cases(40, 8)] != [c.change for c in first]
    assert draw(7, 23) == first[23], "a case replayed alone (--case K) is the one the whole run drew"
    assert [c.lab for c in first[:5]] == sorted(LABS), "labs are taken in turn"
    assert sum(c.family == "ipv6" for c in first) >= len(first) / 3, "the IPv6 share is a third or more"
    assert all(c.family == "ipv4" for c in first if c.lab not in twin6.TWINS)
    assert all(":" in c.dst for c in first if c.family == "ipv6")


def drawn(kind: str, family: str) -> list[Case]:
    """A few changes of *kind*, each drawn for a small catalog lab (its twin, for IPv6) and one of its checks."""
    out = []
    labs = [lab for lab in SMALL_LABS if family == "ipv4" or lab in twin6.TWINS]
    for i in range(200):
        rng = random.Random(f"test:{kind}:{i}")
        lab = labs[i % len(labs)]
        check = rng.choice(LABS[lab].checks)
        port = PORT if kind == "listener" or rng.random() < 0.5 else None
        dst = twin6.destination(lab, family, check.dst)
        change = KINDS[kind][0](where(lab, check.src, dst, port, family), rng)
        if change is not None:
            out.append(Case(i, 0, lab, check.src, dst, port, family, change))
        if len(out) == DRAWS_PER_KIND:
            return out
    raise AssertionError(f"{kind}: no change drawn for the small labs in 200 tries")


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_change_applies_and_the_kernel_shows_it(nslab_sandbox, kind, family):
    for case in drawn(kind, family):  # one lab at a time: the catalog labs share namespace names
        with Lab(twin6.topology(case.lab, family)) as lab:
            w = where(case.lab, case.src, case.dst, case.port, family)
            listener = lab.ns(w.owner).listen(case.port, "::" if w.v6 else "0.0.0.0") if case.port else None
            change = case.change
            if change.kind != "sysctl":  # a sysctl may already hold the value drawn (forwarding=0 on a host)
                assert shows(lab, change) is not None, f"{change}: the read shows it before it is made"
            apply(lab, change, listener, case.port)  # raises NotApplied, naming the command or the read
            assert shows(lab, change) is None


def change(ns: str = "r", obj: str = "sysctl net.ipv4.conf.all.forwarding") -> Change:
    return Change("sysctl", ns, (("sysctl", "-w", "net.ipv4.conf.all.forwarding=0"),), (obj,), ("sysctl", "-n", "x"), "^0$")


def row(claims: tuple[Claim, ...], truth: Outcome = Outcome.TIMEOUT) -> Row:
    case = Case(0, 1, "veth-two-namespaces", "ns1", "10.0.0.2", None, "ipv4", change())
    return Row(case, early=truth, truth=truth, claims=claims, copy_ok=truth is Outcome.REPLY)


def test_a_blaming_claim_on_the_changed_object_is_attributed():
    r = row((Claim("r", "sysctl net.ipv4.conf.all.forwarding", "0", blames=True), Claim("h1", "route default table main", "via 10.0.1.1")))
    assert r.attributed and not r.false_claim


def test_blaming_another_object_or_the_same_one_elsewhere_is_a_false_claim():
    other = row((Claim("r", "sysctl net.ipv4.conf.all.forwarding", "0", blames=True), Claim("r", "nft inet filter forward", "policy drop", blames=True)))
    assert other.attributed and other.false_claim
    elsewhere = row((Claim("h1", "sysctl net.ipv4.conf.all.forwarding", "0", blames=True),))
    assert not elsewhere.attributed and elsewhere.false_claim
    assert generated.false_claims(change(), elsewhere.claims) == list(elsewhere.claims)


def test_context_claims_alone_neither_attribute_nor_accuse():
    r = row((Claim("r", "sysctl net.ipv4.conf.all.forwarding", "0"), Claim("h2", "route default table main", "via 10.0.2.1")))
    assert not r.attributed and not r.false_claim
    assert "attribution" in r.misses and "false claim" not in r.misses


def test_a_success_is_not_scored_for_attribution():
    r = row((), Outcome.REPLY)
    assert not r.failing and r.misses == []


def test_the_closing_line_and_its_targets():
    good = row((Claim("r", "sysctl net.ipv4.conf.all.forwarding", "0", blames=True),))
    good = dataclasses.replace(good, fixed=True, early_ms=2.0)
    line, ok = summary([good, row((), Outcome.REPLY)], 5)
    assert line == (
        "generated: 2 cases (seed 5), outcome agreement 2/2, false claims 0, attribution 1/1, copy reproduces 2/2, verified fix 1/1, median early verdict 1.0 ms"
    )
    assert ok
    line, ok = summary([row(()), row((), Outcome.REPLY)], 5)
    assert "attribution 0/1" in line and "verified fix 0/1" in line and not ok
