"""Run a test's work in a forked child (nslab/kernel/child.py) that enters a sandbox of its
own, as a fix search (nslab/advice/trials.py) and `nslab why` do."""

from __future__ import annotations

from typing import Any, Callable

from nslab.kernel import child


def in_own_sandbox(work: Callable[[Any], dict], before: Callable[[], Any] = lambda: None, *, timeout: float = 120.0) -> dict:
    """*before()* in the child while still in the test's sandbox (to open its namespaces), then
    *work(what before returned)* in a fresh sandbox; its answer, or {"error": ...}."""

    def in_child() -> dict:
        from nslab.kernel import sandbox

        opened = before()
        sandbox.enter()
        return work(opened)

    try:
        return child.run(in_child, timeout=timeout)
    except child.ChildTimeout:
        return {"error": f"the child did not answer in {timeout:g} s"}
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return {"error": f"{type(exc).__name__}: {exc}"}
