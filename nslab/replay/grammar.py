"""Where a command written inside a sentence ends: by the command's own grammar.

"To create a veth pair, run ip link add veth1 type veth peer name ceth1 a veth
pair with one end named veth1" holds `ip link add veth1 type veth peer name
ceth1`: after `peer name ceth1`, `a` is neither an argument iproute2 takes
there nor a value one expects. `ip` is read as ip(8) reads it (objects and
commands by prefix, each command's keywords and how many values each takes);
`ping`, `nc`, `curl` and `wget` by their options and operands; anything else
runs to the end of its sentence.

    end(["ip", "netns", "add", "container1", "Host", "machine"])  ->  4
"""

from __future__ import annotations

import re

OBJECTS = (
    "link", "address", "addrlabel", "route", "rule", "neighbour", "neighbor", "ntable", "tunnel", "maddress",
    "monitor", "netns", "netconf", "vrf", "xfrm", "nexthop", "mptcp", "tuntap",
)  # fmt: skip
OPTIONS_WITH_VALUE = {"-n", "-netns", "-b", "-batch", "-rc", "-l", "-loops", "-f", "-family"}
# object -> command -> (keywords taking one value, keywords taking none, positional operands)
SHOW = ({"dev", "type", "master", "vrf", "table", "label", "scope", "to", "from", "proto"}, {"up", "permanent", "dynamic"}, 1)
ARGS: dict[str, dict[str, tuple[set[str], set[str], int]]] = {
    "link": {
        "add": ({"name", "dev", "type", "mtu", "address", "netns", "master", "link", "index", "txqueuelen", "numtxqueues", "numrxqueues", "mode", "id", "remote", "local", "dstport", "ttl"}, {"up", "down", "peer", "nolearning"}, 1),
        "set": ({"dev", "name", "mtu", "address", "netns", "master", "alias", "txqueuelen", "group", "arp", "multicast", "promisc", "type", "vrf"}, {"up", "down", "nomaster"}, 1),
        "delete": ({"dev", "type", "group"}, set(), 1),
        "show": SHOW,
        "list": SHOW,
    },
    "address": {
        "add": ({"dev", "local", "peer", "broadcast", "brd", "label", "scope", "valid_lft", "preferred_lft", "metric"}, {"nodad", "noprefixroute", "home"}, 1),
        "delete": ({"dev", "local", "peer", "label", "scope"}, set(), 1),
        "flush": SHOW,
        "show": SHOW,
        "list": SHOW,
    },
    "route": {
        verb: ({"via", "dev", "src", "metric", "table", "proto", "scope", "mtu", "type", "nexthop", "from", "weight", "tos", "realm", "iif", "oif"}, {"onlink", "pervasive"}, 1)
        for verb in ("add", "delete", "change", "append", "replace", "get", "show", "list", "flush")
    },
    "neighbour": {verb: ({"dev", "lladdr", "nud", "proxy"}, {"router", "permanent"}, 1) for verb in ("add", "delete", "change", "replace", "show", "list", "flush", "get")},
    "rule": {verb: ({"from", "to", "table", "lookup", "priority", "pref", "fwmark", "iif", "oif", "tos"}, {"not"}, 0) for verb in ("add", "delete", "show", "list", "flush")},
    "netns": {
        "add": (set(), set(), 1),
        "delete": (set(), set(), 1),
        "list": (set(), set(), 0),
        "identify": (set(), set(), 1),
        "pids": (set(), set(), 1),
        "set": (set(), set(), 2),
        "attach": (set(), set(), 2),
        "monitor": (set(), set(), 0),
    },
}  # fmt: skip
ALIASES = {"neighbor": "neighbour", "del": "delete", "ls": "list", "lst": "list", "sh": "show"}
PING_VALUES = {"-c", "-W", "-w", "-i", "-I", "-s", "-t", "-M", "-Q", "-l", "-p", "-m"}
NC_VALUES = {"-p", "-s", "-w", "-i", "-q", "-X", "-x", "-T", "-I", "-O", "-V"}
CURL_VALUES = {"-o", "-w", "-H", "-d", "-X", "-m", "--max-time", "--connect-timeout", "--interface", "-O", "-T"}
NAME = re.compile(r"^[\w.@:$/{}-]+$")
SENTENCE_END = re.compile(r"[.,;!?)]$")


def object_of(word: str) -> str | None:
    """The ip(8) object *word* names (ip takes any prefix: `addr`, `a`, `r`), else None."""
    word = ALIASES.get(word, word)
    return next((o for o in OBJECTS if o.startswith(word)), None) if word else None


def _verb(obj: str, word: str) -> str | None:
    word = ALIASES.get(word, word)
    return next((v for v in ARGS.get(obj, {}) if v.startswith(word)), None) if word else None


def whole(text: str) -> bool:
    """Does *text* (a code span) read as one whole command, not `ip tools`?"""
    words = text.split()
    return bool(words) and end(words) == len(words)


def end(argv: list[str]) -> int:
    """How many words of *argv* (a command followed by prose) the command takes."""
    if not argv:
        return 0
    tool = argv[0]
    if tool == "sudo":
        rest = 1 + sum(1 for _ in _while(argv[1:], lambda w: w.startswith("-")))
        return rest + end(argv[rest:]) if rest < len(argv) else 0
    if tool == "ip":
        return _ip(argv)
    if tool == "ping":
        return _operands(argv, PING_VALUES, 1)
    if tool in ("nc", "ncat", "netcat"):
        listen = any(re.match(r"^-\w*l", w) for w in argv[1:3])
        return _operands(argv, NC_VALUES, 0 if listen else 2)
    if tool in ("curl", "wget"):
        return _operands(argv, CURL_VALUES, 1)
    return _sentence(argv)


def _while(words: list[str], test) -> list[str]:
    out = []
    for w in words:
        if not test(w):
            break
        out.append(w)
    return out


def _ip(argv: list[str]) -> int:
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in OPTIONS_WITH_VALUE else 1
    obj = object_of(argv[i]) if i < len(argv) else None
    if obj is None:
        return 0  # `ip tools`: not a command
    if obj == "netns" and argv[i + 1 : i + 2] == ["exec"] and i + 3 < len(argv) and NAME.match(argv[i + 2]) and NAME.match(argv[i + 3]):
        inner = end(argv[i + 3 :])  # `ip netns exec NS CMD`: CMD by its own grammar
        return i + 3 + inner if inner else i + 3
    i += 1
    verb = _verb(obj, argv[i]) if i < len(argv) else None
    if verb is None:
        return i  # `ip link`, `ip route`: the object alone shows it
    return _arguments(argv, i + 1, *ARGS[obj][verb], obj=obj, verb=verb)


def _arguments(argv: list[str], i: int, valued: set[str], flags: set[str], positional: int, *, obj: str, verb: str) -> int:
    seen = 0
    while i < len(argv):
        w = argv[i]
        if SENTENCE_END.search(w) and NAME.match(w[:-1]):
            return i  # the word ends its sentence; the caller keeps it without the mark
        if w in valued and i + 1 < len(argv):
            i += 2
            if obj == "link" and w == "type" and argv[i - 1] == "veth" and i < len(argv) and argv[i] == "peer":
                i += 1  # `type veth peer name NAME`
        elif w in flags:
            i += 1
        elif seen < positional and NAME.match(w) and _operand_fits(obj, verb, w):
            seen += 1
            i += 1
        else:
            break
    return i


def _operand_fits(obj: str, verb: str, word: str) -> bool:
    """An operand that looks like what the command takes there (a prefix for routes, a name for links)."""
    if obj in ("address", "route") and verb not in ("show", "list", "flush"):
        return word == "default" or bool(re.match(r"^[\d.:a-fA-F]+(/\d+)?$", word)) and any(c.isdigit() for c in word)
    return not word[:1].isupper()  # a capital starts the next sentence ("Host machine ...")


def _operands(argv: list[str], valued: set[str], operands: int) -> int:
    i, seen = 1, 0
    while i < len(argv):
        w = argv[i]
        if w.startswith("-") and len(w) > 1:
            i += 2 if w in valued else 1
        elif seen < operands and NAME.match(w.rstrip(".,;")):
            seen += 1
            i += 1
            if w != w.rstrip(".,;"):
                return i
        else:
            break
    return i


def _sentence(argv: list[str]) -> int:
    for i, w in enumerate(argv):
        if SENTENCE_END.search(w):
            return i + 1
    return len(argv)
