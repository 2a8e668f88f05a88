"""Netfilter: the nftables chains (iptables-nft's included) on the hooks a packet passes
in one namespace, and which of them can drop or reject it.

Which rule matched is the kernel's to know; read from the ruleset, a chain is
blamed only when it is the one thing on those hooks that can stop the packet.
With several, all are named and none is blamed.
"""

from __future__ import annotations

import re

from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At
from nslab.kernel import nftables
from nslab.probes.result import Cause, Claim, Remedy, Where

# the hooks a packet passes, by what the namespace does with it
HOOKS = {
    "made": ("output", "postrouting"),
    "forwarded": ("prerouting", "forward", "postrouting"),
    "local": ("prerouting", "input"),
    "looped": ("output", "postrouting", "prerouting", "input"),  # made here for an address here: out and back in by lo
    None: ("prerouting", "input", "forward", "output", "postrouting"),
}


def stoppers(reads: Reads, at: At, how: str | None) -> list[nftables.Stopper]:
    rules = reads.ruleset(at.ns)
    if rules is None:
        return []
    families = ("ip6", "inet") if at.v == "ipv6" else ("ip", "inet")
    found = rules.stoppers(families, HOOKS[how])
    found += rules.stoppers(("bridge",), ("prerouting", "input", "forward", "output", "postrouting"))  # a frame on a bridge's ports
    found += rules.stoppers(("netdev",), ("ingress",), at.iif) if at.iif else []
    out = reads.route_get(at.ns, at.dst).dev if how != "local" else None  # the way out, as the kernel routes it
    found += rules.stoppers(("netdev",), ("egress",), out) if out else []
    return found


def dropped(reads: Reads, at: At, how: str | None, *, reason: str | None, rejected: bool = False) -> Finding | None:
    """The packet was dropped (or rejected) in *at*.ns by netfilter, as its drop reason or an ICMP
    error says: the chain that did it, where the ruleset shows one; None where it shows none."""
    found = stoppers(reads, at, how)
    if rejected:
        found = [s for s in found if "reject" in s.text.lower()] or found
    if not found:
        return None
    verb = "rejected" if rejected else "dropped"
    where = Where(at.ns, at.iif)
    said = f" ({reason})" if reason else ""
    if len(found) == 1:
        s = found[0]
        return Finding(
            Cause.REJECTED_BY_RULE if rejected else Cause.FILTERED_BY_RULE,
            where,
            f"the {at.what} was {verb} by netfilter in {at.ns}{said}: table {s.family} {s.table}, chain {s.chain}: {s.text}; ip netns exec {at.ns} {s.undo}",
            reason,
            claims=(Claim(at.ns, f"nft {s.family} {s.table} {s.chain}", s.text, dev=at.iif, blames=True),),
            fixes=(Remedy(at.ns, s.undo),),
        )
    return Finding(
        Cause.REJECTED_BY_RULE if rejected else Cause.FILTERED_BY_RULE,
        where,
        f"the {at.what} was {verb} by netfilter in {at.ns}{said}; these chains on its way can do it: "
        + "; ".join(f"table {s.family} {s.table}, chain {s.chain}: {s.text}" for s in found),
        reason,
        claims=tuple(Claim(at.ns, f"nft {s.family} {s.table} {s.chain}", s.text, dev=at.iif) for s in found),
    )


# what marks a rule as one for other packets than ARP (an `ip`, `ip6` or transport match),
# or than NDP (an IPv4, ARP or non-ICMPv6 transport match)
_NOT_ARP = re.compile(r"\b(ip|ip6|tcp|udp|icmp|icmpv6|sctp|th)\b|l4proto|nfproto|meta protocol (ip|ip6)\b|ether type (ip|ip6)\b")
_NOT_NDP = re.compile(r"\b(ip|arp|tcp|udp|sctp|th)\b|(?<![-\w])icmp\b|meta protocol (ip|arp)\b|ether type (ip|arp)\b|nfproto ipv4|l4proto (?!ipv6-icmp|icmpv6|58\b)")
_OPERATION = re.compile(r"arp operation (request|reply)")
_ICMPV6_TYPE = re.compile(r"icmpv6 type (\{[^}]*\}|\S+)")
_NDP_TYPE = {"request": "nd-neighbor-solicit", "reply": "nd-neighbor-advert"}


def neighbour_stoppers(reads: Reads, ns: str, dev: str, v6: bool, op: str, way: str) -> list[nftables.Stopper]:
    """What can stop an ARP or NDP (*v6*) *op* ('request' or 'reply') coming in on *dev* (*way*
    'in': the netdev ingress chains of *dev*, then the arp family's input, or for NDP the ip6
    and inet families' prerouting and input) or going out of it (*way* 'out': output, for NDP
    also postrouting, then *dev*'s netdev egress); on a bridge device, also the bridge
    family's prerouting and input (or output and postrouting). A rule is left out where its text says it is
    for other packets: another protocol's match, or another `arp operation` or ICMPv6 type."""
    rules = reads.ruleset(ns)
    if rules is None:
        return []
    if v6:
        found = rules.stoppers(("ip6", "inet"), ("prerouting", "input") if way == "in" else ("output", "postrouting"))
    else:
        found = rules.stoppers(("arp",), ("input",) if way == "in" else ("output",))
    found = _about_neighbours(found, v6, op)
    found += device_stoppers(reads, ns, dev, v6, op, "ingress" if way == "in" else "egress")
    link = reads.link(ns, dev)
    if link is not None and link.kind == "bridge":  # a bridge's own frames pass its family's local hooks (br_pass_frame_up, br_dev_xmit)
        found += _about_neighbours(rules.stoppers(("bridge",), ("prerouting", "input") if way == "in" else ("output", "postrouting")), v6, op)
    return found


def device_stoppers(reads: Reads, ns: str, dev: str, v6: bool, op: str, hook: str) -> list[nftables.Stopper]:
    """What can stop an ARP or NDP *op* at *dev*'s own netdev *hook* ('ingress' or 'egress'): a
    device it passes on its way (a bridge port, a veth's far end), whatever happens to it there."""
    rules = reads.ruleset(ns)
    if rules is None:
        return []
    return _about_neighbours(rules.stoppers(("netdev",), (hook,), dev), v6, op)


def _about_neighbours(found: list[nftables.Stopper], v6: bool, op: str) -> list[nftables.Stopper]:
    """The chains' policies, and the rules whose text may be about an ARP or NDP *op*."""
    return [s for s in found if s.handle is None or _for_neighbour(s, v6, op)]


def _for_neighbour(s: nftables.Stopper, v6: bool, op: str) -> bool:
    if v6:
        kind = _ICMPV6_TYPE.search(s.text)
        return not _NOT_NDP.search(s.text) and (kind is None or _NDP_TYPE[op] in kind.group(1))
    operation = _OPERATION.search(s.text)
    return not (s.family in ("netdev", "bridge") and _NOT_ARP.search(s.text)) and not (operation and operation.group(1) != op)


def bridge_stoppers(reads: Reads, ns: str, v6: bool, op: str) -> list[nftables.Stopper]:
    """What can stop an ARP or NDP *op* bridged through *ns*: the bridge family's chains on a
    bridged frame's hooks, and for NDP, where br_netfilter hands bridged IPv6 to the ip6 hooks
    (`net.bridge.bridge-nf-call-ip6tables=1` there), the ip6 and inet families' chains on them,
    with the same reading of rule texts."""
    rules = reads.ruleset(ns)
    if rules is None:
        return []
    hooks = ("prerouting", "forward", "postrouting")
    found = rules.stoppers(("bridge",), hooks)
    if v6 and reads.sysctl(ns, "net.bridge.bridge-nf-call-ip6tables") == "1":
        found += rules.stoppers(("ip6", "inet"), hooks)
    return _about_neighbours(found, v6, op)


def neighbour_finding(where: Where, found: list[tuple[str, nftables.Stopper]], lead: str) -> Finding:
    """*found* (namespace, stopper) on an ARP or NDP exchange's way, named after *lead*; blamed when it
    is the one thing there that can stop it. A chain met twice is one thing: the bridge family's
    prerouting is on a bridged frame's way and on the way into the bridge's own host."""
    found = list(dict.fromkeys(found))
    blame = len(found) == 1
    ns, first = found[0]
    return Finding(
        Cause.FILTERED_BY_RULE if blame else Cause.NO_ARP_ANSWER,
        where,
        f"{lead}: " + "; ".join(f"table {x.family} {x.table}, chain {x.chain} in {n}: {x.text}" for n, x in found) + (f"; ip netns exec {ns} {first.undo}" if blame else ""),
        claims=tuple(Claim(n, f"nft {x.family} {x.table} {x.chain}", x.text, blames=blame) for n, x in found),
        fixes=(Remedy(ns, first.undo),) if blame else (),
    )
