"""Random labs as the `ip` commands that build them, for tests that read labs back
(test_dump.py) and copy them (test_copy.py): two or three namespaces, veth pairs
between them, bridges and their ports' flags, macvlans, vxlans, MTUs, IPv4 and
IPv6 addresses with odd prefixes and flags, routes of every type in several
tables with metrics, policy rules of every action, neighbour and proxy entries."""

from __future__ import annotations

import itertools
import re
import subprocess

from hypothesis import strategies as st

NAMES = ("a", "b", "c")


class _Segments:
    """Which devices one frame can reach (union-find): a veth joins its two ends, a bridge its ports."""

    def __init__(self) -> None:
        self._parent: dict[tuple[str, str], tuple[str, str]] = {}

    def _root(self, dev: tuple[str, str]) -> tuple[str, str]:
        while self._parent.get(dev, dev) != dev:
            dev = self._parent[dev]
        return dev

    def join(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        """Join the segments of *a* and *b*; False (and nothing joined) if they are one already."""
        ra, rb = self._root(a), self._root(b)
        if ra == rb:
            return False
        self._parent[ra] = rb
        return True


@st.composite
def ip_commands(draw, tag: int = 0) -> dict[str, list[str]]:
    spaces = tuple(f"{n}{tag}" for n in NAMES[: draw(st.integers(2, 3))])
    cmds: dict[str, list[str]] = {ns: [] for ns in spaces}
    devs: dict[str, list[str]] = {ns: [] for ns in spaces}
    wired = _Segments()
    for i in range(draw(st.integers(1, 3))):
        ns, peer_ns = draw(st.sampled_from(spaces)), draw(st.sampled_from(spaces))
        end, peer = f"v{i}", f"p{i}" if peer_ns != ns else f"q{i}"
        cmds[ns].append(f"link add {end} type veth peer name {peer}" + (f" netns {peer_ns}" if peer_ns != ns else ""))
        devs[ns].append(end)
        devs[peer_ns].append(peer)
        wired.join((ns, end), (peer_ns, peer))
    for ns in spaces:
        if draw(st.booleans()):
            cmds[ns].append(f"link add br0 type bridge stp_state {draw(st.integers(0, 1))} forward_delay {draw(st.integers(200, 3000))}")
            for port in draw(st.lists(st.sampled_from(devs[ns]), unique=True, max_size=2)) if devs[ns] else []:
                if not wired.join((ns, port), (ns, "br0")):
                    continue  # a loop (both ends of a veth on bridges already joined): a broadcast storm without STP
                cmds[ns].append(f"link set {port} master br0")
                flags = {f: draw(st.sampled_from(("on", "off"))) for f in ("hairpin", "learning", "flood", "isolated")}
                cmds[ns].append(f"link set {port} type bridge_slave " + " ".join(f"{k} {v}" for k, v in flags.items()))
            devs[ns].append("br0")
        if devs[ns] and draw(st.booleans()):
            lower = draw(st.sampled_from([d for d in devs[ns] if d != "br0"] or ["br0"]))
            cmds[ns].append(f"link add mv0 link {lower} type macvlan mode {draw(st.sampled_from(('private', 'vepa', 'bridge', 'passthru')))}")
            devs[ns].append("mv0")
        if draw(st.booleans()):
            vni, port = draw(st.integers(1, 1 << 20)), draw(st.integers(1024, 65535))
            cmds[ns].append(f"link add vx0 type vxlan id {vni} remote 10.9.{vni % 250}.1 local 10.8.0.1 dstport {port}")
            devs[ns].append("vx0")
        for dev in devs[ns]:
            if draw(st.booleans()):
                cmds[ns].append(f"link set {dev} mtu {draw(st.integers(1280, 9000))}")
            if draw(st.integers(0, 3)):
                cmds[ns].append(f"link set {dev} up")
        cmds[ns].append("link set lo up" if draw(st.booleans()) else "link set lo down")
        all_devs = devs[ns] + ["lo"]
        for _ in range(draw(st.integers(0, 4))):
            dev = draw(st.sampled_from(all_devs))
            if draw(st.booleans()):
                plen = draw(st.integers(8, 32))
                cmds[ns].append(f"addr add 10.{draw(st.integers(0, 3))}.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}/{plen} dev {dev}")
            else:
                flag = draw(st.sampled_from(("", " nodad", " noprefixroute")))
                cmds[ns].append(f"addr add 2001:db8:{draw(st.integers(0, 3))}::{draw(st.integers(1, 999))}/{draw(st.integers(48, 128))} dev {dev}{flag}")
        for _ in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from(("", "blackhole", "unreachable", "prohibit", "throw")))
            six = draw(st.booleans())
            dst = f"2001:db8:{draw(st.integers(10, 99))}::/{draw(st.integers(32, 64))}" if six else f"172.{draw(st.integers(16, 31))}.{draw(st.integers(0, 255))}.0/24"
            if draw(st.booleans()):
                dst = "default"
            table = draw(st.sampled_from(("", " table 100", " table 200", " table main")))
            metric = draw(st.sampled_from(("", " metric 10", " metric 100")))
            where = f" dev {draw(st.sampled_from(all_devs))}" if not kind else ""
            cmds[ns].append(f"{'-6 ' if six else ''}route add {kind} {dst}{where}{table}{metric}".replace("  ", " "))
        for pref in draw(st.lists(st.integers(1, 32000), unique=True, max_size=3)):
            six = draw(st.booleans())
            sel = draw(st.sampled_from(("from", "to", "fwmark", "iif", "oif", "not from")))
            what = {
                "fwmark": f"fwmark {draw(st.integers(1, 255))}/0xff",
                "iif": f"iif {draw(st.sampled_from(all_devs))}",
                "oif": f"oif {draw(st.sampled_from(all_devs))}",
            }.get(sel, f"{sel} {'2001:db8::/32' if six else '10.0.0.0/8'}")
            action = draw(st.sampled_from(("lookup 100", "lookup main", "blackhole", "unreachable", "prohibit", "nop")))
            cmds[ns].append(f"{'-6 ' if six else ''}rule add {what} {action} pref {pref}")
        for i in range(draw(st.integers(0, 3))):
            dev = draw(st.sampled_from(all_devs))
            if draw(st.booleans()):
                cmds[ns].append(f"neigh add proxy 10.7.0.{i + 1} dev {dev}")
            else:
                nud = draw(st.sampled_from(("permanent", "noarp", "stale", "reachable")))
                dst = f"10.7.1.{i + 1}" if draw(st.booleans()) else f"2001:db8:7::{i + 1}"
                cmds[ns].append(f"neigh add {dst} lladdr 02:00:00:00:07:{i:02x} dev {dev} nud {nud}")
    return cmds


def build(lines_by_ns: dict[str, list[str]]) -> None:
    """Run each namespace's lines in one `ip -force -batch` there (a refused line leaves the others standing)."""
    for name, lines in lines_by_ns.items():
        subprocess.run(["ip", "-n", name, "-force", "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=30, check=False)


def build_fresh(lab, cmds: dict[str, list[str]], runs: itertools.count) -> dict[str, list[str]]:
    """Build *cmds* as new namespaces of *lab* under fresh names (each suffixed `_N`, N from
    *runs*; a failing example is run again, under names of its own), and return them so named.
    One lab serves every example and is closed at the end: destroying namespaces is slow on
    a loaded machine, and no example waits for another's."""
    run = f"_{next(runs)}"
    cmds = {name + run: [re.sub(r" netns (\w+)", lambda m: f" netns {m.group(1)}{run}", line) for line in lines] for name, lines in cmds.items()}
    for name in cmds:
        lab.add_namespace(name)
    build(cmds)
    return cmds
