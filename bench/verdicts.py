"""Time to a verdict, per kind of outcome, and `ping -c1 -W1` for the same
no-return-route case measured in the same run (the ratio is the point).

    lan (10.0.0.1) --- enp0s8 [host 10.0.0.10] veth1 --- ceth1 [container1 172.16.0.2]
    host: 172.16.0.0/24 dev veth1;  container1: no route back to 10.0.0.10
"""

from __future__ import annotations

import statistics
import subprocess

from bench.timing import measure, row
from nslab import Cause, Lab, Outcome, Route
from nslab.tutorials.catalog import LABS

# Tutorial 002's lab (nslab/tutorials/catalog.py) at step 9: the host's route
# to the container, and neither the host's default route nor the container's.
LAB = LABS["host-to-container"].topology.replace(routes=[Route("host", "172.16.0.0/24", dev="veth1")])


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
            ("no return route (host -> container1)", verdict(host, "172.16.0.2", Outcome.TIMEOUT, Cause.NO_RETURN_ROUTE)),
            ("no route at sender (container1 -> 10.0.0.10)", verdict(container, "10.0.0.10", Outcome.LOCAL_ERROR, Cause.NO_ROUTE_AT_SENDER)),
            ("ARP unanswered (lan -> 10.0.0.99)", verdict(lan, "10.0.0.99", Outcome.TIMEOUT, Cause.NO_ARP_ANSWER)),
        ]
        medians = {}
        for label, probe in cases:
            probe()  # warm up: imports, sockets
            samples = measure(probe, runs)
            medians[label] = statistics.median(samples)
            print(row(f"verdict: {label}", samples))

        def iputils_ping():
            done = subprocess.run(["nsenter", f"--net={host.path}", "ping", "-c1", "-W1", "172.16.0.2"], capture_output=True)
            assert done.returncode == 1, done  # no reply, as nslab says

        samples = measure(iputils_ping, max(3, runs // 5))
        print(row("ping -c1 -W1, same no-return-route case", samples))
        ratio = statistics.median(samples) / medians["no return route (host -> container1)"]
        print(f"no-return-route verdict: nslab is {ratio:.0f}x faster than ping -c1 -W1 (medians, same run)")
