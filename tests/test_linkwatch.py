"""Linkwatch, asked rather than waited for (Kernel.settle_links, Readback.settle).

A bridge that loses its last port loses carrier at once, but its connected route
takes the `linkdown` flag only when the kernel's linkwatch applies the change: an
event it does not take as urgent, held for its next batch, up to a second after
its last one. A kernel that applies a link's held event when asked for that link
(`ip link show dev br0`: 6.18 here, not Debian 12's 6.1) lets nslab ask instead
of wait; on one that does not, asking changes nothing and the wait is as before.
"""

from __future__ import annotations

from typing import Callable

import pytest

from nslab.kernel.process import wait_until

TRIES = 3  # each way, each time from a held event: the batch itself may run within the few milliseconds after the ask


def _linkdown(ns) -> bool:
    (route,) = [r for r in ns.routes() if r.dev == "br0"]
    return route.linkdown


def _applied_when_asked(lab, host, ask: Callable[[], object]) -> bool:
    """Hold br0's lost carrier back from its route (its last port leaves within a second of
    linkwatch's last batch), *ask*, and say whether the route took `linkdown` then."""
    for _ in range(20):
        host.set_link("v0", master="br0")
        lab.kernel.wait_ready(host.handle)
        assert host.link("br0").carrier
        wait_until(lambda: not _linkdown(host), 3.0, "br0's route to follow its carrier")
        host.set_link("v0", nomaster=True)  # br0's last port: br0 loses carrier
        assert not host.link("br0").carrier
        if _linkdown(host):
            continue  # linkwatch took this one at once: its last batch was more than a second ago
        ask()
        return _linkdown(host)
    raise AssertionError("the kernel never held br0's lost carrier back from its route in 20 tries")


@pytest.mark.needs("bridge")
def test_settle_applies_a_held_linkwatch_event_exactly_where_ip_link_show_dev_does(lab):
    host = lab.add_namespace("host")
    host.add_bridge("br0")
    host.add_address("10.9.0.1/24", dev="br0")
    host.set_link("br0", up=True)
    host.add_veth("v0", "v1", up=True)
    by_ip = [_applied_when_asked(lab, host, lambda: host.run(["ip", "link", "show", "dev", "br0"], check=True)) for _ in range(TRIES)]
    by_settle = [_applied_when_asked(lab, host, lambda: host.readback.settle(["br0"])) for _ in range(TRIES)]
    kernel_syncs = all(by_ip)
    assert kernel_syncs or not any(by_ip), f"ip link show dev br0 applied the held event in {by_ip}: neither always nor never"
    assert all(by_settle) == kernel_syncs and any(by_settle) == kernel_syncs, (
        f"ip link show dev br0 applied it: {by_ip}; Readback.settle: {by_settle}")
