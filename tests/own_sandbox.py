"""Run a test's work in a forked child that enters a sandbox of its own, as a fix search
(nslab/advice/trials.py) and `nslab why` do; the child answers in JSON and exits."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from nslab.advice.trials import read_answer


def in_own_sandbox(work: Callable[[Any], dict], before: Callable[[], Any] = lambda: None, *, timeout: float = 120.0) -> dict:
    """*before()* in the child while still in the test's sandbox (to open its namespaces), then
    *work(what before returned)* in a fresh sandbox; its answer, or {"error": ...}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            from nslab.kernel import sandbox

            opened = before()
            sandbox.enter()
            answer = work(opened)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(w, json.dumps(answer).encode())
        os._exit(0)
    os.close(w)
    data = read_answer(r, pid, deadline=time.monotonic() + timeout)
    return json.loads(data) if data else {"error": f"the child did not answer in {timeout:g} s"}
