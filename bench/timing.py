"""Median and spread of repeated timings, printed the same way by every benchmark."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def measure(fn: Callable[[], object], runs: int) -> list[float]:
    """Seconds per call of *fn*, one sample per run."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def row(label: str, samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=10) if len(samples) >= 3 else [min(samples), max(samples)]
    return f"{label:<52} median {statistics.median(samples) * 1000:8.2f} ms   p10 {q[0] * 1000:8.2f}   p90 {q[-1] * 1000:8.2f}   n={len(samples)}"
