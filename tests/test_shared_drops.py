"""The run's one drop monitor (nslab/kernel/drops/shared.py): a grader's follower, once narrowed
to its lab's namespaces, keeps the drops there and every flush marker, and reads no other
namespace's drops (fed through its socket with the lines bpftrace writes); a run's xdist
workers follow the bpftrace that pytest's main process serves, and start none of their own."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from nslab.kernel import drops
from nslab.kernel.drops import shared
from nslab.kernel.drops.monitor import MARKER_PORT
from nslab.kernel.drops.records import RAW_WORDS
from nslab.kernel.drops.shared import NARROW, NARROWED, READY, Broadcaster, Follower

pytest_plugins = ["pytester"]

LAB, ELSEWHERE, MARKERS = 4026539001, 4026539002, 4026539003  # namespace inodes
REASONS = {2: "NOT_SPECIFIED", 3: "NO_SOCKET"}


def drop_line(netns: int, when: int, *, cpu: int = 0, reason: int = 2, dport: int = 80) -> str:
    """A `D ...` line for a UDP packet 127.0.0.1 -> 127.0.0.1:*dport* dropped in *netns*."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
    raw = (ip + struct.pack("!HHHH", 40000, dport, 8, 0)).ljust(8 * RAW_WORDS, b"\0")
    words = " ".join(f"{w:x}" for w in struct.unpack(f"={RAW_WORDS}Q", raw))
    return f"D {when} {cpu} {netns} 2 1 {reason} 2048 14 42 {words}\n"


def test_a_narrowed_follower_reads_its_labs_drops_and_every_marker_only():
    theirs, ours = socket.socketpair()
    follower = Follower(theirs, None, MARKERS).start()
    ours.sendall(f"{READY} {json.dumps(REASONS)}\n".encode())
    mark = follower.position()
    now = time.monotonic_ns()
    answer = threading.Thread(target=lambda: ours.recv(4096) and ours.sendall(f"{NARROWED}\n".encode()))  # as the broadcaster confirms
    answer.start()
    follower.narrow({LAB})
    answer.join()
    lines = [drop_line(LAB, now + 1), drop_line(ELSEWHERE, now + 2), drop_line(MARKERS, now + 3, cpu=1, reason=3, dport=MARKER_PORT)]
    ours.sendall("".join(lines).encode())
    ours.close()  # the follower reads to the end, then says the run's monitor stopped
    follower._thread.join(5)
    assert [(d.netns, d.reason) for d in follower.since(mark)] == [(LAB, "NOT_SPECIFIED")]
    assert follower._marker_seen == {1: now + 3}
    assert follower.why == "the run's drop monitor stopped"


def test_the_broadcaster_sends_a_narrowed_follower_its_namespaces_drops_and_the_markers_only():
    """The broadcaster's side (no bpftrace: its reader thread's lines are given to it): once it has
    confirmed a follower's request, the drops of other namespaces no longer go to that follower's
    socket; a follower that never narrowed still gets every line."""
    broadcaster = Broadcaster()
    narrowed = socket.socket(fileno=broadcaster.subscribe())
    everything = Follower(socket.socket(fileno=broadcaster.subscribe()), None, MARKERS).start()
    broadcaster._broadcast(f"{READY} {json.dumps(REASONS)}")
    mark = everything.position()
    narrowed.sendall(f"{NARROW}{json.dumps([LAB, MARKERS])}\n".encode())
    heard = narrowed.makefile("rb")
    assert heard.readline().decode().startswith(READY)
    assert heard.readline().decode() == f"{NARROWED}\n"
    now = time.monotonic_ns()
    lines = [drop_line(LAB, now + 1), drop_line(ELSEWHERE, now + 2), drop_line(MARKERS, now + 3, cpu=1, reason=3, dport=MARKER_PORT)]
    for line in lines:
        broadcaster._add(line.rstrip("\n"))
    broadcaster.stop()  # closes every subscriber's socket once its queue is written
    assert heard.read().decode() == lines[0] + lines[2]
    everything._thread.join(5)
    assert [d.netns for d in everything.since(mark)] == [LAB, ELSEWHERE]


RUN_OF_PROBES = r"""
import os
import pytest
from nslab import Address, Topology, Veth
from nslab.kernel import drops

TOPO = Topology(["ns1", "ns2"], veths=[Veth("ns1", "v1", "ns2", "v2")],
                addresses=[Address("ns1", "v1", "10.0.0.1/24"), Address("ns2", "v2", "10.0.0.2/24")])

def bpftraces_of_this_run():  # bpftrace processes started by this run's (each inherits its $NSLAB_DROPS)
    ours = f"NSLAB_DROPS={os.environ['NSLAB_DROPS']}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm, open(f"/proc/{pid}/environ", "rb") as env:
                if comm.read().strip() == "bpftrace" and ours in env.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            pass  # ended meanwhile
    return found

@pytest.mark.parametrize("port", [8081, 8082])
def test_a_filtered_port(make_lab, port):
    lab = make_lab(TOPO)
    lab.ns("ns2").listen(port)
    rules = "table inet f {\n chain input {\n  type filter hook input priority 0;\n  tcp dport %d drop\n }\n}\n" % port
    lab.ns("ns2").run(["nft", "-f", "-"], input=rules.encode(), check=True)
    result = lab.ns("ns1").connect("10.0.0.2", port, timeout=0.5)  # below the SYN retransmit: the drop settles it
    assert type(drops.monitor()).__name__ == "Follower"
    assert result.reason == "NETFILTER_DROP" and result.decided_early, result
    assert len(bpftraces_of_this_run()) == 1
"""


@pytest.mark.skipif(drops.missing() is not None, reason=f"drop reasons unavailable: {drops.missing()}")
def test_the_workers_of_a_run_follow_its_one_bpftrace(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Each xdist worker reads the drops of the run's one bpftrace (started by pytest's main
    process when the first worker asks), settles on them, and starts none of its own."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv(shared.ENV, raising=False)  # the run under test serves its own, not this run's
    pytester.makepyfile(test_probes=RUN_OF_PROBES)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-n", "2")
    result.assert_outcomes(passed=2)
