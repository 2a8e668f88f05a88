"""A probe lost to congestion is made once more, and reported lost only when the loss repeats.

    a eth0 10.0.0.1/24 --- eth0 10.0.0.2/24 b

The congestion is a queue that holds nothing: `tc qdisc add dev eth0 root pfifo
limit 0` in a, so the kernel drops every packet a sends (QDISC_DROP; a socket
sending the echo request is told ENOBUFS at once, an ARP request has no one to tell). That is a
queue of the lab's own, so the loss repeats, and the why must say both tries
were lost and must not call it the machine's congestion (nslab reads no qdiscs).
"""

from __future__ import annotations

import shutil

import pytest

from nslab import Address, Namespace, Topology, Veth
from nslab.kernel import drops
from nslab.probes.result import Cause, Outcome

pytestmark = [
    pytest.mark.skipif(drops.missing() is not None, reason=f"the kernel's drop reasons cannot be read here: {drops.missing()}"),
    pytest.mark.skipif(shutil.which("tc") is None, reason="tc (Debian package iproute2) is not installed"),
]

PAIR = Topology(
    [Namespace("a"), Namespace("b")],
    veths=[Veth("a", "eth0", "b", "eth0")],
    addresses=[Address("a", "eth0", "10.0.0.1/24"), Address("b", "eth0", "10.0.0.2/24")],
)


def _full_queue(lab) -> None:
    done = lab.ns("a").run(["tc", "qdisc", "add", "dev", "eth0", "root", "pfifo", "limit", "0"])
    if done.returncode != 0:
        pytest.skip(f"this kernel has no pfifo qdisc: {done.stderr.decode().strip()}")


@pytest.mark.parametrize("resolved", [True, False], ids=["echo-dropped", "arp-dropped"])
def test_a_loss_to_a_full_queue_is_tried_twice_and_reported_as_congestion(lab, resolved):
    lab.build(PAIR)
    if resolved:  # the echo request itself meets the queue; else the ARP request before it does
        lab.ns("a").run(["ip", "neigh", "replace", "10.0.0.2", "lladdr", lab.ns("b").link("eth0").mac, "dev", "eth0", "nud", "permanent"], check=True)
    _full_queue(lab)

    result = lab.ns("a").ping("10.0.0.2")

    assert result.outcome is (Outcome.LOCAL_ERROR if resolved else Outcome.TIMEOUT)  # a qdisc's drop is the sender's ENOBUFS
    assert result.cause is Cause.CONGESTION, result.explanation
    # the ARP request's drop, or the echo's, queued on the entry, when the kernel gave up asking (three
    # solicitations, a second apart, all dropped), if the second try lasted that long: its text names the first
    assert (result.reason, result.where.ns, result.where.dev) in (("QDISC_DROP", "a", "eth0"), ("NEIGH_FAILED", "a", "eth0"))
    assert "the kernel dropped it in a on eth0 (QDISC_DROP)" in result.explanation or resolved
    first = result.first_try
    assert first is not None and first.cause is Cause.CONGESTION and first.reason == "QDISC_DROP"
    assert first.evidence.flow != result.evidence.flow  # a second packet, not the first one read again
    if result.reason == first.reason:
        assert result.explanation.startswith("lost to congestion twice, the same way: ")
    else:  # the second try outlasted the entry's solicitations: its drop differs, and both are told
        assert result.explanation.startswith(f"lost to congestion twice, the first try: {first.explanation}; the second: ")
    assert "cannot tell the machine's load from a limit set on the device" in result.explanation
    assert "the machine's own congestion" not in result.explanation
    assert lab.probes[-1] is result and all(p is not first for p in lab.probes)  # one probe recorded, with its first try


def test_a_probe_that_is_not_congested_is_made_once(lab):
    lab.build(PAIR)
    lab.ns("b").run(["ip", "link", "set", "eth0", "down"], check=True)

    result = lab.ns("a").ping("10.0.0.2")

    assert result.cause is not Cause.CONGESTION and result.first_try is None
