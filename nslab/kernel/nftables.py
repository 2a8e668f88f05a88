"""A namespace's nftables ruleset, read with `nft -j list ruleset`: the base chains on
each hook and what in them can stop a packet.

iptables-nft keeps its rules in the same ruleset (`table ip filter`, chain
`INPUT`, ...), so one read covers both. Reading changes nothing. A namespace
with no table at all (one nf_tables dump, `table_count`) is read without nft.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import socket
import struct
from dataclasses import dataclass
from typing import Any

from nslab.kernel import linux, process, rtnl

STOPS = ("drop", "reject")  # verdict statements that end a packet's way
XT_STOPS = ("DROP", "REJECT")  # iptables targets nft shows as `xt`


@dataclass(frozen=True)
class Stopper:
    """Something in a chain that can stop a packet: a rule (with the text `nft -a` prints) or the policy."""

    family: str
    table: str
    chain: str  # the chain that holds it (a base chain, or one a base chain jumps to)
    text: str  # 'policy drop' or the rule as `nft list` prints it
    base: str  # the base chain whose hook the packet passes
    handle: int | None = None  # the rule's handle; None for a policy

    @property
    def undo(self) -> str:
        """The nft command that takes it away."""
        if self.handle is None:
            return f"nft chain {self.family} {self.table} {self.chain} '{{ policy accept; }}'"
        return f"nft delete rule {self.family} {self.table} {self.chain} handle {self.handle}"


@dataclass(frozen=True)
class Ruleset:
    chains: tuple[dict[str, Any], ...]
    rules: tuple[dict[str, Any], ...]
    texts: dict[tuple[str, str, int], str]  # (family, table, handle) -> the rule's line

    def stoppers(self, families: tuple[str, ...], hooks: tuple[str, ...], device: str | None = None) -> list[Stopper]:
        """What can stop a packet of *families* passing *hooks*: the drop and reject rules of
        each base chain on those hooks (and of the chains it jumps to), and drop policies.
        *device*: only the base chains a packet on that device passes (a netdev chain names its own)."""
        out: list[Stopper] = []
        for base in self.chains:
            if base.get("family") not in families or base.get("hook") not in hooks:
                continue
            devices = base.get("dev", ())
            if device is not None and devices and device not in ([devices] if isinstance(devices, str) else devices):
                continue
            family, table = base["family"], base["table"]
            if base.get("policy") == "drop":
                out.append(Stopper(family, table, base["name"], "policy drop", base["name"]))
            for chain in self._reachable(family, table, base["name"]):
                for rule in self.rules:
                    if (rule.get("family"), rule.get("table"), rule.get("chain")) == (family, table, chain) and _stops(rule):
                        text = self.texts.get((family, table, rule.get("handle", -1)), "a rule that drops or rejects")
                        out.append(Stopper(family, table, chain, text, base["name"], rule.get("handle")))
        return out

    def _reachable(self, family: str, table: str, start: str) -> list[str]:
        seen, todo = [start], [start]
        while todo:
            chain = todo.pop()
            for rule in self.rules:
                if (rule.get("family"), rule.get("table"), rule.get("chain")) != (family, table, chain):
                    continue
                for target in _jumps(rule):
                    if target not in seen:
                        seen.append(target)
                        todo.append(target)
        return seen


def available() -> bool:
    return shutil.which("nft") is not None


NETLINK_NETFILTER = 12
NFT_MSG_GETTABLE = (10 << 8) | 1  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE
_NFGENMSG = struct.Struct("=BBH")  # family (AF_UNSPEC: all), version (NFNETLINK_V0), res_id


def table_count(netns_fd: int) -> int | None:
    """How many nftables tables the namespace of *netns_fd* has, of every family (iptables-nft's
    included), from one dump asked of nf_tables as nft asks it; None where nf_tables does not
    answer (no nf_tables, not permitted). With none, `nft list ruleset` prints nothing, so a
    reader need not start nft: a process of 5 ms here, for each namespace of every copy and dump."""
    try:
        with linux.in_netns(netns_fd):
            return len(rtnl.dump_once(NETLINK_NETFILTER, NFT_MSG_GETTABLE, _NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)))
    except rtnl.NetlinkError:
        return None
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.EPERM, errno.EACCES):  # no nfnetlink; not this user's to ask
            return None
        raise


def read(netns_fd: int) -> Ruleset | None:
    """The ruleset of the namespace of *netns_fd*; None where nft is missing or fails."""
    if not available():
        return None
    if table_count(netns_fd) == 0:
        return Ruleset((), (), {})
    done = process.run(netns_fd, ["nft", "-j", "list", "ruleset"], timeout=10)
    if done.returncode != 0:
        return None
    try:
        items = json.loads(done.stdout or b"{}").get("nftables", [])
    except ValueError:
        return None
    chains = tuple(item["chain"] for item in items if "chain" in item)
    rules = tuple(item["rule"] for item in items if "rule" in item)
    if not rules:  # no rule to print: the rules' texts need no second nft
        return Ruleset(chains, rules, {})
    lines = process.run(netns_fd, ["nft", "-a", "list", "ruleset"], timeout=10)
    return Ruleset(chains, rules, _texts(lines.stdout.decode(errors="replace") if lines.returncode == 0 else ""))


def _stops(rule: dict[str, Any]) -> bool:
    for expr in rule.get("expr", ()):
        if any(key in expr for key in STOPS):
            return True
        xt = expr.get("xt")
        if isinstance(xt, dict) and xt.get("type") == "target" and xt.get("name") in XT_STOPS:
            return True
    return False


def _jumps(rule: dict[str, Any]) -> list[str]:
    out = []
    for expr in rule.get("expr", ()):
        for key in ("jump", "goto"):
            if isinstance(expr.get(key), dict) and "target" in expr[key]:
                out.append(expr[key]["target"])
    return out


_TABLE = re.compile(r"^table (\S+) (\S+) \{")
_HANDLE = re.compile(r"^\s+(.*?)\s+# handle (\d+)$")


def _texts(listing: str) -> dict[tuple[str, str, int], str]:
    """(family, table, handle) -> the rule's line in `nft -a list ruleset`, counters left out."""
    out: dict[tuple[str, str, int], str] = {}
    family = table = ""
    for line in listing.splitlines():
        head = _TABLE.match(line)
        if head:
            family, table = head.groups()
            continue
        rule = _HANDLE.match(line)
        if rule and not rule.group(1).startswith(("chain ", "type ")):
            out[(family, table, int(rule.group(2)))] = re.sub(r" counter packets \d+ bytes \d+", "", rule.group(1))
    return out
