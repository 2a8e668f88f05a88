"""The kernel's drop reasons, per packet: each probe packet's drop found by its
own header fields, with the reason, the namespace (inode) and the interface.

    h1 v1 10.0.1.1/24 --- ra 10.0.1.254/24 [r] rb 10.0.2.254/24 --- v2 10.0.2.1/24 h2

Each test skips, naming why, where drop reasons are unavailable (not root, no
bpftrace, no BTF); the last tests prove that unavailability is one clear line
and no exception.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nslab import Address, Namespace, Route, Topology, Veth
from nslab.kernel import drops, linux
from nslab.kernel.drops import records
from nslab.kernel.process import wait_until
from tests import nobody

ROUTER = dict(
    veths=[Veth("h1", "v1", "r", "ra"), Veth("r", "rb", "h2", "v2")],
    addresses=[
        Address("h1", "v1", "10.0.1.1/24"),
        Address("r", "ra", "10.0.1.254/24"),
        Address("r", "rb", "10.0.2.254/24"),
        Address("h2", "v2", "10.0.2.1/24"),
    ],
    routes=[Route("h1", "default", via="10.0.1.254"), Route("h2", "default", via="10.0.2.254")],
)
NFT = pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian package nftables) is not installed")


def router_lab(make_lab, *, forward: bool, extra: list[Address] = ()):
    r = Namespace("r", sysctls={"net.ipv4.ip_forward": int(forward)})
    topo = Topology(["h1", r, "h2"], **{**ROUTER, "addresses": [*ROUTER["addresses"], *extra]})
    return make_lab(topo)


@pytest.fixture
def mon(nslab_sandbox) -> drops.DropMonitor:
    """The process's monitor, attached; skips naming what is missing where it cannot be."""
    monitor = drops.monitor()
    if not monitor.ready(timeout=30):
        why = monitor.why or "unknown"
        pytest.skip(why if why.startswith("kernel lacks ") else f"drop reasons unavailable: {why}")
    return monitor


def inode(lab, ns: str) -> int:
    return os.fstat(lab.ns(ns).handle.fd).st_ino


def sock_in(lab, ns: str, kind: int = socket.SOCK_DGRAM, proto: int = 0, src: str = "") -> socket.socket:
    """A socket born in namespace *ns* (bound to *src* for UDP/TCP)."""
    with linux.in_netns(lab.ns(ns).handle.fd):
        sock = socket.socket(socket.AF_INET, kind | socket.SOCK_NONBLOCK, proto)
    if kind != socket.SOCK_RAW:
        sock.bind((src, 0))
    return sock


def send_udp(lab, ns: str, dst: str, dport: int, src: str = "") -> tuple[int, OSError | None]:
    """One UDP datagram from *ns*; its source port, and the error sendto gave, if any."""
    with sock_in(lab, ns, src=src) as sock:
        sport = sock.getsockname()[1]
        try:
            sock.sendto(b"nslab drop probe", (dst, dport))
        except OSError as exc:
            return sport, exc
    return sport, None


def the_drop(mon: drops.DropMonitor, mark: drops.Mark, netns: int, **header) -> drops.Drop:
    """The one drop in *netns* since *mark* whose header has these fields. It is waited for: it can
    come after the send returned and after a flush, since the sender first resolves its gateway's
    address (ARP) and only then sends the packet queued for it, and a loaded machine leaves packets
    to ksoftirqd (once, in ./run tests under six workers, r's drop had not been read after the flush).
    A flush then makes sure that no second one was still on its way."""
    __tracebackhide__ = True
    wait_until(lambda: [d for d in mon.since(mark, netns={netns}) if d.matches(**header)], 2.0, f"a drop with {header} in netns {netns}")
    assert mon.flush(timeout=2.0), f"flush did not complete: {mon.why}"
    seen = mon.since(mark, netns={netns})
    found = [d for d in seen if d.matches(**header)]
    assert len(found) == 1, f"expected one drop with {header} in netns {netns}, saw: {seen}"
    return found[0]


def test_forwarding_off_drops_on_the_incoming_device(make_lab, mon):
    lab = router_lab(make_lab, forward=False)
    mark = mon.position()
    sport, error = send_udp(lab, "h1", "10.0.2.1", 5001)
    assert error is None
    drop = the_drop(mon, mark, inode(lab, "r"), proto=17, src="10.0.1.1", dst="10.0.2.1", sport=sport, dport=5001)
    assert drop.reason == "IP_INADDRERRORS"
    assert (drop.via, drop.ifindex) == ("dev", lab.ns("r").link("ra").index)


def test_icmp_echo_and_tcp_syn_are_told_apart_by_their_headers(make_lab, mon):
    lab = router_lab(make_lab, forward=False)
    mark = mon.position()
    ident = int.from_bytes(os.urandom(2), "big")
    echo = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + (7).to_bytes(2, "big") + b"nslab"
    echo = echo[:2] + _checksum(echo).to_bytes(2, "big") + echo[4:]
    with sock_in(lab, "h1", socket.SOCK_RAW, socket.IPPROTO_ICMP) as icmp, sock_in(lab, "h1", socket.SOCK_STREAM) as tcp:
        icmp.sendto(echo, ("10.0.2.1", 0))
        assert tcp.connect_ex(("10.0.2.1", 8080)) in (0, 115)  # EINPROGRESS: the SYN left
        sport = tcp.getsockname()[1]
        r = inode(lab, "r")
        ping = the_drop(mon, mark, r, proto=1, icmp_type=8, icmp_id=ident, icmp_seq=7)
        syn = the_drop(mon, mark, r, proto=6, sport=sport, dport=8080)
    ra = lab.ns("r").link("ra").index
    assert (ping.reason, ping.ifindex, ping.src, ping.dst) == ("IP_INADDRERRORS", ra, "10.0.1.1", "10.0.2.1")
    assert (syn.reason, syn.ifindex) == ("IP_INADDRERRORS", ra)


def test_strict_rp_filter(make_lab, mon):
    # h1 sends from 10.0.2.99, which r routes out of rb: strict rp_filter on ra drops it
    lab = router_lab(make_lab, forward=False, extra=[Address("h1", "v1", "10.0.2.99/32")])
    lab.ns("h1").set_sysctl("net.ipv4.conf.v1.arp_announce", 2)  # ARP from 10.0.1.1, not the spoofed source
    for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.ra.rp_filter"):
        lab.ns("r").set_sysctl(key, 1)
    mark = mon.position()
    sport, error = send_udp(lab, "h1", "10.0.1.254", 5002, src="10.0.2.99")
    assert error is None
    drop = the_drop(mon, mark, inode(lab, "r"), src="10.0.2.99", dst="10.0.1.254", sport=sport, dport=5002)
    assert drop.reason == "IP_RPFILTER"
    assert drop.ifindex == lab.ns("r").link("ra").index


def _nft(lab, ns: str, hook: str, dport: int) -> None:
    rules = f"table inet nslab {{\n chain c {{\n  type filter hook {hook} priority 0;\n  udp dport {dport} drop\n }}\n}}\n"
    done = lab.ns(ns).run(["nft", "-f", "-"], input=rules.encode())
    assert done.returncode == 0, done.stderr.decode()


@NFT
def test_nftables_drop_on_input(make_lab, mon):
    lab = router_lab(make_lab, forward=False)
    _nft(lab, "r", "input", 5003)
    mark = mon.position()
    sport, _ = send_udp(lab, "h1", "10.0.1.254", 5003)
    drop = the_drop(mon, mark, inode(lab, "r"), proto=17, sport=sport, dport=5003)
    assert drop.reason == "NETFILTER_DROP"
    assert drop.ifindex == lab.ns("r").link("ra").index


@NFT
def test_nftables_drop_on_forward(make_lab, mon):
    lab = router_lab(make_lab, forward=True)
    _nft(lab, "r", "forward", 5004)
    mark = mon.position()
    sport, _ = send_udp(lab, "h1", "10.0.2.1", 5004)
    drop = the_drop(mon, mark, inode(lab, "r"), proto=17, src="10.0.1.1", dst="10.0.2.1", sport=sport, dport=5004)
    assert drop.reason == "NETFILTER_DROP"
    assert drop.ifindex == lab.ns("r").link("ra").index  # forwarded packets are attributed to where they came in
    assert not [d for d in mon.since(mark, netns={inode(lab, "h2")}) if d.kind != "ipv6"]  # nothing reached h2 to be dropped there (its own IPv6 link chatter aside)


@NFT
def test_nftables_drop_on_output_names_the_sender(make_lab, mon):
    lab = router_lab(make_lab, forward=True)
    _nft(lab, "h1", "output", 5005)
    mark = mon.position()
    sport, error = send_udp(lab, "h1", "10.0.2.1", 5005)
    assert isinstance(error, PermissionError)  # the kernel says EPERM to the sender
    drop = the_drop(mon, mark, inode(lab, "h1"), proto=17, sport=sport, dport=5005)
    assert drop.reason == "NETFILTER_DROP"
    # no skb->dev yet on the output path: the route's device (v1) names it
    assert (drop.via, drop.ifindex) == ("dst", lab.ns("h1").link("v1").index)


def test_unanswered_arp_drops_the_queued_packet(make_lab, mon):
    lab = router_lab(make_lab, forward=True)
    for key, value in (("mcast_solicit", 1), ("ucast_solicit", 0), ("app_solicit", 0), ("retrans_time_ms", 50)):
        lab.ns("h1").set_sysctl(f"net.ipv4.neigh.v1.{key}", value)
    mark = mon.position()
    sport, _ = send_udp(lab, "h1", "10.0.1.77", 5006)  # nobody has 10.0.1.77
    h1 = inode(lab, "h1")
    found = wait_until(lambda: [d for d in mon.since(mark, netns={h1}) if d.matches(sport=sport, dport=5006)], 3.0, "the NEIGH_FAILED drop")
    assert [(d.reason, d.ifindex) for d in found] == [("NEIGH_FAILED", lab.ns("h1").link("v1").index)]


def test_flush_reads_every_earlier_drop_and_since_starts_at_the_mark(make_lab, mon):
    lab = router_lab(make_lab, forward=False)
    r = inode(lab, "r")
    # Each datagram has a destination port of its own: two sockets' ephemeral source ports
    # may be the same (the kernel picks them at random; 21 of them collided once in a run).
    send_udp(lab, "h1", "10.0.2.1", 5007)
    assert mon.flush()
    mark = mon.position()
    times = []
    for dport in range(5100, 5120):
        send_udp(lab, "h1", "10.0.2.1", dport)
        start = time.monotonic()
        assert mon.flush(timeout=2.0)
        times.append(time.monotonic() - start)
        assert [d.dport for d in mon.since(mark, netns={r}) if d.dport == dport] == [dport]  # read, without waiting
    assert 5007 not in [d.dport for d in mon.since(mark, netns={r})]  # dropped before the mark
    assert sorted(times)[len(times) // 2] < 0.05, f"flush took {sorted(times)}"
    assert not [d for d in mon.since(mark, netns={inode(lab, "h2")}) if d.kind != "ipv6"]  # h2's own IPv6 link chatter (MLD, RS) is its own


def test_drop_reaches_since_within_milliseconds(make_lab, mon):
    """From the kernel's drop to `since`, with no flush: the median of five drops, since one drop
    crosses four threads in two processes (bpftrace's reader and the subscriber's writer in the run's
    main process, this one's reader), and on a loaded machine one of them can wait for a CPU (488 ms
    once, at load 5.7 on two cores, in a fresh clone's first ./run tests)."""
    lab = router_lab(make_lab, forward=False)
    r = inode(lab, "r")
    mark = mon.position()
    delays = []
    for dport in range(5008, 5013):
        sport, _ = send_udp(lab, "h1", "10.0.2.1", dport)
        drop = wait_until(lambda sport=sport: [d for d in mon.since(mark, netns={r}) if d.sport == sport], 2.0, "the drop read")[0]
        delays.append(time.monotonic_ns() - drop.time_ns)  # CLOCK_MONOTONIC, as time.monotonic_ns()
    assert sorted(delays)[len(delays) // 2] < 100e6, f"delays (ns): {sorted(delays)}"


def test_a_monitor_started_inside_a_lab_namespace_does_not_live_there(make_lab, mon):
    lab = router_lab(make_lab, forward=False)
    h1 = inode(lab, "h1")
    with linux.in_netns(lab.ns("h1").handle.fd):
        own = drops.DropMonitor().start()
    try:
        assert own.ready(timeout=30), own.why
        assert os.stat(f"/proc/{own._proc.pid}/ns/net").st_ino != h1  # else h1 could not be deleted
        assert h1 not in own.skipped
        mark = own.position()
        sport, _ = send_udp(lab, "h1", "10.0.2.1", 5009)
        assert the_drop(own, mark, inode(lab, "r"), sport=sport).reason == "IP_INADDRERRORS"
    finally:
        own.stop()
    assert own._proc.poll() is not None and not own.available


@pytest.fixture
def own_monitor():
    """Start a monitor of the test's own, not the run's shared one (a bpftrace it may stop), and
    return it attached; every monitor started is stopped after the test."""
    started: list[drops.DropMonitor] = []

    def start() -> drops.DropMonitor:
        monitor = drops.DropMonitor().start()
        started.append(monitor)
        assert monitor.ready(timeout=30), monitor.why
        return monitor

    yield start
    for monitor in started:
        monitor.stop()


def test_a_monitor_asked_to_stop_soon_ends_by_itself_without_a_failure_and_stop_reaps_it(own_monitor):
    """`stop_soon()` (the run's, at pytest_sessionfinish) signals bpftrace and returns; bpftrace
    ends by itself, which the monitor takes as asked for, not as bpftrace failing; `stop()` is
    then safe and leaves nothing."""
    own = own_monitor()
    proc = own._proc
    assert proc is not None and proc.poll() is None
    own.stop_soon()
    wait_until(lambda: proc.poll() is not None, 10.0, "bpftrace to end after SIGTERM")
    own.stop()
    assert not own.available and own.why == f"bpftrace exited (status {proc.returncode})"  # ended, not failed ("bpftrace exited: ...")
    assert not os.path.exists(f"/proc/{proc.pid}")  # reaped


def test_a_verdict_whose_drop_reports_are_held_up_says_they_were_not_all_read(make_lab, mon, own_monitor):
    """The lab's own bpftrace stopped (SIGSTOP) while r drops h1's ping: the final flush cannot
    end, so the evidence says the drop reasons were not all read (the explanation then reads r's
    counters and captures, as without drop reasons). Let go again, the same probe reads the drop's reason."""
    lab = router_lab(make_lab, forward=False)
    own = own_monitor()
    lab.drops = own
    os.kill(own._proc.pid, signal.SIGSTOP)
    try:
        held = lab.ns("h1").ping("10.0.2.1", timeout=0.3)
    finally:
        os.kill(own._proc.pid, signal.SIGCONT)
    assert not held.ok and held.reason is None, held  # no drop reason claimed: r's counters and captures tell
    assert held.evidence.drop_reasons == "the drop monitor had not relayed every report within 3 s: some may be missing", held.evidence.drop_reasons
    assert "(the kernel's drop reasons were not read: the drop monitor had not relayed" in held.evidence.trace()
    # Caught up first: the run's other drops that overflowed bpftrace's buffers while it was stopped
    # are reported as lost when it reads on, and the next probe would rightly count them.
    assert own.flush(10.0), own.why
    lost = own.lost
    freed = lab.ns("h1").ping("10.0.2.1", timeout=0.3)
    assert freed.reason is not None, freed
    # Reading on, bpftrace may block on its pipe while this process catches up, and the buffers
    # overflow again (in one ./run tests, 585 reports were lost during this probe): then, and only
    # then, the evidence rightly says that some reports were lost on their way.
    unread = freed.evidence.drop_reasons
    if own.lost == lost:
        assert unread is None, freed
    else:  # lost during the probe, or since
        assert unread is None or re.fullmatch(r"\d+ drop reports were lost on their way \(the monitor's buffers were full\): some may be this probe's", unread), freed


def test_a_verdict_whose_drop_was_pushed_out_of_the_window_says_so(make_lab, monkeypatch, own_monitor):
    """A monitor keeps the latest drops for since() (KEEP, 10,000): a burst of the machine's drops
    can push a probe's own out before its verdict reads them, and since() alone would then say
    nothing was dropped. Here a lab's own monitor keeps one: r drops h1's ping, then five drops in
    h2 follow it, and the verdict says reports were forgotten instead of naming no drop."""
    lab = router_lab(make_lab, forward=False)
    monkeypatch.setattr(importlib.import_module("nslab.kernel.drops.monitor"), "KEEP", 1)  # the package's `monitor` is the function
    own = own_monitor()
    assert own.keeps == 1
    lab.drops, lab.settle_early = own, False
    r, start = inode(lab, "r"), own.position()
    # r's drop is watched for as the monitor reads it, not through since(): the other workers' drops
    # can push it out of a window of one before the burst below would look for it there
    read_in_r = threading.Event()
    add = own._add

    def spied(line: str) -> None:
        add(line)
        drop = records.parse(line, own.reasons)
        if drop is not None and drop.netns == r:
            read_in_r.set()

    own._add = spied  # type: ignore[method-assign]
    with sock_in(lab, "h2") as sock:

        def after_the_probes_drop() -> None:
            if read_in_r.wait(5.0):
                for _ in range(5):
                    sock.sendto(b"nslab: after the probe's drop", ("127.0.0.1", 9))

        burst = threading.Thread(target=after_the_probes_drop)
        burst.start()
        held = lab.ns("h1").ping("10.0.2.1", timeout=0.5)
        burst.join(5.0)
    assert read_in_r.is_set(), "the monitor read no drop in r within 5 s"
    assert not held.ok and held.reason is None, held  # no drop reason claimed, none denied
    assert held.evidence.drop_reasons is not None and " drop reports read since the probe began were forgotten before it read them (the monitor keeps the latest 1): some may be this probe's" in held.evidence.drop_reasons, held.evidence.drop_reasons
    assert own.forgotten(start) >= 5


def test_a_flush_whose_markers_were_lost_in_a_full_buffer_sends_them_again(make_lab, monkeypatch, own_monitor):
    """A lab's own bpftrace stopped (SIGSTOP) while drops fill every CPU's buffer (one page each
    here, so that a few hundred do: the run's other monitors read these drops too): the markers a
    flush sends then are lost there, as any report would be. Let go, bpftrace reads on, and the
    flush ends with the markers it sent again (a flush's markers were lost this way twice in one
    afternoon's runs of ./run tests, after the held-up verdict's test above)."""
    lab = make_lab(Topology([Namespace("a", lo_up=True)]))
    monkeypatch.setenv("BPFTRACE_PERF_RB_PAGES", "1")
    own = own_monitor()
    sent: list[list[int]] = []
    first = threading.Event()
    send = own._send_markers

    def spied(marker, cpus):
        sent.append(list(cpus))
        done = send(marker, cpus)
        first.set()  # once they are in the full buffers: bpftrace is let go only then
        return done

    own._send_markers = spied  # type: ignore[method-assign]
    os.kill(own._proc.pid, signal.SIGSTOP)
    flushed: list[bool] = []
    try:
        saved = os.sched_getaffinity(0)
        try:
            with sock_in(lab, "a") as sock:
                for cpu in own._cpus:  # each CPU's own buffer, filled by drops made on it
                    os.sched_setaffinity(0, {cpu})
                    for _ in range(300):
                        sock.sendto(b"nslab: fill the buffer", ("127.0.0.1", 9))
        finally:
            os.sched_setaffinity(0, saved)
        flushing = threading.Thread(target=lambda: flushed.append(own.flush(10.0)))
        flushing.start()
        assert first.wait(5.0), "the flush sent no marker"
    finally:
        os.kill(own._proc.pid, signal.SIGCONT)
    flushing.join(15.0)
    assert flushed == [True], (flushed, sent, own.why)
    assert len(sent) >= 2, f"the first markers were read, not lost: {sent}"  # the case under test happened


# -- unavailable: one clear line, no exception --------------------------------------------------


def test_without_bpftrace_on_path_says_how_to_install_it(tmp_path, monkeypatch):
    for tool in ("setpriv", "unshare", "mount", "mountpoint", "sh", "cat"):
        found = shutil.which(tool)
        if found:
            (tmp_path / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(drops.OFF_VARIABLE, raising=False)  # a TCG guest of nslab matrix sets it
    monitor = drops.DropMonitor().start()
    assert not monitor.ready(timeout=5) and not monitor.available
    assert "bpftrace is not installed (apt-get install bpftrace)" in monitor.why
    mark = monitor.position()
    assert monitor.since(mark) == [] and monitor.flush() is False
    monitor.stop()


UNPRIVILEGED = {
    "another user": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"],
    "root of a user namespace": ["unshare", "--user", "--map-root-user", "--"],
}
REPORT = "from nslab.kernel import drops; m = drops.monitor(); print(m.ready(5), m.available, m.why, sep='|')"


@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_unprivileged_gets_a_clear_why(who, nslab_sandbox):  # the sandbox: its mount namespace keeps the copy's bind mount (tests/nobody.py)
    if os.geteuid() != 0 and who == "another user":
        pytest.skip("needs root to become another user; this run is not root")
    if who == "another user":  # from a copy that user can read: the checkout may sit under a mode-700 home
        with nobody.readable_copy() as copy:
            argv = [*UNPRIVILEGED[who], nobody.interpreter(), "-c", REPORT]
            done = subprocess.run(argv, cwd=copy / "project", env=nobody.nobody_env(copy), capture_output=True, timeout=60, text=True)
    else:
        root = Path(__file__).resolve().parents[1]
        done = subprocess.run([*UNPRIVILEGED[who], sys.executable, "-c", REPORT], cwd=root, capture_output=True, timeout=60, text=True,
                              env={**{k: v for k, v in os.environ.items() if k != drops.OFF_VARIABLE}, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    ready, available, why = done.stdout.strip().split("|")
    assert (ready, available) == ("False", "False")
    assert why.startswith("not root: drop reasons need root") and "\n" not in why


# -- decoding, without the kernel --------------------------------------------------------------

FORMAT_LINE = 'print fmt: "skbaddr=%p reason: %s", REC->skbaddr, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 87, "IP_INADDRERRORS" }, { 0x10000, "SUBSYS" })'


def test_reason_names_come_from_the_format_file():
    assert drops.reason_names("name: kfree_skb\n" + FORMAT_LINE) == {2: "NOT_SPECIFIED", 87: "IP_INADDRERRORS", 0x10000: "SUBSYS"}
    assert drops.reason_names("no table here") == {}


def test_icmp_error_quotes_the_offending_header():
    inner = _ipv4(17, "10.0.1.1", "10.0.2.1", 0x1234) + (40000).to_bytes(2, "big") + (53).to_bytes(2, "big") + bytes(4)
    packet = _ipv4(1, "10.0.1.254", "10.0.1.1", 0x99) + bytes([3, 1, 0, 0, 0, 0, 0, 0]) + inner
    fields = drops.decode(drops.ETH_P_IP, packet)
    assert (fields["proto"], fields["icmp_type"], fields["icmp_code"], fields["ip_id"]) == (1, 3, 1, 0x99)
    assert fields["inner"] == drops.Inner("10.0.1.1", "10.0.2.1", 17, 0x1234, sport=40000, dport=53)
    assert drops.decode(drops.ETH_P_IP, packet[:10]) == dict(kind="ipv4", src="", dst="", proto=0, ip_id=0)  # truncated: nothing guessed


def _ipv4(proto: int, src: str, dst: str, ident: int) -> bytes:
    return bytes([0x45, 0]) + (20).to_bytes(2, "big") + ident.to_bytes(2, "big") + bytes([0, 0, 64, proto, 0, 0]) + socket.inet_aton(src) + socket.inet_aton(dst)


def _checksum(data: bytes) -> int:
    total = sum(int.from_bytes(data[i : i + 2].ljust(2, b"\0"), "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_a_kernel_without_drop_reasons_says_so_as_a_missing_feature():
    """Before Linux 5.17 skb:kfree_skb had no reason (Debian's 5.10: the matrix shows it as a
    kernel difference); the format files below are 5.10's and 6.1's, abridged."""
    old = ("name: kfree_skb\nformat:\n\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n"
           "\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;\n\n"
           'print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location\n')
    new = old.replace("\n\n", "\n\tfield:enum skb_drop_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n\n").replace(
        "REC->location\n", 'REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" })\n')
    assert drops.records.lacking(old) == drops.records.LACKS_REASONS and drops.records.LACKS_REASONS.startswith("kernel lacks ")
    assert drops.records.lacking(new) is None and drops.records.reason_names(new) == {2: "NOT_SPECIFIED", 3: "NO_SOCKET"}



def test_turned_off_by_the_environment_says_so(monkeypatch):
    monkeypatch.setenv(drops.OFF_VARIABLE, "off")
    assert drops.missing() == "turned off (NSLAB_DROP_REASONS=off)"
    monitor = drops.DropMonitor().start()
    assert not monitor.ready(timeout=5) and monitor.why == "turned off (NSLAB_DROP_REASONS=off)"
    monitor.stop()


def test_ipv6_link_chatter_is_not_reported_and_an_echo_is(make_lab, mon):
    """MLD and router discovery are left out of the drops, as out of the captures: IPv6 off in
    h2, a router solicitation and an echo request sent there are both dropped, one reported."""
    from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_RS, IPv6
    from scapy.layers.l2 import Ether

    lab = make_lab(Topology(["h1", Namespace("h2", sysctls={"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1})], veths=[Veth("h1", "v1", "h2", "v2")]))
    to = lab.ns("h2").link("v2").mac
    with linux.in_netns(lab.ns("h1").handle.fd):
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    mark = mon.position()
    with raw:
        raw.bind(("v1", 0))
        for icmp in (ICMPv6ND_RS(), ICMPv6EchoRequest(id=0x5A5A, seq=1)):
            raw.send(bytes(Ether(dst=to) / IPv6(src="fe80::1", dst="fe80::2") / icmp))
    echo = the_drop(mon, mark, inode(lab, "h2"), proto=58, icmp_type=128)
    assert echo.icmp_id == 0x5A5A
    assert not [d for d in mon.since(mark, netns={inode(lab, "h2")}) if d.icmp_type == 133]
