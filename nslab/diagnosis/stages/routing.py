"""Routing, asked of the kernel: `ip route get DST from SRC iif DEV` is the input path's
own decision (source validation, forwarding, local delivery, policy rules, route
types), and without `iif` the sender's.

The kernel answers with an errno where it refuses; several refusals share one
(EINVAL: a blackhole, or a source that failed validation; EHOSTUNREACH: an
unreachable route, or forwarding off on the way in). They are told apart by asking
again without the input device, and the object behind the answer (the route or
rule of that type, the sysctl) is then read and named.
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
from dataclasses import dataclass

from nslab.diagnosis.observations import Finding
from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import At, address, cmd, combined, link_up, route_name, route_words, set_sysctl, sysctl
from nslab.kernel.state import RouteLookup, RouteState, RuleState
from nslab.model.topology import Address, Route
from nslab.probes.result import Cause, Claim, Remedy, Where

REFUSING = ("blackhole", "unreachable", "prohibit", "throw")
ERRNO_OF = {"blackhole": errno_mod.EINVAL, "unreachable": errno_mod.EHOSTUNREACH, "prohibit": errno_mod.EACCES, "throw": errno_mod.ENETUNREACH}
# a rule's action answers with its own errno (fib4_rule_action): unreachable is ENETUNREACH there
RULE_ERRNO = {"blackhole": errno_mod.EINVAL, "unreachable": errno_mod.ENETUNREACH, "prohibit": errno_mod.EACCES}


@dataclass(frozen=True)
class Decision:
    """Where the kernel sends the packet: delivered here (`local`), or out of `dev` towards `hop`."""

    local: bool
    dev: str | None = None
    hop: str | None = None  # the next hop's address: the gateway, else the destination
    lookup: RouteLookup | None = None


def decide(reads: Reads, at: At) -> Decision | Finding:
    """The kernel's decision for *at*: a Decision, or the Finding that stopped it."""
    if at.iif is None:
        found = reads.route_get(at.ns, at.dst, at.src or None)
    else:
        found = reads.route_in(at.ns, at.dst, at.src, at.iif)
    if found.errno is None and found.type == "local":
        return Decision(True, lookup=found)
    unlooked = local_rule_missing(reads, at.ns, at.dst, at.what)
    if unlooked is not None:
        return unlooked
    if found.errno is None and found.type == "unicast":
        if at.iif is not None and at.v == "ipv6" and reads.forwarding6(at.ns, at.iif)[0]:
            return _not_forwarding(reads, at, found)  # IPv6's lookup on the way in does not refuse: ip6_forward checks it next
        return Decision(False, found.dev, found.via or at.dst, found)
    return refused(reads, at, found)


def refused(reads: Reads, at: At, found: RouteLookup) -> Finding:
    """Why the kernel's lookup for *at* gave an error (or a route that refuses)."""
    code = found.errno if found.errno is not None else ERRNO_OF.get(found.type or "", 0)
    out = reads.route_get(at.ns, at.dst) if at.iif is not None else found
    if at.iif is not None and out.errno is None and out.type in ("unicast", "local"):
        if code == errno_mod.EHOSTUNREACH:
            return _not_forwarding(reads, at, out)
        if code == errno_mod.EINVAL:  # the lookup comes first: a blackhole rule that selects the packet by its source or way in
            return _refusing_rule(reads, at, code) or _source_invalid(reads, at)
    if at.iif is not None and code == errno_mod.EHOSTUNREACH and out.errno == errno_mod.ENETUNREACH:
        code = errno_mod.ENETUNREACH  # no route, told as EHOSTUNREACH on the way in where forwarding is off
    refusing = _refusing_rule(reads, at, code) or _refusing_route(reads, at, code)
    if refusing is not None:
        return refusing
    if code == errno_mod.ENETUNREACH:
        return _no_main_rule(reads, at) or _no_route(reads, at)
    return Finding(Cause.UNKNOWN, Where(at.ns, at.iif), f"{at.ns}'s route lookup for the {at.what} to {at.dst} failed with {errno_mod.errorcode.get(code, code)}, and no route or rule read there explains it")


def local_rule_missing(reads: Reads, ns: str, dst: str, what: str) -> Finding | None:
    """*dst* is an address of *ns* (on one of its links, or a loopback one), yet its kernel does not
    take it as local: no policy rule looks up the local table (the kernel's rule 0 is gone)."""
    family = 10 if ":" in dst else 2
    if any(r.action == "lookup" and r.table == "local" for r in reads.rules(ns, family)) or reads.is_local(ns, dst):
        return None
    if not (ipaddress.ip_address(dst).is_loopback or any(a.ip == dst for a in reads.addresses(ns))):
        return None
    return Finding(
        Cause.NO_ANSWER,
        Where(ns),
        f"{ns}'s kernel does not take {dst}, an address of {ns}, as local: no policy rule there looks up the local table (the kernel's rule 0 is gone), so the {what} is routed on as if to another host",
        claims=(Claim(ns, "rule 0", "absent (no rule looks up table local)", blames=True),),
        fixes=(Remedy(ns, f"{_ip_rule(dst)} add pref 0 lookup local", f"{_ip_rule(dst)} del pref 0 lookup local"),),
    )


def _not_forwarding(reads: Reads, at: At, out: RouteLookup) -> Finding:
    """The input path refuses what the output path would route. IPv4: IN_DEV_FORWARD is off for
    iif (ip_forward, else the device's own switch). IPv6: net.ipv6.conf.all.forwarding is off
    (and, from Linux 6.17, iif's force_forwarding): the device's own `forwarding` does not count."""
    if at.v == "ipv6":
        key = "net.ipv6.conf.all.forwarding"
    else:
        key = "net.ipv4.ip_forward" if reads.sysctl(at.ns, "net.ipv4.ip_forward") == "0" else f"net.ipv4.conf.{at.iif}.forwarding"
    claims = (
        sysctl(reads, at.ns, key, blames=True, dev=at.iif),
        Claim(at.ns, f"route {at.dst}", f"via {out.dev}" if out.type == "unicast" else str(out.type), dev=out.dev),
    )
    return Finding(
        Cause.FORWARDING_OFF,
        Where(at.ns, at.iif),
        f"the {at.what} reached {at.ns} on {at.iif} and was not forwarded: {key}={reads.sysctl(at.ns, key)} there, "
        f"though {at.ns} has a route to {at.dst} (dev {out.dev}); {cmd(at.ns, 'sysctl -w', key + '=1')}",
        claims=claims,
        fixes=(set_sysctl(reads, at.ns, key, 1, at.iif),),
    )


def _source_invalid(reads: Reads, at: At) -> Finding:
    """EINVAL on the way in for a destination the namespace can route: the source failed
    validation (a martian, a local address without accept_local, the reverse-path filter)."""
    iif = at.iif or ""
    src = ipaddress.ip_address(at.src)
    if src.is_loopback or src.is_multicast or src.is_unspecified:
        return Finding(Cause.UNKNOWN, Where(at.ns, iif), f"the {at.what} came into {at.ns} on {iif} from {at.src}, a source the kernel never accepts from outside (a martian)")
    if reads.is_local(at.ns, at.src):
        value, keys = combined(reads, at.ns, iif, "accept_local", "or", at.v)
        key = f"net.{at.v}.conf.{iif}.accept_local"
        return Finding(
            Cause.UNKNOWN,
            Where(at.ns, iif),
            f"the {at.what} came into {at.ns} on {iif} from {at.src}, an address {at.ns} holds itself, and accept_local is off there: the kernel drops it as a martian",
            claims=(Claim(at.ns, f"address {at.src}", "local"), sysctl(reads, at.ns, key, blames=True, dev=iif)),
            fixes=(set_sysctl(reads, at.ns, key, 1, iif),),
        )
    mode, keys = combined(reads, at.ns, iif, "rp_filter", "max", at.v)
    if mode > 0:
        back = reads.route_get(at.ns, at.src)
        kind = {1: "strict", 2: "loose"}.get(mode, str(mode))
        why = f"there is no route back to {at.src}" if not back.found else f"the route back to {at.src} leaves by {back.dev}, not {iif}"
        route = _covering(reads, at.ns, at.src, ("unicast",))
        claims = tuple(sysctl(reads, at.ns, key, blames=True, dev=iif) for key in keys)
        if route is not None:
            claims += (Claim(at.ns, f"route {route.dst} table {route.table}", f"dev {route.dev}" + (f" via {route.via}" if route.via else ""), dev=route.dev),)
        return Finding(
            Cause.RP_FILTER,
            Where(at.ns, iif),
            f"the {at.what} came into {at.ns} on {iif} and the reverse-path filter dropped it ({' and '.join(f'{k}={mode}' for k in keys)}, {kind}): {why}",
            claims=claims,
            fixes=tuple(set_sysctl(reads, at.ns, key, 0, iif) for key in keys) + tuple(set_sysctl(reads, at.ns, key, 2, iif) for key in keys if mode == 1),
        )
    return Finding(Cause.UNKNOWN, Where(at.ns, iif), f"{at.ns}'s kernel refused the {at.what} from {at.src} coming in on {iif} (EINVAL), and neither rp_filter nor accept_local is set there")


def _refusing_route(reads: Reads, at: At, code: int) -> Finding | None:
    """The blackhole, unreachable or prohibit route whose errno the kernel gave."""
    kinds = tuple(kind for kind, e in ERRNO_OF.items() if e == code)
    route = _covering(reads, at.ns, at.dst, REFUSING)
    if route is None or route.type not in kinds:
        return None
    where = Where(at.ns, at.iif)
    claim = Claim(at.ns, f"route {route_name(route.dst)} table {route.table}", route.type, blames=True)
    table = "" if route.table == "main" else f" table {route.table}"
    metric = f" metric {route.metric}" if route.metric else ""
    verb = {"blackhole": "silently discards", "unreachable": "refuses (host unreachable)", "prohibit": "refuses (administratively prohibited)", "throw": "sends on to the next rule, where no table has a route for"}[route.type]
    refusing = f"{route.type} {route.dst}{table}{metric}"
    # where it took the place of the lab's own route to there (`ip route replace`), that route is put back:
    # deleted, it would leave no route at all (./run soundness --generated 120 --seed 39, case 97)
    version = ipaddress.ip_address(at.dst).version
    replaced = next((r for r in reads.view.topology.routes if route.table == "main" and r.ns == at.ns and r.network.version == version and route_name(r.dst) == route_name(route.dst)), None)
    fix = Remedy(at.ns, f"ip route replace {route_words(replaced)}", f"ip route replace {refusing}") if replaced else Remedy(at.ns, f"ip route del {refusing}", f"ip route add {refusing}")
    return Finding(
        Cause.NO_ROUTE_AT_SENDER if at.iif is None else Cause.ICMP_UNREACHABLE if route.type != "blackhole" else Cause.NO_ANSWER,
        where,
        f"{at.ns} has {'an' if route.type[0] in 'aeiou' else 'a'} {route.type} route {route.dst}{table} for {at.dst}, which {verb} the {at.what}",
        claims=(claim,),
        fixes=(fix,),
    )


def _refusing_rule(reads: Reads, at: At, code: int) -> Finding | None:
    """A policy rule whose action refuses (`ip rule add ... prohibit`) and matches the packet."""
    kinds = tuple(kind for kind, e in RULE_ERRNO.items() if e == code)
    for rule in reads.rules(at.ns, at.family):
        if rule.action in ("lookup", "goto", "nop"):
            if rule.action == "lookup" and _selects(rule, at) and _table_answers(reads, at, rule.table):
                return None  # an earlier rule's table holds a route for it: the route decides
            continue
        if rule.action in kinds and _selects(rule, at):
            return Finding(
                Cause.NO_ROUTE_AT_SENDER if at.iif is None else Cause.ICMP_UNREACHABLE,
                Where(at.ns, at.iif),
                f"{at.ns}'s policy rule {rule.priority} ({rule}) {rule.action}s the {at.what} to {at.dst}",
                claims=(Claim(at.ns, f"rule {rule.priority}", str(rule), blames=True),),
                fixes=(Remedy(at.ns, f"{_ip_rule(at.dst)} del pref {rule.priority}", f"{_ip_rule(at.dst)} add {rule} pref {rule.priority}"),),
            )
    return None


def _selects(rule: RuleState, at: At) -> bool:
    """Does *rule*'s selector take this packet? Only selectors read from the rule: from, to,
    iif, oif; a rule with any other selector (fwmark, tos, `not`, ipproto, ports, ...) is
    not claimed to match."""
    if rule.fwmark is not None or rule.tos or not rule.plain:
        return False
    if rule.src and not within(at.src, rule.src):
        return False
    if rule.dst and not within(at.dst, rule.dst):
        return False
    if rule.iif and rule.iif != (at.iif or "lo"):
        return False
    return not rule.oif


def _table_answers(reads: Reads, at: At, table: str | None) -> bool:
    return any(r.table == table and r.covers(at.dst) for r in reads.all_routes(at.ns, at.family))


def _no_main_rule(reads: Reads, at: At) -> Finding | None:
    """No policy rule looks up the main table (the kernel's rule 32766 is gone), where it holds a route."""
    rules = reads.rules(at.ns, at.family)
    if any(r.action == "lookup" and r.table == "main" for r in rules):
        return None
    if not any(r.table == "main" and r.covers(at.dst) for r in reads.all_routes(at.ns, at.family)):
        return None
    return Finding(
        Cause.NO_ROUTE_AT_SENDER if at.iif is None else Cause.NO_ANSWER,
        Where(at.ns, at.iif),
        f"{at.ns}'s main table has a route to {at.dst}, but no policy rule looks the main table up (the kernel's rule 32766 is gone)",
        claims=(Claim(at.ns, "rule 32766", "absent (no rule looks up table main)", blames=True),),
        fixes=(Remedy(at.ns, f"{_ip_rule(at.dst)} add pref 32766 lookup main", f"{_ip_rule(at.dst)} del pref 32766 lookup main"),),
    )


def _no_route(reads: Reads, at: At) -> Finding:
    tables = sorted({r.table for r in reads.all_routes(at.ns, at.family) if r.table != "local"})
    down = [link.name for link in reads.links(at.ns) if not link.up and any(within(at.dst, a.cidr, network=True) for a in reads.addresses(at.ns) if a.dev == link.name)]
    if down:
        dev = down[0]
        return Finding(
            Cause.LINK_DOWN,
            Where(at.ns, dev),
            f"{at.ns} has no route to {at.dst} because {dev} is down (its connected route went with it); {cmd(at.ns, 'ip link set', dev, 'up')}",
            claims=(Claim(at.ns, f"link {dev}", "down", dev=dev, blames=True),),
            fixes=(link_up(reads, at.ns, dev),),
        )
    came = f"the {at.what} came into {at.ns} on {at.iif}, and " if at.iif else ""
    text = f"{came}{at.ns} has no route to {at.dst}: no route in table{'s' if len(tables) > 1 else ''} {', '.join(tables) or 'main'} covers it"
    lost = lost_route(reads, at.ns, at.dst)
    if lost is not None:
        why = why_lost(reads, at.ns, lost)
        cause = Cause.LINK_DOWN if why.down else Cause.NO_ROUTE_AT_SENDER if at.iif is None else Cause.NO_ANSWER
        return Finding(cause, Where(at.ns, why.dev or at.iif), f"{text}: {why.words}", claims=why.claims, fixes=why.fixes)
    return Finding(
        Cause.NO_ROUTE_AT_SENDER if at.iif is None else Cause.NO_ANSWER,
        Where(at.ns, at.iif),
        text,
        claims=(Claim(at.ns, f"route {at.dst} table main", "no route", blames=True),),
    )


@dataclass(frozen=True)
class Lost:
    """Why a route the lab gives is not in the kernel's table, as read."""

    words: str
    claims: tuple[Claim, ...]
    fixes: tuple[Remedy, ...]
    dev: str | None  # the device to blame, where one is
    down: bool  # that device is down


def why_lost(reads: Reads, ns: str, lost: Route) -> Lost:
    """The lab's route *lost* (lost_route) is not in *ns*'s main table: the link under it is down
    (the kernel drops a device's routes when it goes down), the address it went with is gone
    (and why, as address.absent reads it), or nothing read says why: the route is absent."""
    words = route_words(lost)
    gone = _down_under(reads, ns, lost)
    if gone is not None:
        return Lost(
            f"the lab's route {words} goes by {gone}, which is down (its routes went with it); {cmd(ns, 'ip link set', gone, 'up')}",
            (Claim(ns, f"link {gone}", "down", dev=gone, blames=True),),
            (link_up(reads, ns, gone),),
            gone,
            True,
        )
    missing = _address_under(reads, ns, lost)
    if missing is not None:
        why = address.absent(reads, ns, missing)
        return Lost(
            f"the lab's route {words} went with the address {missing.cidr} on {missing.dev}, which {ns} no longer has" + (f": {why.words}" if why.words else ""),
            why.claims,
            why.fixes,
            missing.dev,
            False,
        )
    return Lost(
        f"the lab's route {words} is not in its table",
        (Claim(ns, f"route {route_name(lost.dst)} table main", "absent", dev=lost.dev, blames=True),),
        (Remedy(ns, f"ip route add {words}", f"ip route del {words}", lost.dev),),
        None,
        False,
    )


def lost_route(reads: Reads, ns: str, address: str) -> Route | None:
    """The lab's route in *ns* (as the model has it: its own, or one connected to an address it
    gives) that covers *address* and that the kernel's main table lacks; None if none."""
    have = {route_name(r.dst) for r in reads.routes(ns, 6 if ":" in address else 4)}
    topo = reads.view.topology
    wanted = [r for r in topo.routes if r.ns == ns and within(address, str(r.network))]  # the model's "default" is IPv4's, as ip's is
    ip = ipaddress.ip_address(address)
    wanted += [Route(ns, str(a.interface.network), dev=a.dev) for a in topo.addresses if a.ns == ns and ip in a.interface.network]
    lost = [r for r in wanted if route_name(r.dst) not in have]
    return max(lost, key=lambda r: _prefixlen(r.dst)) if lost else None


def _down_under(reads: Reads, ns: str, route: Route) -> str | None:
    """The link that is down under the lab's *route*: its device, or the one holding its gateway's subnet."""
    for link in reads.links(ns):
        if link.up:
            continue
        if route.dev == link.name or (route.via and any(within(route.via, a.cidr, network=True) for a in reads.view.topology.addresses if a.ns == ns and a.dev == link.name)):
            return link.name
    return None


def _address_under(reads: Reads, ns: str, route: Route) -> Address | None:
    """The lab's address that *route* went with, where the kernel no longer holds it: one whose
    subnet holds the route's gateway, or one on the route's device (a connected route, or one
    that took it as its source)."""
    held = {(a.ip, a.dev) for a in reads.addresses(ns)}  # the same address can be on several devices (kindnet's gateway)
    for a in reads.view.topology.addresses:
        if a.ns != ns or (str(a.interface.ip), a.dev) in held:
            continue
        if (route.via and within(route.via, a.cidr, network=True)) or (route.dev and route.dev == a.dev):
            return a
    return None


def _ip_rule(dst: str) -> str:
    """`ip rule` for the family of *dst* (without `-6` it reads and writes IPv4's rules)."""
    return "ip -6 rule" if ":" in dst else "ip rule"


def _covering(reads: Reads, ns: str, address: str, types: tuple[str, ...]) -> RouteState | None:
    """The most specific route of *types* in any table that covers *address* (lowest metric first)."""
    matches = [r for r in reads.all_routes(ns, 10 if ":" in address else 2) if r.type in types and r.covers(address)]
    if not matches:
        return None
    return max(matches, key=lambda r: (_prefixlen(r.dst), -r.metric))


def _prefixlen(dst: str) -> int:
    return 0 if dst == "default" else ipaddress.ip_network(dst, strict=False).prefixlen


def within(address: str, prefix: str, *, network: bool = False) -> bool:
    """Is *address* in *prefix* (with *network*: in the network of the interface address *prefix*)?"""
    try:
        net = ipaddress.ip_interface(prefix).network if network else ipaddress.ip_network(prefix, strict=False)
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False
