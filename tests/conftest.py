"""The project's own tests: the longest ones start first.

`@pytest.mark.starts_first` marks a test that takes tens of seconds on its own
(a VM boot under QEMU's TCG). Under `-n 2` a test that starts late holds the
whole run open after everything else is done; started first, the rest of the
suite runs beside it (each at the head of another worker's share). The rest keeps pytest-randomly's order (it shuffles
before this hook runs, so the order is still reproducible from the seed).
"""

from __future__ import annotations

import os

import pytest

MARKER = "starts_first"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a test of tens of seconds; scheduled before the others so that it runs beside them")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each marked test heads a worker's share: `--dist worksteal` hands worker k the k-th contiguous
    share of this list at the start, so sorted to the front they all fell to the first worker, one
    after the other. The others keep their order."""
    first = [item for item in items if item.get_closest_marker(MARKER) is not None]
    rest = [item for item in items if item.get_closest_marker(MARKER) is None]
    heads = _shares(len(items), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for k, item in enumerate(first):
        rest.insert(heads[k % len(heads)] + k // len(heads), item)
    items[:] = rest


def _shares(n: int, workers: int) -> list[int]:
    """Where each worker's first share of *n* tests starts, as worksteal deals them: the rest
    of the list divided by the workers still to serve, one worker after the other."""
    heads, start = [], 0
    for i in range(max(1, workers)):
        heads.append(start)
        start += (n - start) // (max(1, workers) - i)
    return heads
