"""How long building the two-namespace veth lab takes (tutorial 000's end state):
namespaces, the veth born with both ends in place, addresses, links up.

The sandbox and the lab's control socket are opened once per process and not
counted; teardown (which waits until the kernel has destroyed the namespaces)
is timed separately.
"""

from __future__ import annotations

import time

from bench.timing import row
from nslab import Lab
from nslab.tutorials.catalog import LABS

TWO_NAMESPACES = LABS["veth-two-namespaces"].topology


def main(runs: int) -> None:
    builds, teardowns = [], []
    for _ in range(runs + 1):
        lab = Lab().open()
        start = time.perf_counter()
        lab.build(TWO_NAMESPACES)
        built = time.perf_counter()
        lab.close()
        builds.append(built - start)
        teardowns.append(time.perf_counter() - built)
    # The first build pays one-off imports and caches: report it apart.
    print(f"first build (cold caches): {builds[0] * 1000:.2f} ms")
    print(row("build two-namespace veth lab", builds[1:]))
    print(row("teardown (until the kernel destroyed it)", teardowns[1:]))
