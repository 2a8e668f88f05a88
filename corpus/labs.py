"""The small labs of the soundness corpus, and the steps that change them.

Every lab turns rp_filter off in its namespaces (all and default, before any
link exists), so a verdict does not depend on the host's setting, which new
namespaces inherit; the cases about rp_filter set it per device. It also sets
tcp_orphan_retries=1: a TCP socket closed with data the path never took (a
black hole) is orphaned and holds its namespace until it gives up, by default
after minutes; with 1 it gives up in about a second, within the lab's wait.

    PAIR      ns1 v1 10.0.0.1/24 ---- v2 10.0.0.2/24 ns2

    ROUTED    h1 eth0 10.0.1.2/24 -- r0 10.0.1.1/24 [r, ip_forward=1] r1 10.0.2.1/24 -- eth0 10.0.2.2/24 h2
              h1: default via 10.0.1.1;  h2: default via 10.0.2.1

    HOST      lan eth0 10.0.0.1/24 -- enp0s8 10.0.0.10/24 [host] veth1 -- ceth1 172.16.0.2/24 container1
              host: 172.16.0.0/24 dev veth1; container1 has no route back to 10.0.0.0/24

    NAT       container1 ceth1 172.16.0.2/24 -- veth1 172.16.0.1/24 [host, ip_forward=1] uplink 203.0.113.2/24 -- eth0 203.0.113.1/24 outside
              container1: default via 172.16.0.1; the outside has no route to 172.16.0.0/24

    BRIDGED   c1 eth0 10.0.0.1/24 -- veth1 [host: br0] veth2 -- eth0 10.0.0.2/24 c2

    CALICO    pod1 eth0 10.244.0.5/32 -- cali1 (no address, proxy_arp=1) [node, ip_forward=1] uplink 10.0.0.10/24 -- eth0 10.0.0.1/24 lan
              pod1: 169.254.1.1 dev eth0, default via 169.254.1.1 dev eth0;  node: 10.244.0.5 dev cali1, default via 10.0.0.1

    PROXIED   ns1 v1 10.0.0.1/24 -- v2 10.0.0.2/24 [ns2, ip_forward=1] v3 192.168.100.1/24 -- eth0 192.168.100.2/24 + 10.0.0.99/32 ns3
              ns2: 10.0.0.99 via 192.168.100.2;  ns3: default via 192.168.100.1

    TWO_WAYS  client eth0 10.0.1.1/24 + 192.168.9.1/32 ==== eth0 10.0.1.2/24 server
                     eth1 10.0.2.1/24 ---------------- eth1 10.0.2.2/24
              client: 10.0.1.2 dev eth0 src 192.168.9.1;  server: 192.168.9.1 via 10.0.2.1 (the way back is the other link)
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from nslab import Address, Bridge, Lab, LabError, Namespace, Route, Topology, Veth

Step = Callable[[Lab], Optional[Callable[[], None]]]  # a change; may return what to do after the probe


class StepFailed(RuntimeError):
    """A step of a case could not be applied (the command's own message says why)."""


def node(name: str, *, forward: bool = False, lo_up: bool = True, **sysctls: Any) -> Namespace:
    base = {"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.default.rp_filter": 0, "net.ipv4.tcp_orphan_retries": 1}
    if forward:
        base["net.ipv4.ip_forward"] = 1
    return Namespace(name, lo_up=lo_up, sysctls={**base, **sysctls})


def pair(*, v1_up: bool = True, v2_up: bool = True, lo_up: bool = True) -> Topology:
    return Topology(
        [node("ns1", lo_up=lo_up), node("ns2")],
        veths=[Veth("ns1", "v1", "ns2", "v2", up=v1_up, peer_up=v2_up)],
        addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")],
    )


PAIR = pair()


def routed(*, forward: bool = True, h2_default: bool = True, extra: Topology | None = None) -> Topology:
    extra = extra or Topology()
    routes = [Route("h1", "default", via="10.0.1.1")] + ([Route("h2", "default", via="10.0.2.1")] if h2_default else [])
    return Topology(
        [node("h1"), node("r", forward=forward), node("h2"), *extra.namespaces],
        veths=[Veth("h1", "eth0", "r", "r0"), Veth("r", "r1", "h2", "eth0"), *extra.veths],
        # an extra lab's addresses come first: the model's owner of a duplicate address is the first one
        addresses=[
            *extra.addresses,
            Address("h1", "eth0", "10.0.1.2/24"),
            Address("r", "r0", "10.0.1.1/24"),
            Address("r", "r1", "10.0.2.1/24"),
            Address("h2", "eth0", "10.0.2.2/24"),
        ],
        routes=routes + list(extra.routes),
    )


ROUTED = routed()

HOST = Topology(
    [node("host"), node("container1"), node("lan")],
    veths=[Veth("host", "veth1", "container1", "ceth1"), Veth("host", "enp0s8", "lan", "eth0")],
    addresses=[Address("host", "enp0s8", "10.0.0.10/24"), Address("lan", "eth0", "10.0.0.1/24"), Address("container1", "ceth1", "172.16.0.2/24")],
    routes=[Route("host", "172.16.0.0/24", dev="veth1")],
)


def nat(*, container_default: bool = True) -> Topology:
    return Topology(
        [node("container1"), node("host", forward=True), node("outside")],
        veths=[Veth("container1", "ceth1", "host", "veth1"), Veth("host", "uplink", "outside", "eth0")],
        addresses=[
            Address("container1", "ceth1", "172.16.0.2/24"),
            Address("host", "veth1", "172.16.0.1/24"),
            Address("host", "uplink", "203.0.113.2/24"),
            Address("outside", "eth0", "203.0.113.1/24"),
        ],
        routes=[Route("container1", "default", via="172.16.0.1")] if container_default else [],
    )


NAT = nat()


def bridged(*, attached: bool = True, bridge_up: bool = True, duplicate: bool = False) -> Topology:
    """c1 and c2 (and, with *duplicate*, c3 holding c2's address) on br0 in host."""
    names = ["c1", "c2"] + (["c3"] if duplicate else [])
    addresses = [Address("c1", "eth0", "10.0.0.1/24"), Address("c2", "eth0", "10.0.0.2/24")]
    if duplicate:
        addresses.append(Address("c3", "eth0", "10.0.0.2/24"))
    return Topology(
        [node("host"), *(node(n) for n in names)],
        veths=[Veth(n, "eth0", "host", f"veth{i}", peer_master="br0" if attached or n == "c1" else None) for i, n in enumerate(names, 1)],
        bridges=[Bridge("host", "br0", up=bridge_up)],
        addresses=addresses,
    )


BRIDGED = bridged()

CALICO_BASE = Topology(
    [node("pod1"), node("node", forward=True), node("lan")],
    veths=[Veth("pod1", "eth0", "node", "cali1"), Veth("node", "uplink", "lan", "eth0")],
    addresses=[Address("pod1", "eth0", "10.244.0.5/32"), Address("node", "uplink", "10.0.0.10/24"), Address("lan", "eth0", "10.0.0.1/24")],
    routes=[Route("node", "10.244.0.5/32", dev="cali1"), Route("node", "default", via="10.0.0.1"), Route("pod1", "169.254.1.1", dev="eth0")],
)

PROXIED = Topology(
    [node("ns1"), node("ns2", forward=True), node("ns3")],
    veths=[Veth("ns1", "v1", "ns2", "v2"), Veth("ns2", "v3", "ns3", "eth0")],
    addresses=[
        Address("ns1", "v1", "10.0.0.1/24"),
        Address("ns2", "v2", "10.0.0.2/24"),
        Address("ns2", "v3", "192.168.100.1/24"),
        Address("ns3", "eth0", "192.168.100.2/24"),
        Address("ns3", "eth0", "10.0.0.99/32"),
    ],
    routes=[Route("ns2", "10.0.0.99/32", via="192.168.100.2"), Route("ns3", "default", via="192.168.100.1")],
)

TWO_WAYS = Topology(
    # arp_announce=2: the client asks ARP from 10.0.1.1 (not from 192.168.9.1, which the
    # server's rp_filter would also check), so only the echo request meets the filter
    [node("client", **{"net.ipv4.conf.default.arp_announce": 2}), node("server")],
    veths=[Veth("client", "eth0", "server", "eth0"), Veth("client", "eth1", "server", "eth1")],
    addresses=[
        Address("client", "eth0", "10.0.1.1/24"),
        Address("client", "eth0", "192.168.9.1/32"),
        Address("client", "eth1", "10.0.2.1/24"),
        Address("server", "eth0", "10.0.1.2/24"),
        Address("server", "eth1", "10.0.2.2/24"),
    ],
    routes=[Route("server", "192.168.9.1/32", via="10.0.2.1")],
)


# -- steps -------------------------------------------------------------------------
def build(topology: Topology, *steps: Step) -> Step:
    """The lab: a topology, then steps (those the model cannot express as data)."""

    def apply(lab: Lab) -> None:
        lab.build(topology)
        for step in steps:
            step(lab)

    return apply


def steps(*todo: Step) -> Step:
    """Several steps as one change; what they leave to do after the probe is done in reverse."""

    def apply(lab: Lab) -> Callable[[], None] | None:
        after = [a for a in (step(lab) for step in todo) if a is not None]
        if not after:
            return None

        def undo() -> None:
            for a in reversed(after):
                a()

        return undo

    return apply


def sh(ns: str, *argv: str, stdin: str | None = None) -> Step:
    """A plain command in a namespace (`ip ...`, `bridge ...`, `nft -f -`); fails loudly."""

    def apply(lab: Lab) -> None:
        done = lab.ns(ns).run(list(argv), input=stdin.encode() if stdin is not None else None)
        if done.returncode != 0:
            raise StepFailed(f"in {ns}: {' '.join(argv)}: {done.stderr.decode(errors='replace').strip() or f'exit {done.returncode}'}")

    return apply


def nft(ns: str, hook: str, rule: str, family: str = "inet") -> Step:
    """One filter rule on one hook (`input`, `forward`, `output`), in a table of *family*, as `nft -f -` reads it."""
    return sh(ns, "nft", "-f", "-", stdin=f"table {family} soundness {{\n chain {hook} {{\n  type filter hook {hook} priority 0; policy accept\n  {rule}\n }}\n}}\n")


def nat_rule(ns: str, hook: str, rule: str) -> Step:
    priority = -100 if hook == "prerouting" else 100
    return sh(ns, "nft", "-f", "-", stdin=f"table ip soundness_nat {{\n chain {hook} {{\n  type nat hook {hook} priority {priority}; policy accept\n  {rule}\n }}\n}}\n")


def sysctl(ns: str, key: str, value: Any) -> Step:
    return lambda lab: lab.ns(ns).set_sysctl(key, value)


def link(ns: str, dev: str, **kw: Any) -> Step:
    return lambda lab: lab.ns(ns).set_link(dev, **kw)


def listen(ns: str, port: int, addr: str = "0.0.0.0") -> Step:
    return lambda lab: lab.ns(ns).listen(port, addr) and None


def gateway_behind_device_route(ns: str, via: str, dev: str) -> Step:
    """`ip route add default via VIA dev DEV`, VIA reachable only by a device route (Calico).

    The kernel takes it; the model refused it before issue 14, and then `onlink`
    (which the kernel also takes) stands in for it."""

    def apply(lab: Lab) -> None:
        try:
            lab.ns(ns).add_route("default", via=via, dev=dev)
        except LabError:
            lab.ns(ns).add_route("default", via=via, dev=dev, onlink=True)

    return apply


def until_up(ns: str, dev: str, timeout: float = 2.0) -> Step:
    """Wait (bounded) until the kernel reports *dev* operationally up: a link set up
    by a plain `ip` command is not waited for by the lab."""

    def apply(lab: Lab) -> None:
        poll(lambda: lab.ns(ns).link(dev).operstate == "UP", timeout, f"{dev} in {ns} operationally up")

    return apply


def poll(condition: Callable[[], bool], timeout: float, what: str, stop: threading.Event | None = None) -> bool:
    """Poll *condition* with a short backoff until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    wait = 0.0005
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0 or (stop is not None and stop.is_set()):
            if stop is None:
                raise StepFailed(f"{what}: not true after {timeout:.1f} s")
            return False
        (stop or threading.Event()).wait(min(wait, left))
        wait = min(wait * 2, 0.01)
    return True


def ip_in_receives(lab: Lab, ns: str) -> int:
    """`Ip: InReceives` of a namespace, read by a process inside it."""
    lines = lab.ns(ns).run(["cat", "/proc/net/snmp"]).stdout.decode().splitlines()
    head, values = next((h, v) for h, v in zip(lines, lines[1:]) if h.startswith("Ip:") and v.startswith("Ip:"))
    return int(dict(zip(head.split()[1:], values.split()[1:]))["InReceives"])


def route_after_first_packet(ns: str, argv: list[str], timeout: float) -> Step:
    """Run `ip route add ...` in *ns* as soon as its first IPv4 packet after this step
    arrives (its Ip.InReceives rises), from a thread, bounded by *timeout*. After the
    probe, the thread is joined; a route that was never added fails the case."""

    def apply(lab: Lab) -> Callable[[], None]:
        before = ip_in_receives(lab, ns)
        stop, added = threading.Event(), []

        def watch() -> None:
            if poll(lambda: ip_in_receives(lab, ns) > before, timeout, f"a packet in {ns}", stop):
                done = lab.ns(ns).run(argv)
                added.append(done.returncode == 0 or done.stderr.decode(errors="replace").strip())

        thread = threading.Thread(target=watch, name=f"route-after-first-packet-{ns}", daemon=True)
        thread.start()

        def after() -> None:
            thread.join(timeout)
            stop.set()
            thread.join()
            if added != [True]:
                raise StepFailed(f"in {ns}: {' '.join(argv)} " + (f"failed: {added[0]}" if added else "never ran: no packet arrived"))

        return after

    return apply
