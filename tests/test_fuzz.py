"""Random labs, random malformed values: either a clean one-line LabError naming
a field, or a lab that builds, answers netlink, and tears down leaving nothing.

Most examples are consistent by construction (names unique per namespace,
addresses on interfaces that exist, gateways on connected subnets of up
links), so that most of them reach the kernel; the rest mix the classic
mistakes into every field. A KernelError is a failure: the kernel refused a
lab the model allowed, so the model must learn to reject that input, with its
field, before anything touches the kernel. At least half the examples must
reach the kernel, or the test is mostly checking the model.

Derandomised (a fixed sequence of examples), so CI is deterministic; raise
NSLAB_FUZZ_EXAMPLES to explore more.
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nslab import Address, Bridge, Lab, LabError, Namespace, Route, Topology, Veth
from nslab.kernel.netlink import KernelError

EXAMPLES = int(os.environ.get("NSLAB_FUZZ_EXAMPLES", "100"))

GOOD_NS = ["ns1", "ns2", "host", "c1"]
GOOD_IF = ["v1", "v2", "eth0", "eth1", "br0", "veth_root_ns"]
SUBNETS = ["10.0.0.0/24", "10.0.1.0/24", "10.1.0.0/16"]


# -- consistent by construction ----------------------------------------------------
@st.composite
def consistent(draw):
    """Keyword arguments for a Topology the model should accept (it may still refuse a few)."""
    names = draw(st.lists(st.sampled_from(GOOD_NS), min_size=1, max_size=4, unique=True))
    used = {n: {"lo"} for n in names}

    def new_ifname(ns: str) -> str | None:
        free = [i for i in GOOD_IF if i not in used[ns]]
        if not free:
            return None
        name = draw(st.sampled_from(free))
        used[ns].add(name)
        return name

    namespaces = [Namespace(n, draw(st.booleans())) for n in names]
    bridges = []
    for _ in range(draw(st.integers(0, 1))):
        ns = draw(st.sampled_from(names))
        name = new_ifname(ns)
        if name is not None:
            bridges.append(Bridge(ns, name, draw(st.booleans())))
    veths = []
    for _ in range(draw(st.integers(0, 3))):
        ns, peer_ns = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        name = new_ifname(ns)
        peer = new_ifname(peer_ns) if name is not None else None
        if peer is None:
            continue
        masters = [b.name for b in bridges if b.ns == ns]
        master = draw(st.sampled_from([None, *masters]))
        veths.append(Veth(ns, name, peer_ns, peer, draw(st.booleans()), draw(st.booleans()), master))
    links = [(b.ns, b.name, b.up) for b in bridges] + [e for v in veths for e in ((v.ns, v.name, v.up), (v.peer_ns, v.peer, v.peer_up))]
    addresses: list[Address] = []
    taken: set[tuple[str, str]] = set()
    for _ in range(draw(st.integers(0, 4)) if links else 0):
        ns, dev, _ = draw(st.sampled_from(links))
        net = ipaddress.ip_network(draw(st.sampled_from(SUBNETS)))
        host = draw(st.integers(1, 3))
        if (ns, str(net[host])) not in taken:
            taken.add((ns, str(net[host])))
            addresses.append(Address(ns, dev, f"{net[host]}/{net.prefixlen}"))
    routes: list[Route] = []
    dsts: set[tuple[str, str]] = set()
    for _ in range(draw(st.integers(0, 2))):
        up = [(ns, dev) for ns, dev, is_up in links if is_up]
        if not up:
            break
        ns, dev = draw(st.sampled_from(up))
        dst = draw(st.sampled_from(["default", "192.0.2.0/24", "198.51.100.0/24"]))
        on_dev = [a for a in addresses if (a.ns, a.dev) == (ns, dev)]
        onlink = False
        if on_dev and draw(st.booleans()):  # via a gateway on the link's subnet: a host, or an edge the kernel may refuse
            net = draw(st.sampled_from(on_dev)).interface.network
            via = str(draw(st.sampled_from([net[1], net[2], net[3], net.network_address, net.broadcast_address])))
            onlink = draw(st.integers(1, 4)) == 4
        else:
            via = None
        if (ns, dst) not in dsts:
            dsts.add((ns, dst))
            routes.append(Route(ns, dst, via, dev, onlink))
    return dict(namespaces=namespaces, veths=veths, bridges=bridges, addresses=addresses, routes=routes)


# -- anything goes, mostly valid values ----------------------------------------------
def sometimes_bad(good, bad):
    return st.integers(1, 16).flatmap(lambda i: bad if i == 16 else st.sampled_from(good))


bad_ns = st.sampled_from(["bad/ns", "", "a b", "..", "missing"])
bad_if = st.one_of(st.sampled_from(["lo", "veth_root_namespace", "a/b", "x y", ""]), st.text(alphabet="ab/: 9_", max_size=18))
cidrs = sometimes_bad(
    [f"10.0.{b}.{h}/{p}" for b in (0, 1) for h in (1, 2, 3) for p in (24, 16)],
    st.sampled_from(["10.0.0.300/24", "10.0.0.1/33", "10.0.0.1", "x/24", "10.0.0.1/24/8"]),
)
dsts = sometimes_bad(["default", "10.0.0.0/24", "10.1.0.0/16", "192.0.2.0/24"], st.sampled_from(["10.0.0.1/24", "nope", "300.0.0.0/8"]))
gateways = st.one_of(st.none(), sometimes_bad(["10.0.0.1", "10.0.1.1", "10.0.0.2"], st.sampled_from(["10.1.2.3", "999.1.1.1"])))


@st.composite
def anything(draw):
    """Keyword arguments for Topology, built from parts that may each be malformed."""
    def part(build, *args):
        try:
            return build(*args)
        except LabError as exc:
            return exc  # a part that could not even be made: its own clean error

    names = draw(st.lists(st.sampled_from(GOOD_NS), min_size=1, max_size=4, unique=True))
    ns = sometimes_bad(names, bad_ns)
    ifname = sometimes_bad(GOOD_IF, bad_if)
    namespaces = [part(Namespace, n, draw(st.booleans())) for n in names]
    veths = [
        part(Veth, draw(ns), draw(ifname), draw(ns), draw(ifname), draw(st.booleans()), draw(st.booleans()))
        for _ in range(draw(st.integers(0, 3)))
    ]
    bridges = [part(Bridge, draw(ns), draw(ifname)) for _ in range(draw(st.integers(0, 1)))]
    addresses = [part(Address, draw(ns), draw(ifname), draw(cidrs)) for _ in range(draw(st.integers(0, 4)))]
    routes = [part(Route, draw(ns), draw(dsts), draw(gateways), draw(st.one_of(st.none(), ifname))) for _ in range(draw(st.integers(0, 2)))]
    return dict(namespaces=namespaces, veths=veths, bridges=bridges, addresses=addresses, routes=routes)


def assert_clean(exc: LabError) -> None:
    assert exc.field and "\n" not in str(exc) and str(exc).startswith(exc.field + ": ")


def test_random_labs_fail_cleanly_or_build_and_leave_nothing(nslab_sandbox):
    tally: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(consistent(), consistent(), consistent(), anything()))
    def one(parts):
        tally["examples"] += 1
        broken = [p for ps in parts.values() for p in ps if isinstance(p, LabError)]
        for exc in broken:
            assert_clean(exc)
        if broken:
            event("a part was malformed")
            return
        try:
            topo = Topology(**parts)
        except LabError as exc:
            assert_clean(exc)
            event("the topology was inconsistent")
            return
        event("built")
        tally["built"] += 1
        lab = Lab(topo)
        try:  # a KernelError here fails: the model allowed what the kernel refuses
            lab.open()
            for spec in topo.namespaces:
                ns = lab.ns(spec.name)
                assert sorted(ns.link_names()) == sorted(topo.links_in(spec.name))
                expected = {a.cidr for a in topo.addresses if a.ns == spec.name}
                assert expected <= {a.cidr for a in ns.addresses()}
        finally:
            lab.close()  # also when building failed half-way
        assert os.listdir(nslab_sandbox.netns_dir) == []
        with Lab() as probe:  # the sandbox's own namespace holds nothing but lo
            assert probe.kernel.sandbox_link_names() == ["lo"]

    one()
    assert tally["examples"] >= min(EXAMPLES, 50), tally
    assert tally["built"] * 2 >= tally["examples"], f"only {tally['built']} of {tally['examples']} examples reached the kernel; the rest stopped at the model"


# Found by the fuzzing above: routes the model allowed and the kernel refused
# ("Nexthop has invalid gateway"). Each case is checked both ways: the kernel
# refuses it (applied directly, past the model) and the model rejects it; the
# edges the kernel accepts are accepted by the model too.
PAIR = [Veth("ns1", "v1", "ns2", "v2"), Veth("ns1", "v3", "ns2", "v4")]
GATEWAYS = {
    "broadcast of the dev's subnet": ("10.0.0.1/24", "v3", Route("ns1", "default", "10.0.0.255", "v3"), "broadcast address of 10.0.0.0/24"),
    "broadcast of a /16, no dev": ("10.1.0.1/16", "v3", Route("ns1", "default", "10.1.255.255"), "broadcast address of 10.1.0.0/16"),
    "onlink via a broadcast on another link": ("10.9.0.1/24", "v3", Route("ns1", "default", "10.9.0.255", "v1", True), "broadcast address of 10.9.0.0/24"),
    "onlink via our own address": ("10.9.0.1/24", "v3", Route("ns1", "default", "10.9.0.1", "v1", True), "is an address of 'ns1' itself"),
    "network address": ("10.0.0.1/24", "v3", Route("ns1", "default", "10.0.0.0", "v3"), None),
    "our own address, not onlink": ("10.0.0.1/24", "v3", Route("ns1", "default", "10.0.0.1", "v3"), None),
    "upper address of a /31": ("10.0.0.0/31", "v3", Route("ns1", "default", "10.0.0.1", "v3"), None),
    "broadcast of another link's subnet, dev given": ("10.0.0.5/16", "v3", Route("ns1", "default", "10.0.0.255", "v3"), None),
}


@pytest.mark.parametrize("case", GATEWAYS)
def test_gateways_the_kernel_refuses_are_refused_by_the_model(nslab_sandbox, case):
    cidr, dev, route, refused = GATEWAYS[case]
    addresses = [Address("ns1", dev, cidr)] + ([Address("ns1", "v1", "10.0.0.1/24")] if "another link" in case else [])
    with Lab(Topology(["ns1", "ns2"], veths=PAIR, addresses=addresses)) as lab:
        try:
            lab.kernel.add_route(lab.ns("ns1").handle, route)
            kernel = None
        except KernelError as exc:
            kernel = str(exc)
    try:
        Topology(["ns1", "ns2"], veths=PAIR, addresses=addresses, routes=[route])
        model = None
    except LabError as exc:
        assert_clean(exc)
        model = str(exc)
    if refused is None:
        assert (kernel, model) == (None, None)
    else:
        assert kernel is not None and "Nexthop has invalid gateway" in kernel
        assert model is not None and model.startswith("routes[0].via: ") and refused in model
