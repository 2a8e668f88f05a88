"""rtnetlink message bodies and their attributes, declared as data and read by name.

Each record has its fixed body, declared in nslab/kernel/rtnl.py the way pyroute2
lists it (`fields = (('family', 'B'), ('prefixlen', 'B'), ...)`), and its attributes as
number -> (name, type), numbers from the kernel's uapi headers
(linux/if_link.h, if_addr.h, rtnetlink.h, neighbour.h, fib_rules.h,
if_bridge.h). A field is read by name, never by position:

    rec = records.read(records.LINK, message)
    rec.body["index"], rec.attrs["ifname"], rec.attrs["linkinfo"]["kind"]
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from nslab.kernel import rtnl
from nslab.kernel.rtnl import Message, parse_attrs

# An attribute table: number -> (name, type); a type is a decoder's name, or a nested table.
Table = Mapping[int, tuple[str, Any]]


def _ip(value: bytes) -> str | None:
    return socket.inet_ntop(socket.AF_INET if len(value) == 4 else socket.AF_INET6, value) if len(value) in (4, 16) else None


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "uint8": lambda v: v[0] if v else None,
    "uint16": lambda v: struct.unpack_from("=H", v)[0] if len(v) >= 2 else None,
    "be16": lambda v: struct.unpack_from("!H", v)[0] if len(v) >= 2 else None,
    "uint32": lambda v: struct.unpack_from("=I", v)[0] if len(v) >= 4 else None,
    "int32": lambda v: struct.unpack_from("=i", v)[0] if len(v) >= 4 else None,
    "asciiz": lambda v: v.split(b"\0", 1)[0].decode(errors="replace"),
    "l2addr": lambda v: ":".join(f"{b:02x}" for b in v),
    "ipaddr": _ip,
    "flag": lambda v: True,
    "hex": bytes.hex,
    "raw": bytes,
}


def attributes(data: bytes, table: Table) -> dict[str, Any]:
    """The attributes of *data* that *table* names, decoded; the others are left out."""
    raw = parse_attrs(data, 0, len(data))
    return named(raw, table)


def named(raw: Mapping[int, bytes], table: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in raw.items():
        if number not in table:
            continue
        name, kind = table[number]
        out[name] = attributes(value, kind) if isinstance(kind, Mapping) else DECODERS[kind](value)
    return out


@dataclass(frozen=True)
class Record:
    """One message read by name: its body's fields and its named attributes."""

    body: dict[str, int]
    attrs: dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """A message body and its attribute table."""

    body: rtnl.Body  # declared in nslab/kernel/rtnl.py, which reads every message's body by it
    table: Table


def read(kind: Kind, m: Message) -> Record:
    if tuple(m.body) != kind.body.names:
        raise ValueError(f"a message with body {tuple(m.body)} read as {kind.body.name} {kind.body.names}")
    return Record(m.body, named(m.attrs, kind.table))


# -- links (linux/if_link.h) ------------------------------------------------------------
BRIDGE_DATA: Table = {
    1: ("forward_delay", "uint32"), 2: ("hello_time", "uint32"), 3: ("max_age", "uint32"),
    4: ("ageing_time", "uint32"), 5: ("stp_state", "uint32"), 6: ("priority", "uint16"),
    7: ("vlan_filtering", "uint8"), 8: ("vlan_protocol", "be16"), 9: ("group_fwd_mask", "uint16"),
    20: ("group_addr", "l2addr"), 22: ("mcast_router", "uint8"), 23: ("mcast_snooping", "uint8"),
    25: ("mcast_querier", "uint8"), 36: ("nf_call_iptables", "uint8"), 37: ("nf_call_ip6tables", "uint8"),
    38: ("nf_call_arptables", "uint8"), 39: ("vlan_default_pvid", "uint16"),
}  # fmt: skip
BRIDGE_PORT_DATA: Table = {
    1: ("state", "uint8"), 2: ("priority", "uint16"), 3: ("cost", "uint32"), 4: ("hairpin", "uint8"),
    5: ("guard", "uint8"), 6: ("root_block", "uint8"), 7: ("fastleave", "uint8"), 8: ("learning", "uint8"),
    9: ("flood", "uint8"), 10: ("proxy_arp", "uint8"), 12: ("proxy_arp_wifi", "uint8"),
    25: ("mcast_router", "uint8"), 27: ("mcast_flood", "uint8"), 28: ("mcast_to_unicast", "uint8"),
    29: ("vlan_tunnel", "uint8"), 30: ("bcast_flood", "uint8"), 31: ("group_fwd_mask", "uint16"),
    32: ("neigh_suppress", "uint8"), 33: ("isolated", "uint8"), 39: ("locked", "uint8"),
}  # fmt: skip
MACVLAN_DATA: Table = {1: ("mode", "uint32"), 2: ("flags", "uint16")}
VXLAN_DATA: Table = {
    1: ("id", "uint32"), 2: ("remote", "ipaddr"), 3: ("link", "uint32"), 4: ("local", "ipaddr"),
    5: ("ttl", "uint8"), 6: ("tos", "uint8"), 7: ("learning", "uint8"), 8: ("ageing", "uint32"),
    15: ("port", "be16"), 16: ("remote6", "ipaddr"), 17: ("local6", "ipaddr"),
}  # fmt: skip
INFO_DATA: dict[str, Table] = {"bridge": BRIDGE_DATA, "macvlan": MACVLAN_DATA, "macvtap": MACVLAN_DATA, "vxlan": VXLAN_DATA}
SLAVE_DATA: dict[str, Table] = {"bridge": BRIDGE_PORT_DATA}
LINKINFO: Table = {1: ("kind", "asciiz"), 2: ("data", "raw"), 4: ("slave_kind", "asciiz"), 5: ("slave_data", "raw")}
BRIDGE_VLAN_INFO = 2  # IFLA_BRIDGE_VLAN_INFO in IFLA_AF_SPEC: struct bridge_vlan_info {u16 flags; u16 vid}
BRIDGE_VLAN_FLAGS = (("master", 0x1), ("pvid", 0x2), ("untagged", 0x4))

LINK = Kind(
    rtnl.IFINFOMSG,
    {
        1: ("address", "l2addr"), 2: ("broadcast", "l2addr"), 3: ("ifname", "asciiz"), 4: ("mtu", "uint32"),
        5: ("link", "uint32"), 10: ("master", "uint32"), 13: ("txqlen", "uint32"), 16: ("operstate", "uint8"),
        18: ("linkinfo", LINKINFO), 26: ("af_spec", "raw"), 37: ("link_netnsid", "int32"),
    },
)  # fmt: skip
IFF_FLAGS = (
    ("UP", 0x1), ("BROADCAST", 0x2), ("LOOPBACK", 0x8), ("POINTOPOINT", 0x10), ("NOARP", 0x80),
    ("PROMISC", 0x100), ("ALLMULTI", 0x200), ("MULTICAST", 0x1000), ("LOWER_UP", 0x10000),
)  # fmt: skip


def link_options(linkinfo: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kind options, port options) of a link's IFLA_LINKINFO: a bridge's, a bridge port's, a vxlan's, ..."""
    data = attributes(linkinfo["data"], INFO_DATA[linkinfo["kind"]]) if "data" in linkinfo and linkinfo.get("kind") in INFO_DATA else {}
    port = attributes(linkinfo["slave_data"], SLAVE_DATA[linkinfo["slave_kind"]]) if "slave_data" in linkinfo and linkinfo.get("slave_kind") in SLAVE_DATA else {}
    return data, port


def bridge_vlans(af_spec: bytes) -> list[tuple[int, tuple[str, ...]]]:
    """(vid, flags) of each VLAN of a bridge port, from an AF_BRIDGE link dump's IFLA_AF_SPEC."""
    out = []
    offset = 0
    while offset + 4 <= len(af_spec):
        size, number = struct.unpack_from("=HH", af_spec, offset)
        if size < 4:
            break
        if number & 0x3FFF == BRIDGE_VLAN_INFO and size >= 8:
            flags, vid = struct.unpack_from("=HH", af_spec, offset + 4)
            out.append((vid, tuple(name for name, bit in BRIDGE_VLAN_FLAGS if flags & bit)))
        offset += (size + 3) & ~3
    return out


# -- addresses (linux/if_addr.h) ------------------------------------------------------
ADDRESS = Kind(
    rtnl.IFADDRMSG,
    {1: ("address", "ipaddr"), 2: ("local", "ipaddr"), 3: ("label", "asciiz"), 4: ("broadcast", "ipaddr"), 8: ("flags", "uint32")},
)
IFA_FLAGS = (
    ("secondary", 0x1), ("nodad", 0x2), ("optimistic", 0x4), ("dadfailed", 0x8), ("home", 0x10),
    ("deprecated", 0x20), ("tentative", 0x40), ("permanent", 0x80), ("mngtmpaddr", 0x100),
    ("noprefixroute", 0x200), ("autojoin", 0x400), ("stable-privacy", 0x800),
)  # fmt: skip

# -- routes (linux/rtnetlink.h) -------------------------------------------------------
ROUTE = Kind(
    rtnl.RTMSG,
    {
        1: ("dst", "ipaddr"), 2: ("src", "ipaddr"), 3: ("iif", "uint32"), 4: ("oif", "uint32"), 5: ("gateway", "ipaddr"),
        6: ("priority", "uint32"), 7: ("prefsrc", "ipaddr"), 9: ("multipath", "raw"), 15: ("table", "uint32"),
        20: ("pref", "uint8"), 30: ("nh_id", "uint32"),
    },
)  # fmt: skip
RTNH = struct.Struct("=HBBi")  # struct rtnexthop: len, flags, hops, ifindex; attributes follow
NEXTHOP: Table = {5: ("gateway", "ipaddr")}
RTNH_FLAGS = (("dead", 0x1), ("pervasive", 0x2), ("onlink", 0x4), ("offload", 0x8), ("linkdown", 0x10), ("unresolved", 0x20))


def nexthops(multipath: bytes) -> list[dict[str, Any]]:
    """Each next hop of RTA_MULTIPATH: ifindex, weight (hops + 1), flags, gateway."""
    out = []
    offset = 0
    while offset + RTNH.size <= len(multipath):
        size, flags, hops, index = RTNH.unpack_from(multipath, offset)
        if size < RTNH.size:
            break
        hop: dict[str, Any] = {"index": index, "weight": hops + 1, "flags": flags}
        hop.update(attributes(multipath[offset + RTNH.size : offset + size], NEXTHOP))
        out.append(hop)
        offset += (size + 3) & ~3
    return out


# -- neighbours (linux/neighbour.h) ---------------------------------------------------
NEIGHBOUR = Kind(
    rtnl.NDMSG,
    {1: ("dst", "ipaddr"), 2: ("lladdr", "l2addr"), 5: ("vlan", "uint16"), 6: ("port", "be16"), 7: ("vni", "uint32"), 8: ("ifindex", "uint32"), 9: ("master", "uint32")},
)
NTF_SELF, NTF_PROXY, NTF_ROUTER = 0x2, 0x8, 0x80

# -- policy rules (linux/fib_rules.h) -------------------------------------------------
RULE = Kind(
    rtnl.FIB_RULE_HDR,
    {
        1: ("dst", "ipaddr"), 2: ("src", "ipaddr"), 3: ("iifname", "asciiz"), 4: ("goto", "uint32"), 6: ("priority", "uint32"),
        10: ("fwmark", "uint32"), 13: ("suppress_ifgroup", "uint32"), 14: ("suppress_prefixlen", "uint32"), 15: ("table", "uint32"),
        16: ("fwmask", "uint32"), 17: ("oifname", "asciiz"), 19: ("l3mdev", "uint8"), 21: ("protocol", "uint8"), 22: ("ipproto", "uint8"),
    },
)  # fmt: skip
RULE_ACTIONS = {0: "unspec", 1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
FIB_RULE_INVERT = 0x2
