"""What a whole process costs: `import nslab`, `nslab --help`, and a script that
builds and tears down the two-namespace veth lab, against the tutorial's `ip`
commands for the same lab run by `sh`, all in the same run, interleaved.

Everything runs inside a private sandbox (nslab's: new network and mount
namespaces, a private /run/netns), never in the host's namespaces: the `ip`
commands' `ip netns add` lands in the sandbox's /run/netns, and the nslab
script enters a sandbox of its own inside it.

Python caches bytecode by default; the children run with a bytecode cache of
their own (PYTHONPYCACHEPREFIX, warmed by one run first) and without
PYTHONDONTWRITEBYTECODE, which some environments set and which would make
every run compile nslab from source.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.timing import row

PYTHON = sys.executable
NSLAB = str(Path(sys.executable).with_name("nslab"))
LAB = "veth-two-namespaces"

BUILD_AND_TEAR_DOWN = f"""\
from nslab import Lab
from nslab.tutorials.catalog import LABS

with Lab(LABS[{LAB!r}].topology):
    pass
"""


def ip_script() -> str:
    """`nslab show LAB`'s commands, then `ip netns del` for each namespace."""
    from nslab.tutorials.catalog import LABS
    from nslab.views.render import ip_script as render

    topo = LABS[LAB].topology
    return render(topo) + "".join(f"ip netns del {ns.name}\n" for ns in topo.namespaces)


def _timed(argv: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)[:80]} failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()[-300:]}")
    return elapsed


def main(runs: int = 10) -> dict[str, float]:
    from nslab.kernel import leftovers, sandbox

    box = sandbox.enter()  # this process and its children: private namespaces only
    scratch = leftovers.scratch_dir("startup")
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
        script = os.path.join(scratch, "build_and_tear_down.py")
        Path(script).write_text(BUILD_AND_TEAR_DOWN)
        cases = {
            "python -c pass (the interpreter alone)": [PYTHON, "-c", "pass"],
            "python -c 'import nslab'": [PYTHON, "-c", "import nslab"],
            "nslab --help": [NSLAB, "--help"],
            "python: build + tear down the veth lab": [PYTHON, script],
            "sh: the same lab's ip commands + ip netns del": ["sh", "-e", "-c", ip_script()],
        }
        samples: dict[str, list[float]] = {label: [] for label in cases}
        for argv in cases.values():
            _timed(argv, env, scratch)  # warm up: bytecode cache, page cache
        for _ in range(runs):
            for label, argv in cases.items():
                samples[label].append(_timed(argv, env, scratch))
        leaked = os.listdir(box.netns_dir)
        if leaked:
            raise RuntimeError(f"namespaces left in the sandbox's {box.netns_dir}: {leaked}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for label, values in samples.items():
        print(row(label, values))
    medians = {label: statistics.median(values) for label, values in samples.items()}
    ratio = medians["python: build + tear down the veth lab"] / medians["sh: the same lab's ip commands + ip netns del"]
    print(f"whole-process lab build + teardown: nslab is {ratio:.2f}x the ip commands under sh (medians, same run; the goal is <= 1.5x)")
    return medians


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
