"""A namespace's capture takes the frames a probe can be made of, and not IPv6's MLD and router
discovery, which a fresh interface sends unasked and a bridge floods to every port.

    a eth0 fd00::1/64 --- eth0 fd00::2/64 b

A plain packet socket in b, opened beside b's capture, shows what the kernel sent.
"""

from __future__ import annotations

import socket

from nslab import Address, Namespace, Topology, Veth
from nslab.diagnosis import frames
from nslab.kernel import linux
from nslab.kernel.process import wait_until
from nslab.probes import packets

PAIR6 = Topology(
    [Namespace("a"), Namespace("b")],
    veths=[Veth("a", "eth0", "b", "eth0")],
    addresses=[Address("a", "eth0", "fd00::1/64"), Address("b", "eth0", "fd00::2/64")],
)
CHATTER = {130, 131, 132, 133, 134, 143}  # MLD queries, reports and done, router solicitations and advertisements


def _icmp6_type(frame: bytes) -> int | None:
    packet = frames.parse(frame) if frames.ethertype(frame) == packets.ETH_P_IPV6 else None
    return packet.icmp_type if packet is not None and packet.proto == packets.ICMPV6 else None


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65535))
        except BlockingIOError:
            return out


def test_the_capture_skips_mld_and_router_discovery_and_keeps_ndp_and_echoes(lab):
    lab.build(PAIR6)
    b = lab.ns("b")
    capture = b.probing.watcher
    capture.read()  # opened now, with its filter
    with linux.in_netns(b.handle.fd):
        plain = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.htons(0x0003))
    with plain:
        # a new link joins its groups: MLD reports at once, router solicitations after DAD
        b.run(["sh", "-c", "ip link add x1 type veth peer name x2 && ip link set x1 up && ip link set x2 up"], check=True)
        seen: list[bytes] = []
        wait_until(lambda: seen.extend(_drain(plain)) or {_icmp6_type(f) for f in seen} & CHATTER, 10, "b's kernel to send MLD or router discovery")
        kept = capture.read()

        assert lab.ns("a").ping("fd00::2").replied
        seen += _drain(plain)

    assert not {_icmp6_type(s.frame) for s in kept} & CHATTER
    probe = lab.probes[-1].evidence.sightings
    assert {_icmp6_type(s.frame) for s in probe if s.ns == "b"} >= {packets.ECHO_REQUEST6, packets.ECHO_REPLY6}
    kinds = {_icmp6_type(f) for f in seen}
    assert kinds & CHATTER and {packets.ECHO_REQUEST6, packets.ECHO_REPLY6} <= kinds
