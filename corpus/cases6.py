"""The corpus' IPv6 share: the faults learners meet with IPv6, in the IPv6 labs
(labs6.py), scored like the IPv4 cases (cases.py) and reported on a line of their own.

`where` follows cases.py's rule; for the IPv6 causes it names the namespace and
device holding the tentative or dadfailed address, or whose disable_ipv6 is set.
"""

from __future__ import annotations

import functools

from corpus import labs6
from corpus.cases import NFT, SHELL_IP, Case, connect, nothing, ping, transfer
from corpus.labs import build, listen, nft, sh, steps, sysctl
from nslab import Cause, Outcome, Where

case = functools.partial(Case, family="ipv6")
BRIDGE_SHELL = ("bridge", "ip")


def dad_on(ns: str, dev: str, transmits: int) -> labs6.Step:
    """Duplicate address detection back on for *dev*, with *transmits* solicitations."""
    return steps(sysctl(ns, f"net.ipv6.conf.{dev}.accept_dad", 1), sysctl(ns, f"net.ipv6.conf.{dev}.dad_transmits", transmits))


CASES6: list[Case] = [
    # -- the tutorials' failures, in IPv6 -------------------------------------------------------
    case("ipv6-no-route-at-sender", build(labs6.PAIR), nothing, ping("ns1", "2001:db8:99::7"), Outcome.LOCAL_ERROR, Cause.NO_ROUTE_AT_SENDER,
         Where("ns1"), "ns1 has no route to 2001:db8:99::7: sendto() fails with ENETUNREACH", group="tutorial"),
    case("ipv6-no-return-route", build(labs6.HOST), nothing, ping("host", "fd00:172:16::2"), Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE,
         Where("container1", "ceth1"), "the echo reaches container1 on ceth1; its reply to 2001:db8:0:10::10 finds no route", group="tutorial"),
    case("ipv6-link-down-near-end", build(labs6.pair(v1_up=False)), nothing, ping("ns1", "2001:db8::2"), Outcome.LOCAL_ERROR, Cause.LINK_DOWN,
         Where("ns1", "v1"), "v1 is down: its prefix route is not used, and nothing else routes 2001:db8::2", group="tutorial"),
    case("ipv6-link-down-far-end", build(labs6.pair(v2_up=False)), nothing, ping("ns1", "2001:db8::2"), Outcome.TIMEOUT, Cause.LINK_DOWN,
         Where("ns2", "v2"), "v1 has no carrier while v2 is down: the neighbour solicitation goes nowhere", group="tutorial"),
    case("ipv6-port-not-on-bridge", build(labs6.bridged(attached=False)), nothing, ping("c1", "2001:db8::2"), Outcome.TIMEOUT, Cause.NOT_ON_BRIDGE,
         Where("host", "veth2"), "the solicitation is flooded through br0, but c2's veth2 is no port of it", needs=("bridge",), group="tutorial"),
    case("ipv6-bridge-down", build(labs6.bridged(bridge_up=False)), nothing, ping("c1", "2001:db8::2"), Outcome.TIMEOUT, Cause.LINK_DOWN,
         Where("host", "br0"), "a port of a bridge that is down drops every frame it receives", needs=("bridge",), group="tutorial"),
    case("ipv6-forwarding-off", build(labs6.routed(forward=False)), nothing, ping("h1", "2001:db8:2::2"), Outcome.TIMEOUT, Cause.FORWARDING_OFF,
         Where("r", "r0"), "r does not forward IPv6 (net.ipv6.conf.all.forwarding=0): the echo not addressed to it is dropped on r0",
         group="tutorial"),
    case("ipv6-port-closed", build(labs6.PAIR), nothing, connect("ns1", "2001:db8::2", 80), Outcome.REFUSED, Cause.PORT_CLOSED, Where("ns2", "v2"),
         "nothing listens on [2001:db8::2]:80: ns2's TCP answers the SYN with a RST", reason="NO_SOCKET", group="tutorial"),
    case("ipv6-router-has-no-route", build(labs6.ROUTED), nothing, ping("h1", "2001:db8:99::1"), Outcome.ICMP_ERROR, Cause.ICMP_UNREACHABLE,
         Where("r", "r0"), "r forwards but has no route to 2001:db8:99::1: ICMPv6 no route to destination from 2001:db8:1::1", group="tutorial"),
    case("ipv6-lo-down", build(labs6.pair(lo_up=False)), nothing, ping("ns1", "::1"), Outcome.LOCAL_ERROR, Cause.LOOPBACK_DOWN, Where("ns1", "lo"),
         "with lo down ::1 is no local address and nothing routes it: ENETUNREACH", group="tutorial"),
    case("ipv6-lo-down-default-route", build(labs6.pair(lo_up=False)), sh("ns1", "ip", "-6", "route", "add", "default", "via", "2001:db8::2"),
         ping("ns1", "::1"), Outcome.TIMEOUT, Cause.LOOPBACK_DOWN, Where("ns1", "lo"),
         "with lo down ::1 is no local address; the default route sends the echo to ns2, which drops a packet for ::1 from the wire", needs=SHELL_IP),
    # -- wrong prefixes -------------------------------------------------------------------------
    case("ipv6-wrong-prefix-at-target", build(labs6.pair(ns2_cidr="2001:db8:0:1::2/64")), nothing, ping("ns1", "2001:db8:0:1::2"),
         Outcome.LOCAL_ERROR, Cause.NO_ROUTE_AT_SENDER, Where("ns1"),
         "ns2 was given 2001:db8:0:1::2/64, another /64 than ns1's 2001:db8::/64: ns1 has no route to it"),
    case("ipv6-host-prefix-at-target", build(labs6.pair(ns2_cidr="2001:db8::2/128")), nothing, ping("ns1", "2001:db8::2"),
         Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("ns2", "v2"),
         "ns2 holds 2001:db8::2/128: it answers NDP and gets the echo, but has no route back to 2001:db8::1 (no /64 on v2)"),
    # -- duplicate address detection ---------------------------------------------------------------
    case("ipv6-tentative-target", build(labs6.PAIR),
         steps(dad_on("ns2", "v2", 60), sh("ns2", "ip", "-6", "addr", "add", "2001:db8::3/64", "dev", "v2"), labs6.until_address("ns2", "v2", "2001:db8::3/64", "tentative")),
         ping("ns1", "2001:db8::3"), Outcome.TIMEOUT, Cause.ADDRESS_TENTATIVE, Where("ns2", "v2"),
         "2001:db8::3 is tentative on v2 for a minute (dad_transmits=60): ns2 does not answer NDP for it", needs=SHELL_IP),
    case("ipv6-dadfailed-target", build(labs6.bridged(third=True)),
         steps(sh("c3", "ip", "-6", "addr", "add", "2001:db8::9/64", "dev", "eth0"), dad_on("c2", "eth0", 1),
               sh("c2", "ip", "-6", "addr", "add", "2001:db8::9/64", "dev", "eth0"), labs6.until_address("c2", "eth0", "2001:db8::9/64", "dadfailed"),
               sh("c3", "ip", "-6", "addr", "del", "2001:db8::9/64", "dev", "eth0")),
         ping("c1", "2001:db8::9"), Outcome.TIMEOUT, Cause.DAD_FAILED, Where("c2", "eth0"),
         "c3 held 2001:db8::9 when c2 added it, so c2's DAD failed; c3 has let it go, and c2 never uses a dadfailed address", needs=BRIDGE_SHELL),
    # -- disable_ipv6 -------------------------------------------------------------------------------
    case("ipv6-disabled-on-target-device", build(labs6.PAIR), sysctl("ns2", "net.ipv6.conf.v2.disable_ipv6", 1), ping("ns1", "2001:db8::2"),
         Outcome.TIMEOUT, Cause.IPV6_DISABLED, Where("ns2", "v2"), "disable_ipv6 on v2 removed 2001:db8::2: nobody answers ns1's solicitation"),
    case("ipv6-disabled-in-target-namespace", build(labs6.PAIR), sysctl("ns2", "net.ipv6.conf.all.disable_ipv6", 1), ping("ns1", "2001:db8::2"),
         Outcome.TIMEOUT, Cause.IPV6_DISABLED, Where("ns2", "v2"), "disable_ipv6 for all of ns2 is copied to v2 and removes 2001:db8::2"),
    case("ipv6-disabled-at-sender", build(labs6.PAIR), sysctl("ns1", "net.ipv6.conf.v1.disable_ipv6", 1), ping("ns1", "2001:db8::2"),
         Outcome.LOCAL_ERROR, Cause.IPV6_DISABLED, Where("ns1", "v1"), "disable_ipv6 on v1 removed ns1's address and its prefix route: ENETUNREACH"),
    # -- forwarding is decided by 'all' ------------------------------------------------------------
    case("ipv6-forwarding-on-one-device-only", build(labs6.routed(forward=False)), sysctl("r", "net.ipv6.conf.r0.forwarding", 1),
         ping("h1", "2001:db8:2::2"), Outcome.TIMEOUT, Cause.FORWARDING_OFF, Where("r", "r0"),
         "r0.forwarding=1 makes r0 act as a router, but only net.ipv6.conf.all.forwarding makes r forward"),
    case("ipv6-forwarding-off-on-one-device", build(labs6.ROUTED), sysctl("r", "net.ipv6.conf.r0.forwarding", 0), ping("h1", "2001:db8:2::2"),
         Outcome.REPLY, None, None, "all.forwarding=1 still forwards what comes in on r0: per device, IPv6's switch does not forward or stop forwarding"),
    # -- route types and rules ------------------------------------------------------------------------
    case("ipv6-blackhole-route-at-router", build(labs6.ROUTED), sh("r", "ip", "-6", "route", "add", "blackhole", "2001:db8:2::2/128"),
         ping("h1", "2001:db8:2::2"), Outcome.TIMEOUT, Cause.NO_ANSWER, Where("r", "r0"),
         "r's blackhole route to 2001:db8:2::2 discards the echo silently", needs=SHELL_IP),
    case("ipv6-unreachable-route-at-router", build(labs6.ROUTED), sh("r", "ip", "-6", "route", "add", "unreachable", "2001:db8:2::2/128"),
         ping("h1", "2001:db8:2::2"), Outcome.ICMP_ERROR, Cause.ICMP_UNREACHABLE, Where("r", "r0"),
         "r's unreachable route to 2001:db8:2::2 answers with ICMPv6 no route to destination", needs=SHELL_IP),
    case("ipv6-prohibit-route-at-router", build(labs6.ROUTED), sh("r", "ip", "-6", "route", "add", "prohibit", "2001:db8:2::2/128"),
         ping("h1", "2001:db8:2::2"), Outcome.ICMP_ERROR, Cause.ICMP_UNREACHABLE, Where("r", "r0"),
         "r's prohibit route to 2001:db8:2::2 answers with ICMPv6 administratively prohibited: a route, not a firewall rule", needs=SHELL_IP),
    case("ipv6-prohibit-rule-at-router", build(labs6.ROUTED), sh("r", "ip", "-6", "rule", "add", "to", "2001:db8:2::2", "prohibit"),
         ping("h1", "2001:db8:2::2"), Outcome.ICMP_ERROR, Cause.ICMP_UNREACHABLE, Where("r", "r0"),
         "r's rule 'to 2001:db8:2::2 prohibit' answers with ICMPv6 administratively prohibited: a rule, not a firewall", needs=SHELL_IP),
    case("ipv6-unreachable-rule-takes-the-way-back", build(labs6.ROUTED), sh("h2", "ip", "-6", "rule", "add", "from", "2001:db8:2::2", "unreachable"),
         ping("h1", "2001:db8:2::2"), Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("h2", "eth0"),
         "h2 gets the echo, but its rule routes everything from 2001:db8:2::2 as unreachable: the reply is never sent", needs=SHELL_IP),
    # -- NDP ---------------------------------------------------------------------------------------------
    case("ipv6-ndp-unanswered", build(labs6.PAIR), nothing, ping("ns1", "2001:db8::99"), Outcome.TIMEOUT, Cause.NO_ARP_ANSWER, Where("ns1", "v1"),
         "nobody on v1's link holds 2001:db8::99: ns1's solicitations go unanswered"),
    case("ipv6-default-dev-solicits-the-wrong-link", build(labs6.HOST), sh("container1", "ip", "-6", "route", "add", "default", "dev", "ceth1"),
         ping("host", "fd00:172:16::2"), Outcome.TIMEOUT, Cause.NO_ARP_ANSWER, Where("container1", "ceth1"),
         "container1 solicits 2001:db8:0:10::10 on ceth1 directly; host holds it on enp0s8, and IPv6 answers NDP only on the interface asked on",
         needs=SHELL_IP),
    case("ipv6-default-via-link-local", build(labs6.HOST),
         steps(sh("host", "ip", "-6", "addr", "add", "fe80::1/64", "dev", "veth1"), sh("container1", "ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "ceth1")),
         ping("host", "fd00:172:16::2"), Outcome.REPLY, None, None, "container1's default route via the host's fe80::1 on ceth1 takes the reply back",
         needs=SHELL_IP),
    case("ipv6-permanent-neighbour-wrong-mac", build(labs6.PAIR),
         sh("ns1", "ip", "-6", "neigh", "replace", "2001:db8::2", "lladdr", "02:00:00:00:00:99", "dev", "v1", "nud", "permanent"),
         ping("ns1", "2001:db8::2"), Outcome.TIMEOUT, Cause.WRONG_NEIGHBOUR, Where("ns1", "v1"),
         "ns1 sends the echo to 02:00:00:00:00:99; ns2's v2 receives a frame for another host and drops it", reason="OTHERHOST", needs=SHELL_IP),
    # -- nftables: the ip6 and inet families ----------------------------------------------------------
    case("ipv6-nft-ip6-input-drop", build(labs6.ROUTED), nft("h2", "input", "icmpv6 type echo-request drop", family="ip6"), ping("h1", "2001:db8:2::2"),
         Outcome.TIMEOUT, Cause.FILTERED_BY_RULE, Where("h2", "eth0"), "h2's ip6 input rule drops the echo request", reason="NETFILTER_DROP", needs=NFT),
    case("ipv6-nft-inet-forward-drop", build(labs6.ROUTED), nft("r", "forward", "ip6 daddr 2001:db8:2::2 drop"), ping("h1", "2001:db8:2::2"),
         Outcome.TIMEOUT, Cause.FILTERED_BY_RULE, Where("r", "r0"), "r's inet forward rule drops the echo request", reason="NETFILTER_DROP", needs=NFT),
    case("ipv6-nft-forward-reject", build(labs6.ROUTED), nft("r", "forward", "ip6 daddr 2001:db8:2::2 reject with icmpv6 type admin-prohibited"),
         ping("h1", "2001:db8:2::2"), Outcome.ICMP_ERROR, Cause.REJECTED_BY_RULE, Where("r", "r0"),
         "r's forward rule drops the echo and sends ICMPv6 administratively prohibited from 2001:db8:1::1", reason="NETFILTER_DROP", needs=NFT),
    case("ipv6-nft-input-reject-tcp-reset", build(labs6.ROUTED, listen("h2", 80, "::")), nft("h2", "input", "tcp dport 80 reject with tcp reset", family="ip6"),
         connect("h1", "2001:db8:2::2", 80), Outcome.REFUSED, Cause.REJECTED_BY_RULE, Where("h2", "eth0"),
         "h2 listens on 80, but its ip6 input rule answers the SYN with a RST before the socket sees it", reason="NETFILTER_DROP", needs=NFT),
    case("ipv6-nft-output-drop-at-sender", build(labs6.ROUTED), nft("h1", "output", "ip6 daddr 2001:db8:2::2 drop"), ping("h1", "2001:db8:2::2"),
         Outcome.LOCAL_ERROR, Cause.FILTERED_BY_RULE, Where("h1", "eth0"),
         "h1's own output rule drops the echo inside sendto(), which fails with EPERM", reason="NETFILTER_DROP", needs=NFT),
    case("ipv6-nft-all-icmpv6-dropped-breaks-ndp", build(labs6.ROUTED), nft("h2", "input", "meta l4proto ipv6-icmp drop"), ping("h1", "2001:db8:2::2"),
         Outcome.TIMEOUT, Cause.FILTERED_BY_RULE, Where("h2", "eth0"),
         "h2 drops all ICMPv6 coming in, neighbour solicitations too: r never learns h2's MAC (the echo waits in r's neighbour queue)", needs=NFT),
    # -- Packet Too Big ----------------------------------------------------------------------------------
    case("ipv6-pmtu-discovery-works", build(labs6.ROUTED), sh("r", "ip", "link", "set", "r1", "mtu", "1280"), transfer("h1", "h2", "2001:db8:2::2", 80, 6000),
         Outcome.REPLY, None, None, "r cannot forward h1's full-sized segments on r1: ICMPv6 Packet Too Big, h1 resends smaller ones", needs=SHELL_IP),
    case("ipv6-pmtu-black-hole", build(labs6.ROUTED, nft("r", "output", "icmpv6 type packet-too-big drop", family="ip6")),
         sh("r", "ip", "link", "set", "r1", "mtu", "1280"), transfer("h1", "h2", "2001:db8:2::2", 80, 6000),
         Outcome.TIMEOUT, Cause.TOO_BIG, Where("r", "r1"),
         "h1's full-sized segments do not fit r1's MTU 1280; r's Packet Too Big is filtered, so h1 never learns", reason="PKT_TOO_BIG", needs=NFT),
]
