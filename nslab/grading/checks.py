"""Each check type of an exercise, run against a lab of adopted namespaces.

Structural checks read the kernel (netlink); reachability checks send nslab
probes between the student's namespaces, so a failure comes with nslab's
explanation of where the packet stopped. A check never changes the
student's setup (a TCP check listens for a moment, then closes).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nslab.grading.exercise import Check
from nslab.lab.live import Lab
from nslab.lab.observed import Snapshot
from nslab.probes.result import Cause, Result


@dataclass
class Verdict:
    passed: bool
    detail: str  # what was observed, one line
    explanation: str = ""  # nslab's sentence for a failed probe
    cause: str | None = None


def run(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    """The verdict of one check (structural ones read *snap*, probes send in *lab*);
    a namespace the student never made fails it, naming the namespace."""
    names = {ns.name for ns in lab.namespaces}
    missing = [ns for ns in check.namespaces if ns not in names]
    if missing:
        return Verdict(False, f"there is no namespace {missing[0]!r} (found: {', '.join(sorted(names)) or 'none'})")
    try:
        return RUNNERS[check.type](check, lab, snap)
    except Exception as exc:  # noqa: BLE001 - the kernel refused a read or a probe: the check fails, saying why
        return Verdict(False, f"could not check: {exc}")


def _namespace(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    return Verdict(True, f"namespace {check['ns']} exists")


def _loopback(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    lo = next(link for link in snap.links[check["ns"]] if link.name == "lo")
    return Verdict(lo.up, f"lo is {'up' if lo.up else 'DOWN'} in {check['ns']}")


def _link(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    links = {link.name: link for link in snap.links[check["ns"]]}
    link = links.get(check["dev"])
    if link is None:
        return Verdict(False, f"{check['ns']} has no interface {check['dev']} (it has {', '.join(sorted(links))})")
    problems = []
    if check.get("kind") and link.kind != check["kind"]:
        problems.append(f"it is a {link.kind}, not a {check['kind']}")
    if check.get("up") is not None and link.up != check["up"]:
        problems.append(f"it is {'up' if link.up else 'DOWN'}")
    if check.get("master") and link.master != check["master"]:
        problems.append(f"it is in bridge {link.master}" if link.master else "it is in no bridge")
    if check.get("peer"):
        peer = _peer(lab, check["ns"], check["dev"])
        if peer != check["peer"]:
            problems.append(f"its peer is {peer}" if peer else "its peer is in no namespace of this exercise")
    if problems:
        return Verdict(False, f"{check['dev']} in {check['ns']}: " + "; ".join(problems))
    return Verdict(True, f"{check['dev']} in {check['ns']} is {link.state}" + (f", in {link.master}" if link.master else ""))


def _peer(lab: Lab, ns: str, dev: str) -> str | None:
    for v in lab.topology.veths:
        if (v.ns, v.name) == (ns, dev):
            return f"{v.peer_ns}:{v.peer}"
        if (v.peer_ns, v.peer) == (ns, dev):
            return f"{v.ns}:{v.name}"
    return None


def _address(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    want = check["cidr"]
    have = [a for a in snap.addresses[check["ns"]] if a.version == 4 or ":" in want]
    if any(a.cidr == want and a.dev == check["dev"] for a in have):
        return Verdict(True, f"{want} is on {check['dev']}")
    ip = want.split("/")[0]
    same_ip = [a for a in have if a.cidr.split("/")[0] == ip]
    if same_ip:
        a = same_ip[0]
        return Verdict(False, f"{check['ns']} has {a.cidr} on {a.dev}, expected {want} on {check['dev']}")
    listing = ", ".join(f"{a.cidr} on {a.dev}" for a in have if a.dev != "lo") or "no address but lo's"
    return Verdict(False, f"{check['ns']} has no {ip}; it has {listing}")


def _route(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    routes = [r for r in snap.routes[check["ns"]] if r.type == "unicast"]
    dst = check["dst"]
    for r in routes:
        if r.dst == dst and (check.get("via") is None or r.via == check["via"]) and (check.get("dev") is None or r.dev == check["dev"]):
            return Verdict(True, f"{check['ns']}: {r}")
    table = "; ".join(str(r) for r in routes) or "empty"
    return Verdict(False, f"{check['ns']} has no such route; its table: {table}")


def _arp(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    if not any(link.name == check["dev"] for link in snap.links[check["from"]]):
        return Verdict(False, f"{check['from']} has no interface {check['dev']}")
    return _probe_verdict(check, lab.ns(check["from"]).arp(check["target"], check["dev"], timeout=check.get("timeout", 1.0)))


def _ping(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    own = {a.cidr.split("/")[0] for a in snap.addresses[check["from"]]}
    if check.get("expect", "reply") == "reply" and not ipaddress.ip_address(check["to"]).is_loopback and check["to"] in own:
        # The answer would come from the sender itself: the packet never leaves it.
        return Verdict(False, f"{check['to']} is an address of {check['from']} itself, so the ping never leaves {check['from']}")
    return _probe_verdict(check, lab.ns(check["from"]).ping(check["to"], timeout=check.get("timeout", 1.0)))


def _tcp(check: Check, lab: Lab, snap: Snapshot) -> Verdict:
    client = lab.ns(check["from"])
    result = client.chat(check["server"], check["to"], check["port"], timeout=check.get("timeout", 1.0), server_port=check.get("server_port"))
    return _probe_verdict(check, result)


def _probe_verdict(check: Check, result: Result) -> Verdict:
    cause = result.cause.name if isinstance(result.cause, Cause) else None
    if check.get("expect", "reply") == "reply":
        return Verdict(result.ok, result.summary(), "" if result.ok else result.explanation, cause)
    # An isolation check: no answer must come back (and, if the exercise says, for the stated reason).
    if result.ok:
        return Verdict(False, f"{result.summary()}: it must not")
    if check.get("cause") and cause != check["cause"]:
        want = Cause[check["cause"]].value
        return Verdict(False, f"{result.summary()}, but for another reason than the exercise asks ({want})", result.explanation, cause)
    return Verdict(True, f"{result.summary()}, as required: {result.explanation}", "", cause)


RUNNERS = {
    "namespace": _namespace,
    "loopback": _loopback,
    "link": _link,
    "address": _address,
    "route": _route,
    "arp": _arp,
    "ping": _ping,
    "tcp": _tcp,
}
