"""rtnetlink messages -> what the kernel reports, in ip(8)'s words (nslab/kernel/state.py).

One function per kind of object; *names* maps ifindex -> interface name
(from one link dump), so that routes and neighbours name their devices.
"""

from __future__ import annotations

from nslab.kernel import records, rtnl
from nslab.kernel.rtnl import Message
from nslab.kernel.state import AddressState, FdbEntry, LinkState, NeighbourState, RouteLookup, RouteState, RuleState


def link(m: Message, names: dict[int, str]) -> LinkState:
    index, flags = m.body["index"], m.body["flags"]
    info = m.nested(rtnl.IFLA_LINKINFO)
    kind = info[rtnl.IFLA_INFO_KIND].split(b"\0", 1)[0].decode() if rtnl.IFLA_INFO_KIND in info else None
    name = m.text(rtnl.IFLA_IFNAME) or str(index)
    if kind is None and name == "lo":
        kind = "loopback"
    master = m.u32(rtnl.IFLA_MASTER)
    oper = m.u8(rtnl.IFLA_OPERSTATE)
    return LinkState(
        name=name,
        index=index,
        kind=kind or "unknown",
        up=bool(flags & rtnl.IFF_UP),
        carrier=bool(flags & rtnl.IFF_LOWER_UP),
        noarp=bool(flags & rtnl.IFF_NOARP),
        mac=m.mac(rtnl.IFLA_ADDRESS) or "",
        mtu=m.u32(rtnl.IFLA_MTU) or 0,
        master=names.get(master) if master else None,
        peer_index=m.u32(rtnl.IFLA_LINK) if kind == "veth" else None,
        peer_netnsid=m.s32(rtnl.IFLA_LINK_NETNSID) if kind == "veth" else None,
        operstate=rtnl.OPERSTATES[oper] if oper is not None and oper < len(rtnl.OPERSTATES) else "",
        port=_bridge_port(info),
    )


def _bridge_port(info: dict[int, bytes]) -> tuple[tuple[str, int], ...]:
    """A bridge port's options, from its IFLA_LINKINFO (empty for any other link)."""
    if info.get(rtnl.IFLA_INFO_SLAVE_KIND, b"").split(b"\0", 1)[0] != b"bridge" or rtnl.IFLA_INFO_SLAVE_DATA not in info:
        return ()
    options = records.attributes(info[rtnl.IFLA_INFO_SLAVE_DATA], records.BRIDGE_PORT_DATA)
    return tuple(sorted((name, value) for name, value in options.items() if isinstance(value, int)))


def address(m: Message, names: dict[int, str]) -> AddressState:
    prefixlen, scope, index = m.body["prefixlen"], m.body["scope"], m.body["index"]
    flags = m.u32(rtnl.IFA_FLAGS) or m.body["flags"]
    return AddressState(
        dev=names.get(index, str(index)),
        cidr=f"{m.ip(rtnl.IFA_ADDRESS) or m.ip(rtnl.IFA_LOCAL)}/{prefixlen}",
        scope=rtnl.SCOPES.get(scope, str(scope)),
        flags=tuple(name for bit, name in rtnl.IFA_STATES.items() if flags & bit),
    )


def table_of(m: Message) -> int:
    """The routing table of a route message (RTA_TABLE holds ids above 255)."""
    table = m.u32(rtnl.RTA_TABLE)
    return table if table is not None else m.body["table"]


def table_name(table: int) -> str:
    return rtnl.TABLES.get(table, str(table))


def route(m: Message, names: dict[int, str]) -> RouteState:
    dst_len, protocol, scope, kind, flags = (m.body[k] for k in ("dst_len", "proto", "scope", "type", "flags"))
    dst = m.ip(rtnl.RTA_DST)
    oif = m.u32(rtnl.RTA_OIF)
    return RouteState(
        dst=f"{dst}/{dst_len}" if dst else "default",
        dev=names.get(oif) if oif else None,
        via=m.ip(rtnl.RTA_GATEWAY),
        proto=rtnl.PROTOCOLS.get(protocol, str(protocol)),
        scope=rtnl.SCOPES.get(scope, str(scope)),
        src=m.ip(rtnl.RTA_PREFSRC),
        type=rtnl.ROUTE_TYPES.get(kind, str(kind)),
        onlink=bool(flags & rtnl.RTNH_F_ONLINK),
        linkdown=bool(flags & rtnl.RTNH_F_LINKDOWN),
        table=table_name(table_of(m)),
        metric=m.u32(rtnl.RTA_PRIORITY) or 0,
    )


# selectors RuleState does not hold: FRA_TUN_ID, FRA_L3MDEV, FRA_UID_RANGE, FRA_IP_PROTO,
# FRA_SPORT_RANGE, FRA_DPORT_RANGE; and FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_PREFIXLEN unless unset (-1)
OTHER_SELECTORS = (12, 19, 20, 22, 23, 24)
UNSET_UNLESS_SET = (13, 14)
FIB_RULE_INVERT = 0x2


def rule(m: Message) -> RuleState:
    dst_len, src_len, tos, table, action, flags = (m.body[k] for k in ("dst_len", "src_len", "tos", "table", "action", "flags"))
    src, dst = m.ip(rtnl.FRA_SRC), m.ip(rtnl.FRA_DST)
    number = m.u32(rtnl.FRA_TABLE) or table
    return RuleState(
        priority=m.u32(rtnl.FRA_PRIORITY) or 0,
        action=rtnl.RULE_ACTIONS.get(action, str(action)),
        table=table_name(number) if number else None,
        src=f"{src}/{src_len}" if src else None,
        dst=f"{dst}/{dst_len}" if dst else None,
        iif=m.text(rtnl.FRA_IIFNAME),
        oif=m.text(rtnl.FRA_OIFNAME),
        fwmark=m.u32(rtnl.FRA_FWMARK),
        fwmask=m.u32(rtnl.FRA_FWMASK),
        tos=tos,
        plain=not (flags & FIB_RULE_INVERT)
        and not any(kind in m.attrs for kind in OTHER_SELECTORS)
        and all(m.u32(kind) in (None, 0xFFFFFFFF) for kind in UNSET_UNLESS_SET),
    )


def lookup(dst: str, m: Message, names: dict[int, str], iif: str | None = None) -> RouteLookup:
    """The answer to RTM_GETROUTE for *dst*."""
    kind = m.body["type"]
    oif = m.u32(rtnl.RTA_OIF)
    return RouteLookup(
        dst=dst,
        type=rtnl.ROUTE_TYPES.get(kind, str(kind)),
        dev=names.get(oif) if oif else None,
        via=m.ip(rtnl.RTA_GATEWAY),
        src=m.ip(rtnl.RTA_PREFSRC),
        iif=iif,
        table=table_name(table_of(m)),
    )


def nud_state(state: int) -> str:
    """'REACHABLE', 'STALE', 'INCOMPLETE', ... ('NOARP/PERMANENT' when several bits are set)."""
    return "/".join(name for name, bit in rtnl.NUD_STATES if state & bit) or "NONE"


def neighbour(m: Message, names: dict[int, str]) -> NeighbourState:
    index, state = m.body["ifindex"], m.body["state"]
    return NeighbourState(m.ip(rtnl.NDA_DST) or "", names.get(index, "?"), m.mac(rtnl.NDA_LLADDR), nud_state(state))


def fdb_entry(m: Message, names: dict[int, str]) -> FdbEntry:
    index, state = m.body["ifindex"], m.body["state"]
    master = m.u32(rtnl.NDA_MASTER)
    return FdbEntry(
        mac=m.mac(rtnl.NDA_LLADDR) or "",
        dev=names.get(index, str(index)),
        master=names.get(master) if master else None,
        permanent=bool(state & (rtnl.NUD_PERMANENT | rtnl.NUD_NOARP)),
    )
