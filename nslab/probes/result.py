"""What a probe found: a structured verdict, never a bare bool."""

from __future__ import annotations

import errno as errno_mod
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Cause(str, Enum):
    """Why a probe failed, as a test asserts it: `result.cause is Cause.NO_RETURN_ROUTE`."""

    NO_ROUTE_AT_SENDER = "no route at the sender"
    LOST_VIA_DEFAULT_ROUTE = "left by the default route and never arrived"
    LINK_DOWN = "link down"
    NOT_ON_BRIDGE = "not attached to the bridge"
    NO_ARP_ANSWER = "no ARP answer"
    NO_RETURN_ROUTE = "arrived, but no route back"
    PORT_CLOSED = "TCP port closed"
    NO_ANSWER = "no answer (filtered or lost)"
    LOOPBACK_DOWN = "loopback down"
    ICMP_UNREACHABLE = "an ICMP error came back"
    FORWARDING_OFF = "a router on the way does not forward"
    RP_FILTER = "dropped by the reverse-path filter"
    FILTERED_BY_RULE = "dropped by a firewall rule"
    REJECTED_BY_RULE = "refused by a firewall rule"
    WRONG_NEIGHBOUR = "sent to the wrong MAC address"
    BRIDGE_VLAN = "the bridge's VLAN filter dropped it"
    TOO_BIG = "too big for the path (DF set)"
    ADDRESS_TENTATIVE = "the IPv6 address is still tentative (DAD)"
    DAD_FAILED = "duplicate address detection failed"
    IPV6_DISABLED = "IPv6 is disabled"
    CONGESTION = "lost to congestion (a full queue or table)"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Where:
    """The namespace (and interface) a cause names: where the packet stopped, or what is at fault."""

    ns: str
    dev: str | None = None

    def __str__(self) -> str:
        return f"{self.ns} on {self.dev}" if self.dev else self.ns


class Outcome(str, Enum):
    REPLY = "reply"  # echo reply, ARP answer, TCP exchange done, HTTP response
    TIMEOUT = "timeout"  # nothing came back (within the deadline, or settled earlier by evidence)
    ICMP_ERROR = "icmp error"  # an ICMP error came back (type/code/from in `icmp`)
    REFUSED = "refused"  # ECONNREFUSED: a TCP reset, or an ICMP port unreachable (then in Result.icmp)
    LOCAL_ERROR = "local error"  # the sender's kernel refused at once (errno, e.g. ENETUNREACH)


ICMP_UNREACH_CODES = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable", 13: "administratively prohibited"}
ICMP6_UNREACH_CODES = {
    0: "no route",
    1: "administratively prohibited",
    2: "beyond scope of source",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed policy",
    6: "reject route",
}


@dataclass(frozen=True)
class Claim:
    """One fact an explanation states, with the read it came from.

    `obj` names what was read in the words of the tool that sets it, so a
    person (or a scorer) can find it again: `sysctl net.ipv4.conf.all.rp_filter`,
    `route 10.0.0.0/24 table main`, `rule 100`, `nft inet filter input`,
    `link veth1`, `bridge port veth1`, `neigh 10.0.0.1 dev v1`,
    `address 10.0.0.2/24 dev v2`, `socket tcp 127.0.0.1:8080`, `drop reason`.
    `value` is what it read there (`1`, `blackhole`, `policy drop`, `down`).
    A claim that `blames` is the decision that stopped the packet; the others
    are the context the sentence also states.
    """

    ns: str
    obj: str
    value: str
    dev: str | None = None
    blames: bool = False

    def __str__(self) -> str:
        return f"{self.obj} = {self.value} in {self.ns}"


@dataclass(frozen=True)
class Remedy:
    """A change that the decision which stopped the packet says would let it pass: the
    commands (as typed in *ns*, after `ip netns exec NS`; several joined by ` && `) and
    those that take it back ('' where restoring the namespace's nftables ruleset does).
    Not verified: the fix search tries it on a copy."""

    ns: str
    command: str
    undo: str = ""
    dev: str | None = None


@dataclass(frozen=True)
class IcmpError:
    type: int
    code: int
    source: str  # who sent the error
    v6: bool = False  # ICMPv6: types and codes of their own (RFC 4443)
    mtu: int | None = None  # ICMPv6 Packet Too Big: the next link's MTU

    def __str__(self) -> str:
        if self.v6:
            if self.type == 1:
                return f"ICMPv6 destination unreachable ({ICMP6_UNREACH_CODES.get(self.code, f'code {self.code}')}) from {self.source}"
            if self.type == 2:
                return f"ICMPv6 packet too big (mtu {self.mtu}) from {self.source}"
            if self.type == 3:
                return f"ICMPv6 time exceeded from {self.source}"
            return f"ICMPv6 type {self.type} code {self.code} from {self.source}"
        if self.type == 3:
            return f"ICMP destination unreachable ({ICMP_UNREACH_CODES.get(self.code, f'code {self.code}')}) from {self.source}"
        if self.type == 11:
            return f"ICMP time exceeded from {self.source}"
        return f"ICMP type {self.type} code {self.code} from {self.source}"


@dataclass
class Result:
    probe: str  # 'ping', 'arp', 'tcp', 'http'
    src: str  # namespace the probe ran in
    dst: str  # what it aimed at ('10.0.0.2', '10.0.0.1:8080'; ARP: the address asked for, on `dev`)
    outcome: Outcome
    elapsed: float  # seconds to the verdict
    errno: int | None = None
    icmp: IcmpError | None = None
    mac: str | None = None  # ARP: who answered
    received: bytes | None = None  # TCP: what the client got back; HTTP: the body
    status: int | None = None  # HTTP status
    decided_early: bool = False  # negative verdict settled by evidence before the deadline
    evidence: Any = field(default=None, repr=False)  # nslab.diagnosis.evidence.Evidence, filled in by the lab
    cause: Cause | None = None
    where: Where | None = None  # the namespace and interface the cause names
    reason: str | None = None  # the kernel's drop reason (e.g. 'IP_INADDRERRORS'), where it was read
    explanation: str = ""
    claims: tuple[Claim, ...] = ()  # what the explanation states, each with its read; empty for a success
    remedies: tuple[Remedy, ...] = ()  # changes the stopping decision proposes (unverified; see nslab.advice)
    dev: str | None = None  # ARP: the interface asked on
    stage: str | None = None  # TCP chat: where it stopped after connecting ('accept')
    server_received: bytes | None = None  # TCP chat: what the server heard
    client_address: str | None = None  # TCP chat: the client's address as the server saw it (after any NAT)
    first_try: "Result | None" = field(default=None, repr=False)  # the try lost to congestion before this one (nslab/lab/probing.py)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.REPLY

    # Readable synonyms, so checks read like the tutorial: `assert r.replied`.
    replied = answered = connected = ok

    @property
    def errno_name(self) -> str | None:
        return errno_mod.errorcode.get(self.errno) if self.errno is not None else None

    def summary(self) -> str:
        what = {
            Outcome.REPLY: "reply",
            Outcome.TIMEOUT: "no reply" + (" (settled early by evidence)" if self.decided_early else " before the deadline"),
            Outcome.ICMP_ERROR: str(self.icmp),
            Outcome.REFUSED: f"connection refused ({self.icmp or 'TCP RST'})",
            Outcome.LOCAL_ERROR: f"{self.errno_name}: {os.strerror(self.errno or 0)}",
        }[self.outcome]
        to = f"{self.dst} on {self.dev}" if self.dev else self.dst
        return f"{self.probe} from {self.src} to {to}: {what} after {self.elapsed * 1000:.1f} ms"

    def __repr__(self) -> str:
        text = f"<{self.summary()}"
        if self.explanation:
            text += f" -- {self.explanation}"
        return text + ">"

    __str__ = __repr__
