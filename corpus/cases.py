"""The corpus: small labs, each with one injected fault or twist, one probe, and
what the kernel does with it (established by reasoning, then checked against
the full-wait probe).

`where` names the namespace (and interface) whose state the cause is about:
the sender for a missing route or an unanswered ARP (the interface it asked
on), the target for a missing route back (the interface the request came in
on), the device that is down, the bridge port that is cut off or outside the
VLAN, the namespace of the firewall rule (the interface the packet came in
on, or for an output rule the one it was leaving by), the router and the
interface whose forwarding or rp_filter dropped it, the interface whose MTU
is too small, the namespace whose neighbour entry holds the wrong MAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from corpus.labs import (
    BRIDGED,
    CALICO_BASE,
    HOST,
    NAT,
    PAIR,
    PROXIED,
    ROUTED,
    TWO_WAYS,
    Step,
    bridged,
    build,
    gateway_behind_device_route,
    link,
    listen,
    nat,
    nat_rule,
    nft,
    node,
    pair,
    route_after_first_packet,
    routed,
    sh,
    steps,
    sysctl,
    until_up,
)
from nslab import Address, Cause, Lab, Outcome, Result, Topology, Veth, Where

Probe = Callable[[Lab], Result]


@dataclass(frozen=True)
class Case:
    name: str
    lab: Step  # builds the small lab as it is before the change
    change: Step  # the one injected fault or twist
    probe: Probe
    outcome: Outcome  # what the full wait shows
    cause: Optional[Cause]  # the cause it injects (None: the probe succeeds)
    where: Optional[Where]  # the namespace (and interface) the cause must name
    why: str  # the ground truth, reasoned from the kernel
    reason: Optional[str] = None  # the kernel's drop reason for the probe's packet, where one is dropped
    timeout: float = 0.5  # the probe's deadline (the ground truth waits all of it)
    needs: tuple[str, ...] = ()  # tools and kernel features, probed before the case runs
    group: str = "twist"  # 'tutorial' for the tutorials' own failures
    family: str = "ipv4"  # the probe's address family: each family's share is scored on its own line

    def run(self, lab: Lab) -> Result:
        """Build, change, probe (in *lab*, already open); then finish what the change started."""
        lab.timeout = self.timeout
        self.lab(lab)
        after = self.change(lab)
        try:
            return self.probe(lab)
        finally:
            if after is not None:
                after()


def nothing(lab: Lab) -> None:
    return None


def ping(src: str, dst: str) -> Probe:
    return lambda lab: lab.ns(src).ping(dst)


def connect(src: str, dst: str, port: int) -> Probe:
    return lambda lab: lab.ns(src).connect(dst, port)


def transfer(src: str, server: str, dst: str, port: int, size: int) -> Probe:
    """The netcat chat with *size* bytes from client to server: full-sized TCP segments, DF set."""
    return lambda lab: lab.ns(src).chat(server, dst, port, to_server=b"x" * size)


NFT = ("nft",)
BRIDGE = ("bridge",)
VLAN = ("bridge-vlan", "bridge-tool")
LEARNING = ("bridge", "bridge-tool")
SHELL_IP = ("ip",)

ROUTED_LISTENING = build(ROUTED, listen("h2", 80))


def calico(*, proxy_arp: int = 1, proxy_delay: int | None = None) -> Step:
    """The node's side of a Calico pod: forwarding, proxy_arp (and proxy_delay) on cali1."""
    todo = [sysctl("node", "net.ipv4.conf.cali1.proxy_arp", proxy_arp)]
    if proxy_delay is not None:
        todo.append(sysctl("node", "net.ipv4.neigh.cali1.proxy_delay", proxy_delay))
    return steps(*todo)


CALICO = build(CALICO_BASE, gateway_behind_device_route("pod1", "169.254.1.1", "eth0"))

DUPLICATE_ELSEWHERE = Topology(
    [node("dup"), node("island")],
    veths=[Veth("dup", "eth0", "island", "eth0")],
    addresses=[Address("dup", "eth0", "10.0.2.2/24"), Address("island", "eth0", "10.0.2.9/24")],
)

OUTSIDE_MODEL = Topology([node("ns1"), node("ns2")])


def veth_outside_model(*, b_up: bool) -> Step:
    todo = [
        sh("ns1", "ip", "link", "add", "name", "ext1", "type", "veth", "peer", "name", "ext2", "netns", "ns2"),
        sh("ns1", "ip", "addr", "add", "10.0.9.1/24", "dev", "ext1"),
        sh("ns2", "ip", "addr", "add", "10.0.9.2/24", "dev", "ext2"),
        sh("ns1", "ip", "link", "set", "dev", "ext1", "up"),
    ]
    if b_up:
        todo += [sh("ns2", "ip", "link", "set", "dev", "ext2", "up"), until_up("ns1", "ext1"), until_up("ns2", "ext2")]
    return steps(*todo)


CASES: list[Case] = [
    # -- the tutorials' failures ------------------------------------------------------
    Case("no-route-at-sender", build(PAIR), nothing, ping("ns1", "192.0.2.7"), Outcome.LOCAL_ERROR, Cause.NO_ROUTE_AT_SENDER, Where("ns1"),
         "ns1 has no route to 192.0.2.7: sendto() fails with ENETUNREACH", group="tutorial"),
    Case("no-return-route", build(HOST), nothing, ping("host", "172.16.0.2"), Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("container1", "ceth1"),
         "the echo reaches container1 on ceth1; its reply to 10.0.0.10 finds no route and is never sent", group="tutorial"),
    Case("lo-down", build(pair(lo_up=False)), nothing, ping("ns1", "127.0.0.1"), Outcome.LOCAL_ERROR, Cause.LOOPBACK_DOWN, Where("ns1", "lo"),
         "with lo down 127.0.0.1 is no local address and nothing routes it: ENETUNREACH", group="tutorial"),
    Case("link-down-near-end", build(pair(v1_up=False)), nothing, ping("ns1", "10.0.0.2"), Outcome.LOCAL_ERROR, Cause.LINK_DOWN, Where("ns1", "v1"),
         "v1 down takes its connected route along: ENETUNREACH at once", group="tutorial"),
    Case("link-down-far-end", build(pair(v2_up=False)), nothing, ping("ns1", "10.0.0.2"), Outcome.TIMEOUT, Cause.LINK_DOWN, Where("ns2", "v2"),
         "v1 has no carrier while v2 is down: the ARP request goes nowhere", group="tutorial"),
    Case("port-not-on-bridge", build(bridged(attached=False)), nothing, ping("c1", "10.0.0.2"), Outcome.TIMEOUT, Cause.NOT_ON_BRIDGE, Where("host", "veth2"),
         "the ARP request is flooded through br0, but c2's veth2 is no port of it", needs=BRIDGE, group="tutorial"),
    Case("bridge-down", build(bridged(bridge_up=False)), nothing, ping("c1", "10.0.0.2"), Outcome.TIMEOUT, Cause.LINK_DOWN, Where("host", "br0"),
         "a port of a bridge that is down drops every frame it receives", needs=BRIDGE, group="tutorial"),
    Case("ip-forward-off", build(routed(forward=False)), nothing, ping("h1", "10.0.2.2"), Outcome.TIMEOUT, Cause.FORWARDING_OFF, Where("r", "r0"),
         "r does not forward (ip_forward=0): the echo not addressed to it is dropped on r0, no ICMP error",
         reason="IP_INADDRERRORS", group="tutorial"),
    Case("no-masquerade", build(NAT), nothing, ping("container1", "203.0.113.1"), Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("outside", "eth0"),
         "the host forwards 172.16.0.2's echo unchanged; the outside has no route back to 172.16.0.0/24", group="tutorial"),
    Case("port-closed", build(PAIR), nothing, connect("ns1", "10.0.0.2", 80), Outcome.REFUSED, Cause.PORT_CLOSED, Where("ns2", "v2"),
         "nothing listens on 10.0.0.2:80: ns2's TCP answers the SYN with a RST", reason="NO_SOCKET", group="tutorial"),
    Case("router-has-no-route", build(ROUTED), nothing, ping("h1", "198.51.100.1"), Outcome.ICMP_ERROR, Cause.ICMP_UNREACHABLE, Where("r", "r0"),
         "h1's default route leads to r, which forwards but has no route to 198.51.100.1: ICMP net unreachable from 10.0.1.1",
         reason="IP_INNOROUTES", group="tutorial"),
    # -- proxy ARP ------------------------------------------------------------------------
    Case("calico-proxy-arp-no-delay", CALICO, calico(proxy_delay=0), ping("pod1", "10.0.0.10"), Outcome.REPLY, None, None,
         "nobody has 169.254.1.1, but the node answers ARP for it on cali1 (proxy_arp=1, forwarding on, routed elsewhere) at once"),
    # proxy_delay's default (80 cs) delays the node's ARP answer by a random time up to 0.8 s: the deadline must exceed it
    Case("calico-proxy-arp-default-delay", CALICO, calico(), ping("pod1", "10.0.0.10"), Outcome.REPLY, None, None,
         "the proxied ARP answer comes after a random delay up to proxy_delay (0.8 s); the echo waits in the neighbour queue",
         timeout=1.5),
    Case("calico-without-proxy-arp", CALICO, calico(proxy_arp=0), ping("pod1", "10.0.0.10"), Outcome.TIMEOUT, Cause.NO_ARP_ANSWER, Where("pod1", "eth0"),
         "proxy_arp=0 on cali1: nobody answers ARP for 169.254.1.1 and the echo never leaves pod1"),
    # a proxy entry answers after proxy_delay too (default 0.8 s)
    Case("ip-neigh-add-proxy", build(PROXIED), sh("ns2", "ip", "neigh", "add", "proxy", "10.0.0.99", "dev", "v2"), ping("ns1", "10.0.0.99"),
         Outcome.REPLY, None, None, "ns2 answers ARP for 10.0.0.99 on v2 (a proxy entry, forwarding on, routed via v3) and forwards the echo to ns3",
         timeout=1.5, needs=SHELL_IP),
    # -- forwarding per device ----------------------------------------------------------------
    Case("forwarding-off-on-ingress", build(ROUTED), sysctl("r", "net.ipv4.conf.r0.forwarding", 0), ping("h1", "10.0.2.2"),
         Outcome.TIMEOUT, Cause.FORWARDING_OFF, Where("r", "r0"),
         "ip_forward=1 but r0.forwarding=0: what comes in on r0 is not forwarded (the ingress device decides)", reason="IP_INADDRERRORS"),
    Case("forwarding-off-on-egress", build(ROUTED), sysctl("r", "net.ipv4.conf.r1.forwarding", 0), ping("h1", "10.0.2.2"),
         Outcome.TIMEOUT, Cause.FORWARDING_OFF, Where("r", "r1"),
         "r1.forwarding=0 does not stop the request (it came in on r0) but drops h2's reply, which comes in on r1", reason="IP_INADDRERRORS"),
    # -- rp_filter with an asymmetric route ------------------------------------------------------
    Case("rp-filter-strict", build(TWO_WAYS, sh("client", "ip", "route", "add", "10.0.1.2", "dev", "eth0", "src", "192.168.9.1")),
         sysctl("server", "net.ipv4.conf.eth0.rp_filter", 1), ping("client", "10.0.1.2"), Outcome.TIMEOUT, Cause.RP_FILTER, Where("server", "eth0"),
         "the echo from 192.168.9.1 comes in on eth0, but the server's route back leaves by eth1: strict rp_filter drops it",
         reason="IP_RPFILTER", needs=SHELL_IP),
    Case("rp-filter-loose", build(TWO_WAYS, sh("client", "ip", "route", "add", "10.0.1.2", "dev", "eth0", "src", "192.168.9.1")),
         sysctl("server", "net.ipv4.conf.eth0.rp_filter", 2), ping("client", "10.0.1.2"), Outcome.REPLY, None, None,
         "loose rp_filter only wants some route back to 192.168.9.1 (via eth1): the reply goes back the other way", needs=SHELL_IP),
    # -- nftables: drop, reject with ICMP, reject with a TCP reset; input, forward, output ---------
    Case("nft-input-drop", build(ROUTED), nft("h2", "input", "icmp type echo-request drop"), ping("h1", "10.0.2.2"),
         Outcome.TIMEOUT, Cause.FILTERED_BY_RULE, Where("h2", "eth0"), "h2's input rule drops the echo request", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-input-reject-icmp", ROUTED_LISTENING, nft("h2", "input", "tcp dport 80 reject"), connect("h1", "10.0.2.2", 80),
         Outcome.REFUSED, Cause.REJECTED_BY_RULE, Where("h2", "eth0"),
         "h2 listens on 80, but its input rule answers the SYN with ICMP port unreachable: the client's connect() gets ECONNREFUSED, no RST",
         reason="NETFILTER_DROP", needs=NFT),
    Case("nft-input-reject-tcp-reset", ROUTED_LISTENING, nft("h2", "input", "tcp dport 80 reject with tcp reset"), connect("h1", "10.0.2.2", 80),
         Outcome.REFUSED, Cause.REJECTED_BY_RULE, Where("h2", "eth0"),
         "h2 listens on 80, but its input rule answers the SYN with a RST before the socket sees it", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-forward-drop", build(ROUTED), nft("r", "forward", "ip daddr 10.0.2.2 drop"), ping("h1", "10.0.2.2"),
         Outcome.TIMEOUT, Cause.FILTERED_BY_RULE, Where("r", "r0"), "r's forward rule drops the echo request", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-forward-reject-icmp", build(ROUTED), nft("r", "forward", "ip daddr 10.0.2.2 reject with icmp type admin-prohibited"),
         ping("h1", "10.0.2.2"), Outcome.ICMP_ERROR, Cause.REJECTED_BY_RULE, Where("r", "r0"),
         "r's forward rule drops the echo and sends ICMP administratively prohibited from 10.0.1.1", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-forward-reject-tcp-reset", ROUTED_LISTENING, nft("r", "forward", "tcp dport 80 reject with tcp reset"), connect("h1", "10.0.2.2", 80),
         Outcome.REFUSED, Cause.REJECTED_BY_RULE, Where("r", "r0"),
         "r's forward rule answers the SYN with a RST in h2's name; h2 (which listens) never sees it", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-output-drop-at-target", build(ROUTED), nft("h2", "output", "icmp type echo-reply drop"), ping("h1", "10.0.2.2"),
         Outcome.TIMEOUT, Cause.FILTERED_BY_RULE, Where("h2", "eth0"),
         "the echo arrives and is answered, but h2's output rule drops the reply", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-output-drop-at-sender", build(ROUTED), nft("h1", "output", "ip daddr 10.0.2.2 drop"), ping("h1", "10.0.2.2"),
         Outcome.LOCAL_ERROR, Cause.FILTERED_BY_RULE, Where("h1", "eth0"),
         "h1's own output rule drops the echo inside sendto(), which fails with EPERM", reason="NETFILTER_DROP", needs=NFT),
    Case("nft-output-reject-icmp-at-sender", ROUTED_LISTENING, nft("h1", "output", "tcp dport 80 reject"), connect("h1", "10.0.2.2", 80),
         Outcome.REFUSED, Cause.REJECTED_BY_RULE, Where("h1", "eth0"),
         "h1's output rule drops its own SYN and sends itself ICMP port unreachable: connect() fails with ECONNREFUSED",
         reason="NETFILTER_DROP", needs=NFT),
    Case("nft-output-reject-tcp-reset-at-sender", ROUTED_LISTENING, nft("h1", "output", "tcp dport 80 reject with tcp reset"), connect("h1", "10.0.2.2", 80),
         Outcome.REFUSED, Cause.REJECTED_BY_RULE, Where("h1", "eth0"),
         "h1's output rule drops its own SYN and sends itself a RST: connect() fails with ECONNREFUSED", reason="NETFILTER_DROP", needs=NFT),
    # -- policy routing on the return path ---------------------------------------------------------
    Case("policy-rule-gives-the-way-back", build(HOST),
         steps(sh("container1", "ip", "route", "add", "default", "dev", "ceth1", "table", "100"),
               sh("container1", "ip", "rule", "add", "from", "172.16.0.2", "lookup", "100")),
         ping("host", "172.16.0.2"), Outcome.REPLY, None, None,
         "the main table has no route back to 10.0.0.10, but the rule for replies from 172.16.0.2 finds one in table 100", needs=SHELL_IP),
    Case("policy-rule-takes-the-way-back", build(PAIR),
         steps(sh("ns2", "ip", "route", "add", "unreachable", "default", "table", "100"),
               sh("ns2", "ip", "rule", "add", "from", "10.0.0.2", "lookup", "100")),
         ping("ns1", "10.0.0.2"), Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("ns2", "v2"),
         "the main table has a route back, but the reply from 10.0.0.2 is routed by table 100: unreachable", needs=SHELL_IP),
    # -- NAT ---------------------------------------------------------------------------------------------
    Case("masquerade", build(NAT), nat_rule("host", "postrouting", 'oifname "uplink" masquerade'), ping("container1", "203.0.113.1"),
         Outcome.REPLY, None, None, "the host rewrites the source to 203.0.113.2, which the outside can answer", needs=NFT),
    Case("dnat-port-forward", build(NAT, listen("container1", 80)),
         nat_rule("host", "prerouting", 'iifname "uplink" tcp dport 8080 dnat to 172.16.0.2:80'), connect("outside", "203.0.113.2", 8080),
         Outcome.REPLY, None, None, "docker -p 8080:80: the host sends 203.0.113.2:8080 on to 172.16.0.2:80", needs=NFT),
    Case("dnat-no-route-back", build(nat(container_default=False), listen("container1", 80)),
         nat_rule("host", "prerouting", 'iifname "uplink" tcp dport 8080 dnat to 172.16.0.2:80'), connect("outside", "203.0.113.2", 8080),
         Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("container1", "ceth1"),
         "the SYN reaches container1 (not the host that owns 203.0.113.2), which has no route back to 203.0.113.1", needs=NFT),
    Case("dnat-port-closed", build(NAT), nat_rule("host", "prerouting", 'iifname "uplink" tcp dport 8080 dnat to 172.16.0.2:80'),
         connect("outside", "203.0.113.2", 8080), Outcome.REFUSED, Cause.PORT_CLOSED, Where("container1", "ceth1"),
         "the SYN is sent on to 172.16.0.2:80, where nothing listens: container1's RST comes back", reason="NO_SOCKET", needs=NFT),
    # -- a return route that appears after the first SYN -----------------------------------------------
    # the client retransmits its SYN after the initial RTO (1 s): the deadline must exceed it
    Case("return-route-after-first-syn", build(HOST, listen("container1", 80)),
         route_after_first_packet("container1", ["ip", "route", "add", "10.0.0.0/24", "dev", "ceth1"], timeout=2.5),
         connect("host", "172.16.0.2", 80), Outcome.REPLY, None, None,
         "the first SYN finds no way back; the route is there before the retransmission at 1 s, which is answered",
         timeout=2.5, needs=SHELL_IP),
    # -- bridges -----------------------------------------------------------------------------------------
    Case("bridge-port-down", build(BRIDGED), link("host", "veth2", up=False), ping("c1", "10.0.0.2"),
         Outcome.TIMEOUT, Cause.LINK_DOWN, Where("host", "veth2"), "br0's port veth2 is down: the flooded ARP request never reaches c2", needs=BRIDGE),
    Case("bridge-port-learning-off", build(BRIDGED), sh("host", "bridge", "link", "set", "dev", "veth2", "learning", "off"), ping("c1", "10.0.0.2"),
         Outcome.REPLY, None, None, "br0 never learns c2's MAC, so it floods frames to it: they still arrive", needs=LEARNING),
    Case("bridge-port-outside-vlan", build(BRIDGED),
         steps(sh("host", "ip", "link", "set", "br0", "type", "bridge", "vlan_filtering", "1"),
               sh("host", "bridge", "vlan", "del", "dev", "veth2", "vid", "1"),
               sh("host", "bridge", "vlan", "add", "dev", "veth2", "vid", "20", "pvid", "untagged")),
         ping("c1", "10.0.0.2"), Outcome.TIMEOUT, Cause.BRIDGE_VLAN, Where("host", "veth2"),
         "with vlan_filtering, c1's frames are in VLAN 1 and veth2 only in VLAN 20: the bridge never sends them there", needs=VLAN),
    # -- neighbours and addresses -------------------------------------------------------------------------
    Case("permanent-neighbour-wrong-mac", build(PAIR),
         sh("ns1", "ip", "neigh", "replace", "10.0.0.2", "lladdr", "02:00:00:00:00:99", "dev", "v1", "nud", "permanent"),
         ping("ns1", "10.0.0.2"), Outcome.TIMEOUT, Cause.WRONG_NEIGHBOUR, Where("ns1", "v1"),
         "ns1 sends the echo to 02:00:00:00:00:99; ns2's v2 receives a frame for another host and drops it", reason="OTHERHOST", needs=SHELL_IP),
    Case("duplicate-address-answering-one-has-no-route-back", build(routed(h2_default=False, extra=DUPLICATE_ELSEWHERE)), nothing,
         ping("h1", "10.0.2.2"), Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE, Where("h2", "eth0"),
         "10.0.2.2 is on dup (first in the model, unreachable from h1) and on h2, which gets the echo and has no route back"),
    Case("duplicate-address-on-one-bridge", build(bridged(duplicate=True)), nothing, ping("c1", "10.0.0.2"), Outcome.REPLY, None, None,
         "c2 and c3 both answer ARP for 10.0.0.2; whichever c1 keeps answers the echo", needs=BRIDGE),
    # -- MTU -----------------------------------------------------------------------------------------------
    Case("pmtu-discovery-works", build(ROUTED), sh("r", "ip", "link", "set", "r1", "mtu", "1200"), transfer("h1", "h2", "10.0.2.2", 80, 6000),
         Outcome.REPLY, None, None, "r cannot forward h1's full-sized segments (DF) on r1: ICMP fragmentation needed, h1 resends smaller ones",
         needs=SHELL_IP),
    Case("pmtu-black-hole", build(ROUTED, nft("r", "output", "icmp type destination-unreachable drop")),
         sh("r", "ip", "link", "set", "r1", "mtu", "1200"), transfer("h1", "h2", "10.0.2.2", 80, 6000),
         Outcome.TIMEOUT, Cause.TOO_BIG, Where("r", "r1"),
         "h1's full-sized segments (DF) do not fit r1's MTU 1200; r's ICMP fragmentation-needed is filtered, so h1 never learns",
         reason="PKT_TOO_BIG", needs=NFT),
    # -- links and addresses added outside the model ----------------------------------------------------
    Case("veth-outside-model", build(OUTSIDE_MODEL), veth_outside_model(b_up=True), ping("ns1", "10.0.9.2"), Outcome.REPLY, None, None,
         "a veth made by plain ip commands works like any other", needs=SHELL_IP),
    Case("veth-outside-model-far-end-down", build(OUTSIDE_MODEL), veth_outside_model(b_up=False), ping("ns1", "10.0.9.2"),
         Outcome.TIMEOUT, Cause.LINK_DOWN, Where("ns2", "ext2"), "the far end ext2 of a veth the model does not know is down", needs=SHELL_IP),
    Case("address-outside-model", build(PAIR), sh("ns2", "ip", "addr", "add", "10.0.0.3/24", "dev", "v2"), ping("ns1", "10.0.0.3"),
         Outcome.REPLY, None, None, "ns2 holds 10.0.0.3 (added by ip addr, unknown to the model) and answers ARP and echo", needs=SHELL_IP),
]

BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
