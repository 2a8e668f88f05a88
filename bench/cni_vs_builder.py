"""`python -m bench.cni_vs_builder [--runs N] [--containers N]`: the tutorial's
bridge node with N containers (default 20), wired by the reference CNI plugins
and built by nslab's own builder, timed in the same run.

CNI: the nodes (host, outside, empty containers) are built by nslab first; then,
per container, `loopback` ADD and `bridge` ADD (host-local IPAM, isGateway,
ipMasq), each a plugin process run in the lab's host. Builder: `Lab.build` of
the same end state from nothing (namespaces included) plus one hand-written
MASQUERADE rule. The first run pays one-off costs and is left out; lab teardown
is not timed. Both end states are compared once (nslab.tutorials.cni.differences).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.timing import row
from nslab import Lab
from nslab.tutorials.cni import Runtime, unavailable
from nslab.tutorials.podnet import PodNetwork, differences, lab_state


def cni_run(net: PodNetwork) -> dict[str, float]:
    with Lab() as lab, Runtime(lab, host=net.host) as cni:
        start = time.perf_counter()
        lab.build(net.nodes())
        nodes = time.perf_counter()
        cni.attach(net)
        end = time.perf_counter()
        bridge = sum(c.seconds for c in cni.calls if c.plugin == "bridge")
    return {"nodes": nodes - start, "add": end - nodes, "bridge": bridge, "total": end - start}


def builder_run(net: PodNetwork) -> dict[str, float]:
    with Lab() as lab:
        start = time.perf_counter()
        lab.build(net.topology())
        built = time.perf_counter()
        done = lab.ns(net.host).run(net.nat_rule())
        end = time.perf_counter()
        assert done.returncode == 0, done.stderr
    return {"build": built - start, "total": end - start}


def same_state(net: PodNetwork) -> list[str]:
    names = (net.host, *net.containers)
    with Lab(net.topology()) as lab:
        built = lab_state(lab, names, net.containers)
    with Lab() as lab, Runtime(lab, host=net.host) as cni:
        lab.build(net.nodes())
        cni.attach(net)
        wired = lab_state(lab, names, net.containers)
    return differences(built, wired, ("builder", "cni"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cni_vs_builder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed repetitions of each (default 10)")
    parser.add_argument("--containers", type=int, default=20, help="containers on the bridge (default 20)")
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs: need at least 3 repetitions for a median")
    if not 1 <= args.containers <= 200:
        parser.error("--containers: between 1 and 200")
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    net = PodNetwork(tuple(f"c{i}" for i in range(1, args.containers + 1)))
    diff = same_state(net)
    print(f"{args.containers} containers: builder and CNI end states " + ("identical" if not diff else "DIFFER:\n  " + "\n  ".join(diff)))
    cni, builder = [], []
    for _ in range(args.runs + 1):  # interleaved, so both see the same machine
        cni.append(cni_run(net))
        builder.append(builder_run(net))
    cni, builder = cni[1:], builder[1:]
    n = args.containers
    print(row(f"CNI: bridge ADD x{n} (plugin time)", [r["bridge"] for r in cni]))
    print(row(f"CNI: loopback+bridge ADD x{n}", [r["add"] for r in cni]))
    print(row("CNI: nodes built first by nslab", [r["nodes"] for r in cni]))
    print(row("CNI: whole lab", [r["total"] for r in cni]))
    print(row(f"builder: Lab.build, {n} containers", [r["build"] for r in builder]))
    print(row("builder: whole lab (+ MASQUERADE rule)", [r["total"] for r in builder]))
    ratio = statistics.median(r["total"] for r in cni) / statistics.median(r["total"] for r in builder)
    print(f"whole lab: CNI plugins take {ratio:.1f}x the builder's time (medians, same run)")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
