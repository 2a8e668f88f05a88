"""Labs at the sizes CI uses: containers on one bridge, and a kind cluster of
nodes and pods. For each: build, the full all-pairs sweep (every ordered pair,
and how many got no reply), teardown, and the peak memory of the nslab process.

    ./run bench --scale                                # the table below
    .venv/bin/python -m bench.scale --sizes 10,100 --cluster 3x3

Each case runs in a process of its own (so its peak memory is its own), in a
sandbox of its own; the drop monitor that every nslab process starts is
attached before the clock starts (it is the process's, not the lab's). The
host's `ip netns`, `ip -o link`, `ip -o addr` and `ip route` are read before
and after the whole run and compared.

The containers: docker0 172.17.0.1/16 in `host`, container i on veth i with
172.17.0.0/16's address i+1 and a default route via the bridge, IPv6 off as
Docker does (nslab/tutorials/docker0.py). Right after the build, 20 of them
ping the bridge with `Netns.ping`, one after the other (`first_pings`): each
must reply, at a second try at most (a probe lost to congestion is made once
more). The cluster: nslab/tutorials/cluster.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from nslab.tutorials.docker0 import DOCKER0, MOST, address, container, docker0

SIZES = (10, 100, 250, 500, 1000)
CLUSTER = (10, 100)
FIRST_PINGS = 20  # containers that ping the bridge right after the build
GATEWAY = str(DOCKER0[1])
HOST_STATE = (["ip", "netns", "list"], ["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"])


def case(kind: str, size: tuple[int, ...], arp: str) -> dict:
    """One case, in this process: build, sweep, teardown, peak memory."""
    from nslab import Lab
    from nslab.kernel import drops, limits
    from nslab.lab.sweep import all_pairs
    from nslab.tutorials import cluster

    if kind == "bridge":
        (n,) = size
        topo, hosts = docker0(n), {container(i): address(i) for i in range(1, n + 1)}
    else:
        nodes, per_node = size
        topo, hosts = cluster.cluster(nodes, per_node), cluster.pods(nodes, per_node)
    lab = Lab().open()
    drops.monitor().ready(30)  # attached once per process, before the clock starts
    start = time.perf_counter()
    lab.build(topo)
    built = time.perf_counter() - start
    first = first_pings(lab, list(hosts)) if kind == "bridge" else None
    descriptors = limits.descriptors_open()
    sweep = all_pairs({lab.ns(name): addr for name, addr in hosts.items()}, arp=arp)  # type: ignore[arg-type]
    start = time.perf_counter()
    lab.close()
    torn = time.perf_counter() - start
    return {
        "namespaces": len(topo.namespaces),
        "build": built,
        "pairs": sweep.pairs,
        "lost": sweep.lost,
        "retried": sweep.retried,
        "sweep": sweep.elapsed,
        "rounds": sweep.rounds,
        "arp": sweep.arp,
        "teardown": torn,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "descriptors": descriptors,
        "failures": [f"{s} -> {d}" for s, d in sweep.failures[:5]],
        "first_pings": first,
    }


def first_pings(lab, names: list[str], count: int = FIRST_PINGS) -> dict:
    """Right after the build, `Netns.ping` of the bridge from *count* containers spread over the
    lab, one after the other: what a user does first (each probe watched and explained)."""
    start = time.perf_counter()
    results = [lab.ns(name).ping(GATEWAY) for name in names[:: max(1, len(names) // count)][:count]]
    return {
        "pinged": len(results),
        "replied": sum(r.ok for r in results),
        "second_try": sum(r.first_try is not None for r in results),
        "seconds": time.perf_counter() - start,
        "why": [r.explanation for r in results if not r.ok or r.first_try is not None][:3],
    }


def host_state() -> str:
    return "\n".join(subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout for argv in HOST_STATE)


def run_case(kind: str, size: tuple[int, ...], arp: str) -> dict:
    argv = [sys.executable, "-m", "bench.scale", "--case", f"{kind}:{'x'.join(map(str, size))}", "--arp", arp]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(sizes: tuple[int, ...] = SIZES, clusters: tuple[tuple[int, int], ...] = (CLUSTER,), arp: str = "auto") -> int:
    before = host_state()
    print(f"{'lab':<28} {'build':>8} {'all-pairs sweep':>34} {'teardown':>9} {'peak':>8} {'fds':>6}")
    failed = False
    cases = [("bridge", (n,), f"{n} containers, one bridge") for n in sizes]
    cases += [("cluster", (k, p), f"{k} nodes x {p} pods") for k, p in clusters]
    for kind, size, label in cases:
        r = run_case(kind, size, arp)
        if "error" in r:
            print(f"{label:<28} failed: {r['error']}")
            failed = True
            continue
        sweep = f"{r['pairs']:>7} pairs, {r['lost']} lost, {r['sweep']:6.2f} s"
        print(f"{label:<28} {r['build']:7.2f}s {sweep:>34} {r['teardown']:8.2f}s {r['peak_mib']:6.0f}MiB {r['descriptors']:>6}"
              + (f"   (ARP once per host, {r['rounds']} rounds)" if r["arp"] == "once" else f"   ({r['rounds']} rounds)")
              + (f"   {r['retried']} answered when asked again" if r["retried"] else ""))
        if r["lost"]:
            print(f"    no reply: {', '.join(r['failures'])}")
            failed = True
        first = r["first_pings"]
        if first:
            print(f"    first pings of the bridge, right after the build: {first['replied']}/{first['pinged']} replied"
                  f" ({first['second_try']} at a second try, after a loss to congestion) in {first['seconds']:.2f} s")
            for why in first["why"]:
                print(f"      {why}")
            failed = failed or first["replied"] < first["pinged"]
    unchanged = host_state() == before
    print(f"host unchanged (ip netns, ip -o link, ip -o addr, ip route): {'yes' if unchanged else 'NO'}")
    return 1 if failed or not unchanged else 0


def _cli() -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="containers on one bridge, comma-separated (default %(default)s)")
    parser.add_argument("--cluster", action="append", help="NODESxPODS, repeatable (default 10x100); 'none' for no cluster")
    parser.add_argument("--arp", choices=("auto", "each", "once"), default="auto", help="how the sweep resolves neighbours (see nslab/lab/sweep.py)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in this process (the parent's child)
    args = parser.parse_args()
    if args.case:
        kind, _, size = args.case.partition(":")
        print(json.dumps(case(kind, tuple(int(x) for x in size.split("x")), args.arp)))
        return 0
    try:
        sizes = tuple(int(x) for x in args.sizes.split(",") if x)
        clusters = tuple(tuple(int(x) for x in c.split("x")) for c in (args.cluster or ["x".join(map(str, CLUSTER))]) if c != "none")
    except ValueError:
        parser.error(f"--sizes {args.sizes!r} / --cluster {args.cluster!r}: write numbers, e.g. --sizes 10,100 --cluster 10x100")
    if any(not 1 <= n <= MOST for n in sizes) or any(len(c) != 2 for c in clusters):
        parser.error("--sizes: 1 to 65533 containers each; --cluster: NODESxPODS, e.g. 10x100")
    return main(sizes, clusters, args.arp)  # type: ignore[arg-type]


if __name__ == "__main__":
    raise SystemExit(_cli())
