"""What nslab reads of a namespace (nslab/kernel/dump.py) equals what `ip -j` prints.

Random labs (hypothesis): two or three namespaces, veth pairs between them,
bridges and their ports' flags, macvlans, vxlans, MTUs, IPv4 and IPv6
addresses with odd prefixes and flags, routes of every type in several
tables with metrics, policy rules of every action, neighbour and proxy
entries; built with plain `ip` commands (`ip -force -batch`, so a command the
kernel refuses leaves the others standing), then read both ways and compared
field by field, devices by name.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import subprocess

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nslab.kernel import dump, features
from nslab.lab.live import Lab
from tests.ip_labs import build_fresh, ip_commands

LABS = int(os.environ.get("NSLAB_RANDOM_LABS", "40"))  # ./run tests; NSLAB_RANDOM_LABS=200 for the long check (README)
PER_EXAMPLE = 10  # labs built side by side in one sandbox lab: fewer namespaces to create and destroy
TABLES = {"main": 254, "local": 255, "default": 253}


# -- `ip -j` in nslab's words -------------------------------------------------------
IP_QUERIES = ["link show", "addr show", "route show table all", "rule show", "neigh show nud all", "neigh show proxy"]


def ip_json(ns: str) -> list[list[dict]]:
    """`ip -j -d` of each query, then `ip -6 -j rule` (a batch line takes no family option)."""
    return _batch(ns, [], IP_QUERIES) + _batch(ns, ["-6"], ["rule show"])


def _batch(ns: str, options: list[str], queries: list[str]) -> list[list[dict]]:
    argv = ["ip", "-n", ns, *options, "-j", "-d", "-batch", "-"]
    done = subprocess.run(argv, input="\n".join(queries) + "\n", capture_output=True, text=True, check=True, timeout=30)
    decoder, text, out, at = json.JSONDecoder(), done.stdout, [], 0
    while len(out) < len(queries):
        while text[at].isspace():
            at += 1
        value, at = decoder.raw_decode(text, at)
        out.append(value)
    return out


def _multicast(dst: str) -> bool:
    """The kernel adds a NOARP entry for each multicast group it reports (IGMP, MLD) a moment
    after a link comes up, so two reads may differ by them: they are left out of the comparison."""
    return ipaddress.ip_address(dst).is_multicast


def _table(value) -> int:
    return TABLES.get(str(value), 254) if not str(value).isdigit() else int(value)


def _prefix(dst: str, family: int) -> str:
    if dst == "default":
        return dst
    return dst if "/" in dst else f"{dst}/{32 if family == 4 else 128}"


def from_ip(out: list[list[dict]]) -> dict[str, set]:
    links, addrs, routes, rules4, neigh, proxy, rules6 = out
    index = {link["ifname"]: link["ifindex"] for link in links}
    got: dict[str, set] = {}
    got["links"] = {
        (
            link["ifname"],
            link["mtu"],
            link.get("address"),
            "UP" in link["flags"],
            "LOWER_UP" in link["flags"],
            link.get("master"),
            link.get("linkinfo", {}).get("info_kind"),
            link.get("link_index", index.get(link.get("link"))) if link.get("linkinfo", {}).get("info_kind") == "veth" else link.get("link"),
            link.get("link_netnsid") if link.get("linkinfo", {}).get("info_kind") == "veth" else None,
        )
        for link in links
    }
    got["options"] = set()
    for link in links:
        info = link.get("linkinfo", {})
        data, port = info.get("info_data", {}), info.get("info_slave_data", {})
        kind = info.get("info_kind")
        if kind == "bridge":
            got["options"] |= {(link["ifname"], k, data[k]) for k in ("stp_state", "forward_delay", "vlan_filtering")}
        if kind == "vxlan":
            got["options"] |= {(link["ifname"], k, data.get(k)) for k in ("id", "remote", "local", "port")}
        if kind == "macvlan":
            got["options"].add((link["ifname"], "mode", data["mode"]))
        if info.get("info_slave_kind") == "bridge":
            got["options"] |= {(link["ifname"], k, bool(port[k])) for k in ("hairpin", "learning", "flood", "isolated")}
            got["options"].add((link["ifname"], "state", port["state"]))
    got["addresses"] = {
        (
            link["ifname"],
            4 if a["family"] == "inet" else 6,
            a["local"],
            a["prefixlen"],
            "universe" if a["scope"] == "global" else a["scope"],
            tuple(sorted(f for f in ADDRESS_FLAGS if a.get(f))),
        )
        for link in addrs
        for a in link["addr_info"]
    }
    got["routes"] = {
        (
            family,
            _table(r.get("table", "main")),
            r.get("type", "unicast"),
            _prefix(r["dst"], family),
            r.get("dev"),
            r.get("gateway"),
            r.get("metric"),
            r.get("protocol", "boot"),
            {"global": "universe"}.get(r.get("scope", "global"), r.get("scope")),
            r.get("prefsrc"),
        )
        for r in routes
        for family in [6 if ":" in r["dst"] or ":" in r.get("gateway", "") or r.get("pref") else 4]
    }
    got["rules"] = {
        (
            family,
            r["priority"],
            r.get("action", "lookup" if "table" in r else "nop"),
            _table(r["table"]) if "table" in r else 0,
            f"{r['src']}/{r['srclen']}" if "srclen" in r else None,
            f"{r['dst']}/{r['dstlen']}" if "dstlen" in r else None,
            r.get("iif"),
            r.get("oif"),
            int(r["fwmark"], 16) if "fwmark" in r else None,
            "not" in r,
        )
        for family, rs in ((4, rules4), (6, rules6))
        for r in rs
    }
    got["neighbours"] = {(n["dst"], n["dev"], n.get("lladdr"), tuple(n.get("state", ())), False) for n in neigh if not _multicast(n["dst"])}
    got["neighbours"] |= {(n["dst"], n["dev"], None, (), True) for n in proxy}
    return got


ADDRESS_FLAGS = ("secondary", "nodad", "tentative", "dadfailed", "deprecated", "noprefixroute")
MACVLAN_MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}
PORT_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")


def from_nslab(state: dump.NsState) -> dict[str, set]:
    got: dict[str, set] = {}
    got["links"] = {
        (link.name, link.mtu, link.mac, link.up, "LOWER_UP" in link.flags, link.master, None if link.kind in ("loopback", "device") else link.kind, link.peer_index if link.kind == "veth" else link.lower, link.peer_netnsid)
        for link in state.links
    }
    got["options"] = set()
    for link in state.links:
        opts, port = dict(link.options), dict(link.port)
        if link.kind == "bridge":
            got["options"] |= {(link.name, k, opts[k]) for k in ("stp_state", "forward_delay", "vlan_filtering")}
        if link.kind == "vxlan":
            got["options"] |= {(link.name, k, opts.get(k)) for k in ("id", "remote", "local", "port")}
        if link.kind == "macvlan":
            got["options"].add((link.name, "mode", MACVLAN_MODES[opts["mode"]]))
        if port:
            got["options"] |= {(link.name, k, bool(port[k])) for k in ("hairpin", "learning", "flood", "isolated")}
            got["options"].add((link.name, "state", PORT_STATES[port["state"]]))
    got["addresses"] = {(a.dev, a.family, a.local, a.prefixlen, a.scope, tuple(sorted(f for f in ADDRESS_FLAGS if f in a.flags))) for a in state.addresses}
    got["routes"] = {(r.family, r.table, r.type, r.dst, r.dev, r.gateway, r.metric, r.proto, r.scope, r.prefsrc) for r in state.routes}
    got["rules"] = {(r.family, r.priority, r.action, r.table, r.src, r.dst, r.iif, r.oif, r.fwmark, r.invert) for r in state.rules}
    got["neighbours"] = {(n.dst, n.dev, n.lladdr, n.state, n.proxy) for n in state.neighbours if not _multicast(n.dst)}
    return got


def settled(handle, name: str, tries: int = 20) -> tuple[dict[str, set], dict[str, set]]:
    """Ours, read between two reads of `ip -j` that agree: the kernel changes some state by
    itself a moment after a command (DAD ends, carrier comes), and a read is a moment."""
    before = from_ip(ip_json(name))
    for _ in range(tries):
        ours = from_nslab(dump.read(handle, sysctls=False, ruleset=False))
        after = from_ip(ip_json(name))
        if after == before:
            return ours, after
        before = after
    raise AssertionError(f"`ip -j` of {name} did not settle in {tries} reads")


def test_the_reader_equals_ip_json_on_random_labs(nslab_sandbox):
    if features.missing("vxlan"):
        pytest.skip(f"this kernel lacks vxlan: {features.missing('vxlan')}")
    compared = []

    runs = itertools.count()  # a failing example is run again: each run its own names

    @settings(max_examples=LABS // PER_EXAMPLE, derandomize=True, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.tuples(*(ip_commands(tag) for tag in range(PER_EXAMPLE))))
    def one(labs):
        cmds = build_fresh(lab, {name: lines for drawn in labs for name, lines in drawn.items()}, runs)
        for name in cmds:
            mine, theirs = settled(lab.ns(name).handle, name)
            for part, want in theirs.items():
                assert mine[part] == want, f"{part} of {name}: nslab alone {sorted(mine[part] - want, key=str)}, ip alone {sorted(want - mine[part], key=str)}; after {cmds}"
        compared.extend(labs)
        for name in cmds:  # each example's own, so that no close waits for hundreds at once
            lab.delete_namespace(name)

    with Lab(timeout=1.0) as lab:
        one()
    assert len(compared) >= LABS, f"only {len(compared)} labs compared"


def test_a_sysctl_longer_than_one_read_is_read_whole(nslab_sandbox):
    """read_sysctls reads each value a kilobyte at a time (the kernel zeroes a buffer of the size
    asked): a value longer than that, here 400 reserved ports, is read on to its end."""
    ports = ",".join(str(port) for port in range(20000, 20800, 2))
    with Lab() as lab:
        lab.add_namespace("a")
        fd = lab.ns("a").handle.fd
        lab.ns("a").set_sysctl("net.ipv4.ip_local_reserved_ports", ports)
        value = next(s.value for s in dump.read_sysctls(fd) if s.key == "net.ipv4.ip_local_reserved_ports")
    assert value == ports and len(value) > 2048
