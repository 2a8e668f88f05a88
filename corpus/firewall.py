"""Firewall changes for the fault generator: an nftables chain in each family and hook
(ip, ip6, inet, arp, bridge, netdev) with a policy drop or one rule, or an iptables,
ip6tables, arptables or ebtables rule or policy (all of them nft underneath: `iptables -A
INPUT` is `nft ip filter INPUT`, and that is how a claim names it). An IPv6 case
draws the ip6 family, ICMPv6 (NDP's included) and ip6tables instead of ip, ICMP and
iptables, and no ARP."""

from __future__ import annotations

import random
from typing import Optional

from corpus.knobs import Change, Where, on_path

TABLE = "gen"
HOOKS = {
    "ip": ("prerouting", "input", "forward", "output", "postrouting"),
    "ip6": ("prerouting", "input", "forward", "output", "postrouting"),
    "inet": ("prerouting", "input", "forward", "output", "postrouting"),
    "arp": ("input", "output"),
    "bridge": ("prerouting", "input", "forward", "output", "postrouting"),
    "netdev": ("ingress", "egress"),
}
ON_THE_WAY = {"end": {"input", "output", "INPUT", "OUTPUT"}, "middle": {"forward", "FORWARD"}}  # besides prerouting, postrouting, ingress, egress


def hook(w: Where, ns: str, choices: tuple[str, ...], rng: random.Random) -> str:
    """Mostly a hook (or chain) the probe's packets pass in *ns*; sometimes any."""
    role = "middle" if ns in w.middle() else "end"
    passed = [h for h in choices if h in ON_THE_WAY[role] or h.lower() in ("prerouting", "postrouting", "ingress", "egress")]
    return rng.choice(passed if passed and rng.random() < 0.8 else choices)


REJECTS = {"input", "forward", "output"}  # where ip, ip6 and inet take `reject`


def matches(w: Where, family: str) -> list[str]:
    """What a rule of *family* can match of the probe's packets (or of ARP; for IPv6, of NDP too)."""
    if family == "arp":
        return ["arp operation request", "arp operation reply"]
    ip = "ip6" if w.v6 else "ip"
    out = [f"{ip} daddr {w.dst}", f"{ip} saddr {w.dst}", f"{ip} daddr {w.src_address()}", f"{ip} saddr {w.src_address()}"]
    if w.v6:  # NDP is ICMPv6: a rule on ICMPv6 may stop the neighbour discovery the probe needs
        out += [f"tcp dport {w.port}", f"tcp sport {w.port}"] if w.port else ["icmpv6 type echo-request", "icmpv6 type echo-reply"]
        return out + ["meta l4proto ipv6-icmp", "icmpv6 type nd-neighbor-solicit", "icmpv6 type nd-neighbor-advert"]
    out += [f"tcp dport {w.port}", f"tcp sport {w.port}"] if w.port else ["icmp type echo-request", "icmp type echo-reply", "meta l4proto icmp"]
    if family in ("bridge", "netdev"):
        out += ["ether type arp"] if family == "bridge" else ["meta protocol arp"]
    return out


def nft(w: Where, rng: random.Random) -> Optional[Change]:
    ns = on_path(w, rng)
    families = (["ip6", "inet", "inet", "netdev"] if w.v6 else ["ip", "inet", "inet", "arp", "netdev"]) + (["bridge", "bridge"] if w.bridge_ports(ns) else [])
    family = rng.choice(families)
    chain = hook(w, ns, HOOKS[family], rng)
    device = ""
    if family == "netdev":
        devs = [d for d in w.devices(ns) if d != "lo"]
        if not devs:
            return None
        device = f"device {rng.choice(devs)} "
    add_chain = ("nft", "add", "chain", family, TABLE, chain, f"{{ type filter hook {chain} {device}priority 0 ; policy {{}} ; }}")
    commands: list[tuple[str, ...]] = [("nft", "add", "table", family, TABLE)]
    if rng.random() < 0.3:
        commands.append(add_chain[:-1] + (add_chain[-1].replace("{}", "drop"),))
        shows = r"\bpolicy drop;"
    else:
        match = rng.choice(matches(w, family))
        verdict = rng.choice(["drop", "reject"]) if family in ("ip", "ip6", "inet") and chain in REJECTS else "drop"
        commands.append(add_chain[:-1] + (add_chain[-1].replace("{}", "accept"),))
        commands.append(("nft", "add", "rule", family, TABLE, chain, *match.split(), verdict))
        shows = rf"^\s*{match} {verdict}\b"
    return Change("nft", ns, tuple(commands), (f"nft {family} {TABLE} {chain}",), ("nft", "list", "chain", family, TABLE, chain), shows)


IPTABLES_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}


def iptables(w: Where, rng: random.Random) -> Optional[Change]:
    """`iptables -A CHAIN ... -j DROP|REJECT` or `-P CHAIN DROP` (ip6tables' for IPv6); sometimes arptables'
    (IPv4) or ebtables' (bridges)."""
    ns = on_path(w, rng)
    tools = (["ip6tables"] * 5 if w.v6 else ["iptables"] * 4 + ["arptables"]) + (["ebtables"] if w.bridge_ports(ns) else [])
    tool = rng.choice(tools)
    if tool == "arptables":
        family, table, chain = "arp", "filter", rng.choice(("INPUT", "OUTPUT"))
        rule: tuple[str, ...] = ("-A", chain, "-j", "DROP")
    elif tool == "ebtables":
        family, table, chain = "bridge", "filter", rng.choice(("INPUT", "FORWARD", "OUTPUT"))
        protos = ["IPv6"] if w.v6 else ["IPv4", "ARP"]
        rule = rng.choice([*(("-A", chain, "-p", p, "-j", "DROP") for p in protos), ("-P", chain, "DROP")])
    else:
        family, table = "ip6" if w.v6 else "ip", rng.choice(["filter", "filter", "raw", "mangle"])
        chain = hook(w, ns, IPTABLES_CHAINS[table], rng)
        if rng.random() < 0.25:
            rule = ("-P", chain, "DROP")
        else:
            icmp = ("-p", "ipv6-icmp", "--icmpv6-type") if w.v6 else ("-p", "icmp", "--icmp-type")
            proto = ("-p", "tcp", "--dport", str(w.port)) if w.port else (*icmp, rng.choice(["echo-request", "echo-reply"]))
            match = rng.choice([("-d", w.dst), ("-s", w.dst), ("-d", w.src_address()), ("-s", w.src_address()), proto])
            target = rng.choice(["DROP", "REJECT"]) if table == "filter" else "DROP"
            rule = ("-A", chain, *match, "-j", target)
    shows = r"\bpolicy drop;" if rule[0] == "-P" else rf"\b{rule[-1].lower()}\b"
    objs = (f"nft {family} {table} {chain}",)
    return Change(tool, ns, ((tool, "-t", table, *rule),), objs, ("nft", "list", "chain", family, table, chain), shows)
