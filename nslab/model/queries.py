"""Questions about a lab's model: who is wired to whom, who holds an address.

The answers say where to look; they decide no verdict (the kernel does).
"""

from __future__ import annotations

from nslab.model.topology import Topology


def veth_peers(topo: Topology) -> dict[tuple[str, str], tuple[str, str]]:
    """Each veth end (namespace, interface) -> the other end."""
    out = {}
    for v in topo.veths:
        out[(v.ns, v.name)] = (v.peer_ns, v.peer)
        out[(v.peer_ns, v.peer)] = (v.ns, v.name)
    return out


def bridge_ports(topo: Topology) -> dict[tuple[str, str], tuple[str, str]]:
    """Each veth end that is a bridge's port (namespace, interface) -> its bridge."""
    return {(ns, dev): (ns, master) for v in topo.veths for ns, dev, master in v.ends() if master is not None}


def owner_of(topo: Topology, address: str) -> str | None:
    """The namespace whose interface holds *address*, per the model."""
    return next((a.ns for a in topo.addresses if str(a.interface.ip) == address), None)


def segment(topo: Topology, ns: str, dev: str) -> set[tuple[str, str]]:
    """The hosts on *dev*'s Ethernet segment, per the model: a veth's peer, or,
    through a bridge, the bridge itself and the far end of each other port."""
    peers = veth_peers(topo)
    masters = {(e[0], e[1]): e[2] for v in topo.veths for e in v.ends()}
    hosts: set[tuple[str, str]] = set()
    todo = [(n, d) for (n, d), m in masters.items() if (n, m) == (ns, dev)] if any((b.ns, b.name) == (ns, dev) for b in topo.bridges) else [(ns, dev)]
    visited = set(todo)
    while todo:
        far = peers.get(todo.pop())
        if far is None or far in visited:
            continue
        visited.add(far)
        master = masters.get(far)
        if master is None:
            hosts.add(far)
            continue
        hosts.add((far[0], master))
        for port, m in masters.items():
            if port[0] == far[0] and m == master and port not in visited:
                visited.add(port)
                todo.append(port)
    return hosts


def watch_set(topo: Topology, src: str, dev: str | None, hop: str, dst: str, *, all_up_to: int) -> set[str] | None:
    """The namespaces worth watching for a probe from *src*: None (all of them)
    in a small lab; in a large one the sender, the holders of the next hop and
    the target, the first hop (and the whole segment when the model knows nobody
    holding the next hop), so a probe's cost does
    not grow with the size of the lab."""
    if len(topo.namespaces) <= all_up_to:
        return None
    holder = owner_of(topo, hop)
    names = {src} | {n for n in (holder, owner_of(topo, dst)) if n is not None}
    if dev is not None:
        first = veth_peers(topo).get((src, dev))
        names |= {first[0]} if first else set()
        if holder is None:  # nobody may answer its ARP: who heard the request is the evidence
            names |= {n for n, _ in segment(topo, src, dev)}
    return names
