"""A kind cluster as kindnet wires it: K nodes on one node network, P pods on each.

      host (the machine running kind, played by a lab namespace)
      kind 172.18.0.1/16  (the "kind" Docker network: a Linux bridge)
        |-- veth-node1 (master kind) <-- veth --> node1: eth0 172.18.0.2/16
        |-- veth-node2 (master kind) <-- veth --> node2: eth0 172.18.0.3/16
        `-- veth-nodeK ...                        nodeK: eth0 172.18.0.(K+1)/16

      nodeN (pod CIDR 10.244.N.0/24, net.ipv4.ip_forward=1)
        veth-pod1 10.244.N.1/32 <-- veth --> podN-1: eth0 10.244.N.2/32
        veth-podP 10.244.N.1/32 <-- veth --> podN-P: eth0 10.244.N.(P+1)/32
        10.244.N.(p+1)/32 dev veth-podp           one host route per pod
        10.244.M.0/24 via 172.18.0.(M+1) dev eth0  one route per other node
      every pod: default via 10.244.N.1 dev eth0 onlink

Inside a node the wiring is the per-pod-routes one (scenarios/test_per_pod_routes.py):
no bridge, the same gateway address on every pod's veth, a /32 route per pod.
Between nodes, kindnet's routes: each node reaches another's pods through that
node's address on the node network. The nodes have no default route (the lab
has no internet), so a packet for a pod CIDR a node has no route to is
answered at once by that node: ICMP network unreachable.

    topo = cluster(3, 3)                           # Lab(topo), or nslab show kind-cluster
    cluster(3, 3, forwarding_off={2})              # node2 does not forward
    cluster(3, 3, without_routes={(1, 3)})         # node1 has no route to node3's pods
    pods(3, 3)                                     # {"pod1-1": "10.244.1.2", ...}

Dual stack (`cluster(3, 3, dual_stack=True)`), as kind assigns it with
`ipFamily: dual`: the kind network's IPv6 subnet fc00:f853:ccd:e793::/64 beside
172.18.0.0/16 (node N at ::N+1), and pod CIDRs from fd00:10:244::/56, a /64 per
node (fd00:10:244:N::/64, pod p at ::p+1, the gateway ::1/128 on every pod's
veth, as for IPv4). Every namespace takes accept_dad=0 for its links (their
link-local addresses usable at once) and the nodes forward IPv6
(net.ipv6.conf.all.forwarding=1, unless in *forwarding_off*).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Collection

from nslab.model.topology import Address, Bridge, LabError, Namespace, Route, Topology, Veth

if TYPE_CHECKING:
    from nslab.lab.live import Lab
    from nslab.probes.result import Result

HOST, BRIDGE = "host", "kind"
NODE_NETWORK = ipaddress.ip_network("172.18.0.0/16")
MAX_NODES, MAX_PODS = 254, 253  # 10.244.1-254.0/24, pods .2-.254


def node(n: int) -> str:
    return f"node{n}"


def pod(n: int, p: int) -> str:
    return f"pod{n}-{p}"


def pod_cidr(n: int) -> str:
    return f"10.244.{n}.0/24"


def gateway(n: int) -> str:
    return f"10.244.{n}.1"


def pod_address(n: int, p: int) -> str:
    return f"10.244.{n}.{p + 1}"


def node_address(n: int) -> str:
    return str(NODE_NETWORK[n + 1])


def pod_veth(p: int) -> str:
    return f"veth-pod{p}"


NODE_NETWORK6 = ipaddress.ip_network("fc00:f853:ccd:e793::/64")  # kind's network, IPv6 side


def pod_cidr6(n: int) -> str:
    return f"fd00:10:244:{n:x}::/64"


def gateway6(n: int) -> str:
    return f"fd00:10:244:{n:x}::1"


def pod_address6(n: int, p: int) -> str:
    return f"fd00:10:244:{n:x}::{p + 1:x}"


def node_address6(n: int) -> str:
    return str(NODE_NETWORK6[n + 1])


def pods(nodes: int, per_node: int, *, version: int = 4) -> dict[str, str]:
    """Every pod's name and address (IPv6 for *version* 6), node by node: the hosts of a cluster matrix."""
    address = pod_address6 if version == 6 else pod_address
    return {pod(n, p): address(n, p) for n in range(1, nodes + 1) for p in range(1, per_node + 1)}


def node_of(name: str) -> str:
    """The node a pod runs on ('pod2-3' -> 'node2'); a node is its own."""
    return node(int(name[3:].split("-")[0])) if name.startswith("pod") else name


def cluster(
    nodes: int = 3, per_node: int = 3, *, forwarding_off: Collection[int] = (), without_routes: Collection[tuple[int, int]] = (), dual_stack: bool = False
) -> Topology:
    """*nodes* nodes of *per_node* pods, wired as kindnet does (see the module).

    *forwarding_off*: nodes with net.ipv4.ip_forward=0 (and IPv6's off). *without_routes*:
    (n, m) pairs where node n lacks its route to node m's pod CIDR (both, in dual stack)."""
    if not 1 <= nodes <= MAX_NODES:
        raise LabError("nodes", f"{nodes!r} nodes: a cluster has 1 to {MAX_NODES} (one 10.244.N.0/24 each)")
    if not 1 <= per_node <= MAX_PODS:
        raise LabError("per_node", f"{per_node!r} pods per node: a node has 1 to {MAX_PODS} (10.244.N.2-254)")
    for n, m in without_routes:
        if not (1 <= n <= nodes and 1 <= m <= nodes and n != m):
            raise LabError("without_routes", f"({n}, {m}): both must be nodes 1-{nodes}, and a node needs no route to its own pods")
    for n in forwarding_off:
        if not 1 <= n <= nodes:
            raise LabError("forwarding_off", f"{n!r} is not a node; the nodes are 1-{nodes}")
    all_nodes = range(1, nodes + 1)
    namespaces = [Namespace(HOST)]
    veths = []
    addresses = [Address(HOST, BRIDGE, f"{NODE_NETWORK[1]}/{NODE_NETWORK.prefixlen}")]
    routes = []
    for n in all_nodes:
        namespaces.append(Namespace(node(n), sysctls={"net.ipv4.ip_forward": 0 if n in forwarding_off else 1}))
        veths.append(Veth(HOST, f"veth-node{n}", node(n), "eth0", master=BRIDGE))
        addresses.append(Address(node(n), "eth0", f"{node_address(n)}/{NODE_NETWORK.prefixlen}"))
        for p in range(1, per_node + 1):
            namespaces.append(Namespace(pod(n, p)))
            veths.append(Veth(node(n), pod_veth(p), pod(n, p), "eth0"))
            addresses += [Address(node(n), pod_veth(p), f"{gateway(n)}/32"), Address(pod(n, p), "eth0", f"{pod_address(n, p)}/32")]
            routes += [Route(node(n), f"{pod_address(n, p)}/32", dev=pod_veth(p)), Route(pod(n, p), "default", via=gateway(n), dev="eth0", onlink=True)]
        routes += [Route(node(n), pod_cidr(m), via=node_address(m), dev="eth0") for m in all_nodes if m != n and (n, m) not in without_routes]
    topo = Topology(namespaces, veths=veths, bridges=[Bridge(HOST, BRIDGE)], addresses=addresses, routes=routes)
    return _with_ipv6(topo, nodes, per_node, forwarding_off, without_routes) if dual_stack else topo


def _with_ipv6(topo: Topology, nodes: int, per_node: int, forwarding_off: Collection[int], without_routes: Collection[tuple[int, int]]) -> Topology:
    """*topo* with kind's IPv6 side beside its IPv4 one (see the module)."""
    all_nodes = range(1, nodes + 1)
    no_dad = {"net.ipv6.conf.default.accept_dad": 0}
    forwards = {node(n): {"net.ipv6.conf.all.forwarding": 0 if n in forwarding_off else 1} for n in all_nodes}
    addresses = [Address(HOST, BRIDGE, f"{NODE_NETWORK6[1]}/{NODE_NETWORK6.prefixlen}")]
    routes = []
    for n in all_nodes:
        addresses.append(Address(node(n), "eth0", f"{node_address6(n)}/{NODE_NETWORK6.prefixlen}"))
        for p in range(1, per_node + 1):
            addresses += [Address(node(n), pod_veth(p), f"{gateway6(n)}/128"), Address(pod(n, p), "eth0", f"{pod_address6(n, p)}/128")]
            routes += [Route(node(n), f"{pod_address6(n, p)}/128", dev=pod_veth(p)), Route(pod(n, p), "::/0", via=gateway6(n), dev="eth0", onlink=True)]
        routes += [Route(node(n), pod_cidr6(m), via=node_address6(m), dev="eth0") for m in all_nodes if m != n and (n, m) not in without_routes]
    return topo.replace(
        namespaces=tuple(Namespace(ns.name, ns.lo_up, {**dict(ns.sysctls), **no_dad, **forwards.get(ns.name, {})}) for ns in topo.namespaces),
        addresses=(*topo.addresses, *addresses),
        routes=(*topo.routes, *routes),
    )


def missing_routes(lab: Lab, at: str) -> list[str]:
    """What node *at* lacks of kindnet's routes, read from its table: one line per
    missing route, naming the node whose pods it leads to and the command that adds it."""
    nodes = sorted(int(ns.name[4:]) for ns in lab.namespaces if ns.name.startswith("node") and ns.name[4:].isdigit())
    here = int(at[4:])
    have = {r.dst for r in lab.ns(at).routes()}
    return [
        f"{at} has no route to {pod_cidr(m)} ({node(m)}'s pods): ip -n {at} route add {pod_cidr(m)} via {node_address(m)} dev eth0"
        for m in nodes
        if m != here and pod_cidr(m) not in have
    ]


def route_hint(lab: Lab, result: Result) -> str | None:
    """For a failed probe in a cluster lab: the routes the node where it stopped
    lacks toward the destination's pods or, for a reply dropped on its way back,
    toward the source's (None when it lacks neither)."""
    where = result.where.ns if result.where is not None else None
    if where is None or not where.startswith("node") or not where[4:].isdigit():
        return None
    ends = [ipaddress.ip_address(result.dst.split(":")[0])] + [a.interface.ip for a in lab.topology.addresses if a.ns == result.src]
    lines = [line for line in missing_routes(lab, where) if any(ip in ipaddress.ip_network(line.split(" route to ")[1].split()[0]) for ip in ends)]
    return "; ".join(lines) or None


__all__ = [
    "cluster", "gateway", "gateway6", "missing_routes", "node", "node_address", "node_address6", "node_of",
    "pod", "pod_address", "pod_address6", "pod_cidr", "pod_cidr6", "pod_veth", "pods", "route_hint",
]  # fmt: skip
