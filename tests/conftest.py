"""The project's own tests: the longest ones start first.

`@pytest.mark.starts_first` marks a test that takes tens of seconds on its own
(a VM boot under QEMU's TCG). Under `-n 2` a test that starts late holds the
whole run open after everything else is done; started first, the rest of the
suite runs beside it. The rest keeps pytest-randomly's order (it shuffles
before this hook runs, so the order is still reproducible from the seed).
"""

from __future__ import annotations

import pytest

MARKER = "starts_first"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a test of tens of seconds; scheduled before the others so that it runs beside them")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker(MARKER) is None)  # stable: the others keep their order
