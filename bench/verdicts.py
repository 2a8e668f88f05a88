"""Time to a verdict, per kind of outcome, for IPv4 and IPv6 side by side, and
`ping -c1 -W1` (`ping -6 -c1 -W1`) for the same no-return-route case measured in
the same run (the ratio is the point).

    lan (10.0.0.1, 2001:db8:0:10::1) --- enp0s8 [host 10.0.0.10, 2001:db8:0:10::10] veth1 --- ceth1 [container1 172.16.0.2, fd00:172:16::2]
    host: 172.16.0.0/24 and fd00:172:16::/64 dev veth1;  container1: no route back to the host, in either family
"""

from __future__ import annotations

import statistics
import subprocess

from bench.timing import measure, row
from nslab import Address, Cause, Lab, Namespace, Outcome, Route
from nslab.tutorials.catalog import LABS

# Tutorial 002's lab (nslab/tutorials/catalog.py) at step 9: the host's route
# to the container, and neither the host's default route nor the container's;
# dual stack, each namespace's links with usable link-local addresses at once (accept_dad=0).
_T002 = LABS["host-to-container"].topology
LAB = _T002.replace(
    namespaces=tuple(Namespace(ns.name, ns.lo_up, {**dict(ns.sysctls), "net.ipv6.conf.default.accept_dad": 0}) for ns in _T002.namespaces),
    addresses=(
        *_T002.addresses,
        Address("lan", "eth0", "2001:db8:0:10::1/64"),
        Address("host", "enp0s8", "2001:db8:0:10::10/64"),
        Address("container1", "ceth1", "fd00:172:16::2/64"),
    ),
    routes=[Route("host", "172.16.0.0/24", dev="veth1"), Route("host", "fd00:172:16::/64", dev="veth1")],
)


def verdict(ns, dst: str, outcome: Outcome, cause: Cause | None):
    def probe():
        result = ns.ping(dst)
        assert result.outcome is outcome and result.cause is cause, result
        return result

    return probe


def main(runs: int) -> None:
    with Lab(LAB) as lab:
        host, container, lan = lab.ns("host"), lab.ns("container1"), lab.ns("lan")
        cases = [
            ("success (lan -> host)", verdict(lan, "10.0.0.10", Outcome.REPLY, None)),
            ("IPv6 success (lan -> host)", verdict(lan, "2001:db8:0:10::10", Outcome.REPLY, None)),
            ("no return route (host -> container1)", verdict(host, "172.16.0.2", Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE)),
            ("IPv6 no return route (host -> container1)", verdict(host, "fd00:172:16::2", Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE)),
            ("no route at sender (container1 -> 10.0.0.10)", verdict(container, "10.0.0.10", Outcome.LOCAL_ERROR, Cause.NO_ROUTE_AT_SENDER)),
            ("IPv6 no route at sender (container1 -> host)", verdict(container, "2001:db8:0:10::10", Outcome.LOCAL_ERROR, Cause.NO_ROUTE_AT_SENDER)),
            ("ARP unanswered (lan -> 10.0.0.99)", verdict(lan, "10.0.0.99", Outcome.TIMEOUT, Cause.NO_ARP_ANSWER)),
            ("IPv6 NDP unanswered (lan -> 2001:db8:0:10::99)", verdict(lan, "2001:db8:0:10::99", Outcome.TIMEOUT, Cause.NO_ARP_ANSWER)),
        ]
        medians = {}
        for label, probe in cases:
            probe()  # warm up: imports, sockets
            samples = measure(probe, runs)
            medians[label] = statistics.median(samples)
            print(row(f"verdict: {label}", samples))

        for family, dst, label in (("-4", "172.16.0.2", "no return route (host -> container1)"), ("-6", "fd00:172:16::2", "IPv6 no return route (host -> container1)")):

            def iputils_ping(family=family, dst=dst):
                done = subprocess.run(["nsenter", f"--net={host.path}", "ping", family, "-c1", "-W1", dst], capture_output=True)
                assert done.returncode == 1, done  # no reply, as nslab says

            samples = measure(iputils_ping, max(3, runs // 5))
            print(row(f"ping {family} -c1 -W1, same no-return-route case", samples))
            ratio = statistics.median(samples) / medians[label]
            print(f"{label}: nslab is {ratio:.0f}x faster than ping {family} -c1 -W1 (medians, same run)")
