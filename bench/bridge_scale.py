"""50 containers on one bridge, every container to every other (2450 ordered
pairs): nslab's all-pairs sweep against `ping -c1 -W1` for the same pairs,
measured in the same run.

    .venv/bin/python -m bench.bridge_scale [--containers 50] [--runs 5] [--evidence]

Each method gets a freshly built lab, so each starts with cold ARP caches,
and the same schedule: four sources at a time, every namespace's ARP cache
flushed after each round (the kernel's neighbour table is shared by all
namespaces and capped at gc_thresh3 = 1024 entries; 2450 pairs resolved
within seconds overflow it: ENOBUFS), every pair resolving its own ARP
(arp="each"). `--evidence` adds `Netns.ping` (full evidence per probe) for
all pairs, which takes one to two minutes. The lab is the bridge scenario's
(nslab/tutorials/docker0.py's docker0(n) is the same topology, for any n up to 65533);
for labs of hundreds or thousands see `./run bench --scale`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from bench.timing import row
from nslab import Lab
from nslab.lab.sweep import all_pairs
from nslab.tutorials.docker0 import address, container, docker0

PER_ROUND = 4


def build(n: int):
    lab = Lab().open()
    start = time.perf_counter()
    lab.build(docker0(n))
    hosts = {lab.ns(container(i)): address(i) for i in range(1, n + 1)}
    return lab, hosts, time.perf_counter() - start


def each_pair(hosts: dict, probe) -> tuple[float, int]:
    """Run probe(src, dst) -> bool for every ordered pair, on the sweep's schedule; (seconds, failures)."""
    sources, failures = list(hosts), 0
    start = time.perf_counter()
    for first in range(0, len(sources), PER_ROUND):
        for src in sources[first : first + PER_ROUND]:
            failures += sum(not probe(src, dst) for other, dst in hosts.items() if other is not src)
        for ns in sources:
            ns.flush_neighbours()
    return time.perf_counter() - start, failures


def iputils_ping(src, dst: str) -> bool:
    return subprocess.run(["nsenter", f"--net={src.path}", "ping", "-c1", "-W1", dst], capture_output=True, check=False).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.bridge_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50, help="containers on the bridge (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="sweeps, each on a fresh lab (default 5)")
    parser.add_argument("--evidence", action="store_true", help="also time Netns.ping (full evidence) for every pair")
    args = parser.parse_args()
    if not 2 <= args.containers <= 65533:
        parser.error(f"--containers={args.containers}: must be between 2 and 65533 (docker0's /16)")
    if args.runs < 1:
        parser.error("--runs: need at least 1")
    n = args.containers
    pairs = n * (n - 1)
    print(f"{n} containers on docker0, {pairs} ordered pairs")

    builds, sweeps = [], []
    for _ in range(args.runs):
        lab, hosts, built = build(n)
        sweep = all_pairs(hosts, per_round=PER_ROUND, arp="each")
        lab.close()
        assert sweep.ok and sweep.pairs == pairs, sweep
        builds.append(built)
        sweeps.append(sweep.elapsed)
    print(row(f"build {n}-container bridge lab", builds))
    print(row(f"nslab sweep, all {pairs} pairs (cold ARP)", sweeps))

    lab, hosts, _ = build(n)
    pinged, failed = each_pair(hosts, iputils_ping)
    lab.close()
    print(f"ping -c1 -W1, all {pairs} pairs (cold ARP)        total {pinged:8.2f} s   {pinged / pairs * 1000:.2f} ms per pair   failures={failed}")
    print(f"all pairs: nslab sweep median {statistics.median(sweeps) * 1000:.0f} ms, ping -c1 {pinged * 1000:.0f} ms: {pinged / statistics.median(sweeps):.0f}x")

    if args.evidence:
        lab, hosts, _ = build(n)
        probed, failed = each_pair(hosts, lambda src, dst: src.ping(dst).replied)
        lab.close()
        print(f"Netns.ping (full evidence), all {pairs} pairs      total {probed:8.2f} s   {probed / pairs * 1000:.2f} ms per pair   failures={failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
