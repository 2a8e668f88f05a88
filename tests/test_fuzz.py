"""Random labs, random malformed values: either a clean one-line LabError naming
a field, or a lab that builds, answers netlink, and tears down leaving nothing.

Derandomised (a fixed sequence of examples), so CI is deterministic; raise
NSLAB_FUZZ_EXAMPLES to explore more.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nslab import Address, Bridge, Lab, LabError, Namespace, Route, Topology, Veth
from nslab.kernel.netlink import KernelError

EXAMPLES = int(os.environ.get("NSLAB_FUZZ_EXAMPLES", "100"))

# Mostly valid values, with the classic mistakes mixed in (about one in sixteen).
GOOD_NS = ["ns1", "ns2", "host", "c1"]
GOOD_IF = ["v1", "v2", "eth0", "eth1", "br0", "veth_root_ns"]


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
def topologies(draw):
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


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_random_labs_fail_cleanly_or_build_and_leave_nothing(nslab_sandbox, parts):
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
    lab = Lab(topo)
    try:
        lab.open()
        for spec in topo.namespaces:
            ns = lab.ns(spec.name)
            assert sorted(ns.link_names()) == sorted(topo.links_in(spec.name))
            expected = {a.cidr for a in topo.addresses if a.ns == spec.name}
            assert expected <= {a.cidr for a in ns.addresses()}
    except KernelError as exc:  # the kernel refused something the model allowed: still one clean line
        event("the kernel refused it")
        assert "\n" not in str(exc) and str(exc).startswith("ip ")
    finally:
        lab.close()
    assert os.listdir(nslab_sandbox.netns_dir) == []
    with Lab() as probe:  # the sandbox's own namespace holds nothing but lo
        assert probe.kernel.sandbox_link_names() == ["lo"]
