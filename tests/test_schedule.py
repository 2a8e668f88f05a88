"""The suite's longest tests (`@pytest.mark.starts_first`, tests/conftest.py) each head
a worker's first share under `-n 4 --dist worksteal tests/`, as `./run tests` runs: sorted to the
front, both fell to the first worker, and the VM test started only after the other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_each_long_test_heads_a_worker_share():
    env = {**os.environ, "PYTEST_XDIST_WORKER_COUNT": "4"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", "tests/"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    items = [line for line in done.stdout.splitlines() if "::" in line]
    heads, start = [], 0
    for k in range(4):  # worksteal's first deal: what is left, divided by the workers still to serve
        heads.append(items[start])
        start += (len(items) - start) // (4 - k)
    long = {"tests/test_matrix.py::test_debian_kernel_without_bridges_runs_the_scenarios_and_skips_the_bridge_test",
            "tests/test_installed.py::test_installed_scenario_suite_runs_the_same_tests_and_passes"}
    assert long <= set(heads[:2]), heads
