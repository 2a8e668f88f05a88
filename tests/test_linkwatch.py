"""Linkwatch, asked rather than waited for (Kernel.settle_links, Readback.settle).

A bridge that loses its last port loses carrier at once, but its connected route
takes the `linkdown` flag only when the kernel's linkwatch applies the change: an
event it does not take as urgent, held for its next batch, up to a second after
its last one. `ip link show dev br0` (one link, not a dump) applies it first.
"""

from __future__ import annotations

import pytest


def _linkdown(ns) -> bool:
    (route,) = [r for r in ns.routes() if r.dev == "br0"]
    return route.linkdown


@pytest.mark.needs("bridge")
def test_a_bridges_lost_carrier_reaches_its_route_when_asked_not_a_second_later(lab):
    host = lab.add_namespace("host")
    host.add_bridge("br0")
    host.add_address("10.9.0.1/24", dev="br0")
    host.set_link("br0", up=True)
    host.add_veth("v0", "v1", up=True)
    held = False
    for _ in range(20):  # until the kernel is seen holding the event (linkwatch ran within the last second)
        host.set_link("v0", master="br0")
        lab.kernel.wait_ready(host.handle)
        host.readback.settle(["br0"])
        assert host.link("br0").carrier and not _linkdown(host)
        host.set_link("v0", nomaster=True)  # br0's last port: br0 loses carrier
        assert not host.link("br0").carrier
        if _linkdown(host):
            continue  # linkwatch took this one at once: its last batch was more than a second ago
        held = True
        host.readback.settle(["br0"])
        assert _linkdown(host), "ip link show dev br0 did not make linkwatch apply br0's lost carrier"
        break
    assert held, "the kernel never held br0's lost carrier back from its route in 20 tries"
