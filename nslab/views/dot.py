"""Graphviz's `dot -Tsvg`, kept running: one per process, drawing one graph after another.

dot lays out each graph as soon as it has read it and writes its SVG at once,
so a process that draws many diagrams (a test run's report, nslab why's SVG)
keeps one and pays a write and a read per diagram (half a millisecond)
instead of a new `dot` (some 15 ms of CPU, a third of it fontconfig's start).

The drawing is a lone `dot`'s, every shape at the same place; the SVG may list
the clusters in another order, and their ids differ: dot numbers pages and
clusters across its run (`page0,1_graph0`, `clust4` where a lone one writes
`graph0`, `clust1`), so they stay unique across the drawings of one HTML page.

The process that keeps it closes its stdin at exit and reaps it. A forked
child (a grader, which leaves with os._exit) keeps none: it would leave its
`dot` to init, unreaped. There, and on anything unusual (a word on stderr, a dot that
died or says nothing within the deadline), `svg` gives None and the caller
runs a `dot` of its own, which also reports the error.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
import time

from nslab.probes import wait

END = b"</svg>\n"  # the last line of each graph's SVG: labels are escaped, so it ends nothing else
_lock = threading.Lock()
_kept: subprocess.Popen | None = None
_forked = False


def svg(dot: str, source: str, timeout: float) -> bytes | None:
    """The SVG of the DOT *source* (one graph, as to_dot writes) from this process's kept *dot*, or None (see above)."""
    global _kept
    if _forked:
        return None
    with _lock:
        if _kept is None or _kept.poll() is not None:
            _kept = subprocess.Popen([dot, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            return _draw(_kept, source.encode(), time.monotonic() + timeout)
        except (OSError, EOFError, TimeoutError, ValueError):
            _kept.kill()
            _kept.wait()
            _kept = None
            return None


def _draw(proc: subprocess.Popen, source: bytes, deadline: float) -> bytes:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(source + b"\n")
    proc.stdin.flush()
    out, stdout, stderr = b"", proc.stdout.fileno(), proc.stderr.fileno()
    while not out.endswith(END):
        ready = wait.readable([stdout, stderr], deadline - time.monotonic())
        if not ready:
            raise TimeoutError("dot drew nothing in time")
        if stderr in ready:
            raise ValueError("dot wrote on stderr")  # an error or a warning: the caller's own dot tells it
        chunk = os.read(stdout, 65536)
        if not chunk:
            raise EOFError("dot ended")
        out += chunk
    return out


@atexit.register
def _close() -> None:
    """At exit: the kept dot reads the end of its input, ends, and is reaped (killed if it lingers)."""
    if _kept is None or _forked:
        return
    try:
        _kept.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        _kept.kill()
        _kept.wait()


def _in_child() -> None:
    """In a forked child: no kept dot, and not the parent's ends of its pipes either, or the
    parent's dot would see its input end only when the child has ended too."""
    global _forked
    _forked = True
    for pipe in (_kept.stdin, _kept.stdout, _kept.stderr) if _kept is not None else ():
        if pipe is not None:
            pipe.close()


os.register_at_fork(after_in_child=_in_child)
