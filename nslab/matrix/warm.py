"""A pytest plugin for the host only (`-p nslab.matrix.warm`): after collection, import every
module of nslab, so that pytest's assertion rewriting writes each one's rewritten bytecode.

pytest rewrites the asserts of its plugins' packages, and nslab is one: every nslab module a
test imports while it runs (the lab, the diagnosis, the drop monitor) is rewritten, not only
those collection imports. A matrix guest writes no bytecode, so without this it rewrote some
twenty modules per Python process (14 s of the smoke test's guest under TCG, 0.3 s here).
See nslab.matrix.runner.compile_for_guests.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # nslab/


def pytest_collection_finish(session) -> None:
    for module in pkgutil.walk_packages([str(PACKAGE)], "nslab."):
        try:
            importlib.import_module(module.name)
        except Exception:  # noqa: BLE001, S112 - a module that does not import here is compiled by the guest, as before
            continue
