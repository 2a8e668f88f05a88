"""A grader's follower of the run's drop monitor, once narrowed to its lab's namespaces,
keeps the drops there and every flush marker, and reads no other namespace's drops.
Fed through its pipe with the lines bpftrace writes (nslab/kernel/drops/program.py)."""

from __future__ import annotations

import json
import os
import socket
import struct
import time

from nslab.grading.shared_drops import READY, Follower
from nslab.kernel.drops.monitor import MARKER_PORT
from nslab.kernel.drops.records import RAW_WORDS

LAB, ELSEWHERE, MARKERS = 4026539001, 4026539002, 4026539003  # namespace inodes
REASONS = {2: "NOT_SPECIFIED", 3: "NO_SOCKET"}


def drop_line(netns: int, when: int, *, cpu: int = 0, reason: int = 2, dport: int = 80) -> str:
    """A `D ...` line for a UDP packet 127.0.0.1 -> 127.0.0.1:*dport* dropped in *netns*."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
    raw = (ip + struct.pack("!HHHH", 40000, dport, 8, 0)).ljust(8 * RAW_WORDS, b"\0")
    words = " ".join(f"{w:x}" for w in struct.unpack(f"={RAW_WORDS}Q", raw))
    return f"D {when} {cpu} {netns} 2 1 {reason} 2048 14 42 {words}\n"


def test_a_narrowed_follower_reads_its_labs_drops_and_every_marker_only():
    r, w = os.pipe()
    follower = Follower(r, None, MARKERS).start()
    os.write(w, f"{READY} {json.dumps(REASONS)}\n".encode())
    mark = follower.position()
    now = time.monotonic_ns()
    follower.narrow({LAB})
    lines = [drop_line(LAB, now + 1), drop_line(ELSEWHERE, now + 2), drop_line(MARKERS, now + 3, cpu=1, reason=3, dport=MARKER_PORT)]
    os.write(w, "".join(lines).encode())
    os.close(w)  # the follower reads to the end, then says the run's monitor stopped
    follower._thread.join(5)
    assert [(d.netns, d.reason) for d in follower.since(mark)] == [(LAB, "NOT_SPECIFIED")]
    assert follower._marker_seen == {1: now + 3}
    assert follower.why == "the grading run's drop monitor stopped"
