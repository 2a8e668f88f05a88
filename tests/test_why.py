"""`nslab why SRC DST [PORT]` on a machine as it is, and the fixes it verifies.

Never on the real machine: each case starts a child that enters a private
sandbox of its own (`unshare --net --mount`, a tmpfs on /run/netns), builds
there a state learners get wrong (tests/data/why/*.sh), runs `nslab why`,
snapshots the namespaces before and after it (unchanged: a ping changes only
neighbour entries), applies the verified fix nslab printed, and asks again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from nslab.grading import jail
from nslab.kernel import drops
from nslab.kernel.drops import shared

pytestmark = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))

DATA = Path(__file__).parent / "data" / "why"

# Carrier and operational state (and a route's `linkdown`, which follows the carrier) are
# linkwatch's to settle, up to a second after a link comes up: not compared.
SNAPSHOT = r"""
snapshot() {
  echo "== host"; ip -o link | sed -e 's/ link-netnsid [0-9]*//' -e 's/ state [A-Z]*//' -e 's/NO-CARRIER,//' -e 's/,LOWER_UP//' -e 's/,M-DOWN//'; ip -4 -o addr; ip route | sed 's/ linkdown//'
  sysctl -n net.ipv4.ip_forward; nft list ruleset; ls /run/netns
  for ns in $(ls /run/netns); do
    echo "== $ns"; ip -n "$ns" -o link | sed -e 's/ link-netnsid [0-9]*//' -e 's/ state [A-Z]*//' -e 's/NO-CARRIER,//' -e 's/,LOWER_UP//' -e 's/,M-DOWN//'; ip -n "$ns" -4 -o addr; ip -n "$ns" route | sed 's/ linkdown//'
    ip netns exec "$ns" sysctl -n net.ipv4.ip_forward; ip netns exec "$ns" nft list ruleset
  done
}
"""

# $1 state script, $2 output dir, $3 python, then the arguments of `nslab why`.
CHILD = (
    SNAPSHOT
    + r"""
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/netns
ip link set lo up
out=$2; py=$3
OUT=$out sh -e "$1"
shift 3
set -- $(echo "$@" | sed "s/@PID/$(cat "$out/pid" 2>/dev/null)/")
set +e
snapshot > "$out/before"
"$py" -m nslab.cli.main why "$@" --json ${SVG:+--svg "$out/path.svg"} > "$out/why.json" 2> "$out/why.err"
echo $? > "$out/why.status"
snapshot > "$out/after"
for ns in host $(ls /run/netns); do
  n=$([ "$ns" = host ] || echo "-n $ns")
  ip $n neigh show nud incomplete | sed "s/^/$ns /"; ip $n neigh show nud failed | sed "s/^/$ns /"
done > "$out/unresolved"
"$py" -c 'import json, sys
fixes = json.load(open(sys.argv[1])).get("fixes") or [{"command": "false"}]
kind = sys.argv[2]
pick = next((f for f in fixes if kind in [c["kind"] for c in f.get("changes", [])]), fixes[0])
print(pick["command"])' "$out/why.json" "${PREFER:-any}" > "$out/fix.sh"
sh "$out/fix.sh" > "$out/fix.out" 2>&1
"$py" -m nslab.cli.main why "$@" --json --no-fixes --no-drop-reasons > "$out/again.json" 2>&1
echo $? > "$out/again.status"
"""
)

# state, SRC, DST, extra flags, the cause nslab must name, the kind of fix the test applies
STATES = [
    ("no-host-route", "host", "container1", ["--no-drop-reasons"], "NO_ROUTE_AT_SENDER", "route"),
    ("no-return-route", "host", "container1", ["--no-drop-reasons"], "NO_RETURN_ROUTE", "route"),
    ("lo-down", "@PID", "127.0.0.1", ["--no-drop-reasons"], "LOOPBACK_DOWN", "lo"),
    ("not-on-bridge", "container1", "container2", ["--no-drop-reasons"], "NOT_ON_BRIDGE", "master"),
    ("forwarding-off", "ns1", "ns2", [], "FORWARDING_OFF", "forwarding"),
    # beyond the host's uplink lies a namespace nslab is not told about (as the internet is): nslab sees
    # the request leave and nothing more, so the probe waits out its deadline
    ("no-masquerade", "container1", "203.0.113.1", ["--no-drop-reasons", "--timeout", "0.5"], "LOST_VIA_DEFAULT_ROUTE", "masquerade"),
]


def why_in_sandbox(tmp_path: Path, state: str, args: list[str], prefer: str = "any", svg: bool = False) -> dict:
    """Build *state* in a sandbox of its own (its processes die with it), run `nslab why ARGS` there, apply a fix, ask again."""
    out = tmp_path / state
    out.mkdir()
    subprocess.run(
        [
            "unshare",
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            CHILD,
            "child",
            str(DATA / f"{state}.sh"),
            str(out),
            sys.executable,
            *args,
        ],
        check=True,
        timeout=60,
        # $NSLAB_DROPS: nslab why follows the run's drop monitor
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PREFER": prefer, "SVG": "yes" if svg else "",
             **{k: v for k, v in os.environ.items() if k == shared.ENV}},
    )
    read = lambda name: (out / name).read_text()  # noqa: E731
    return {
        "why": json.loads(read("why.json")) if read("why.json").strip() else {"error": read("why.err")},
        "status": int(read("why.status")),
        "before": read("before"),
        "after": read("after"),
        "unresolved": read("unresolved"),
        "fix": read("fix.sh").strip(),
        "fix_out": read("fix.out"),
        "again": json.loads(read("again.json")),
        "again_status": int(read("again.status")),
        "svg": out / "path.svg",
        "pid": read("pid").strip() if (out / "pid").exists() else None,
    }


@pytest.fixture(scope="module")
def runs(nslab_sandbox, tmp_path_factory):
    """`runs(state)`: STATES' run of *state*, made once per process (xdist spreads
    the tests over workers: each worker runs only the states its tests read)."""
    tmp, done = tmp_path_factory.mktemp("why"), {}
    spec = {s[0]: s for s in STATES}

    def run(state: str) -> dict:
        if state not in done:
            _, src, dst, flags, _, kind = spec[state]
            done[state] = why_in_sandbox(tmp, state, [src, dst, *flags], prefer=kind, svg=state == "no-masquerade")
        return done[state]

    return run


@pytest.mark.parametrize("state, cause, kind", [(s[0], s[4], s[5]) for s in STATES])
def test_why_names_the_cause_and_a_verified_fix_that_works(runs, state, cause, kind):
    got = runs(state)
    why = got["why"]
    assert got["status"] == 1, why  # the probe failed
    assert why["cause"] == cause, why["explanation"]
    assert got["after"] == got["before"], "nslab why changed the namespaces it probed"
    assert any(kind in [c["kind"] for c in f["changes"]] for f in why["fixes"]), why["fixes"] or why["fix_search"]
    assert got["again_status"] == 0 and got["again"]["ok"], f"after `{got['fix']}` ({got['fix_out'].strip()}): {got['again']['summary']}"


def test_why_gives_back_the_neighbour_entries_its_probe_left_unresolved(runs):
    """container1's ARP request for 10.0.0.3 goes unanswered (veth2 is on no bridge): the entry its
    probe started is still INCOMPLETE when `nslab why` ends, and would fail the learner's next ping
    once its retries ran out, fix applied or not. nslab why deletes it; the test's own probe after the
    fix once failed so (ICMP host unreachable from 10.0.0.2)."""
    got = runs("not-on-bridge")
    assert got["status"] == 1 and got["unresolved"] == "", got["unresolved"]


def test_every_state_gets_a_verified_fix_within_the_search_budget(runs):
    """The contract a user sees: a verified fix, found within `--budget` (3 s). How fast is a
    figure of the machine's load, not of the kernel (at load 10 on 2 cores the median was 1.1 s,
    on a quiet machine 0.06 s): the README quotes it, measured, and no test bounds it tighter."""
    got = {s[0]: runs(s[0])["why"] for s in STATES}
    times = {state: why["fixes"][0]["seconds"] for state, why in got.items() if why.get("fixes")}
    assert len(times) == len(STATES), f"states without a verified fix: {set(got) - set(times)}"
    assert max(times.values()) <= 3.0, times
    print(f"time to the first verified fix: median {statistics.median(times.values()):.2f} s, {times}")


def test_the_fix_is_typed_as_the_learner_would_type_it(runs):
    why = runs("no-return-route")["why"]
    assert "ip netns exec container1 ip route add default dev ceth1" in [f["command"] for f in why["fixes"]]
    assert why["target"] == "container1" and why["dst"] == "172.16.0.2"
    hops = [(h["ns"], h["dev"], h["direction"]) for h in why["trace"] if h["role"] == "request"]
    assert hops == [("host", "veth1", "out"), ("container1", "ceth1", "in")]
    assert [f["command"] for f in runs("not-on-bridge")["why"]["fixes"]][0] == "ip link set veth2 master br0"  # the host: no prefix
    pid = runs("lo-down")["pid"]
    assert runs("lo-down")["why"]["src"] == f"pid{pid}"
    assert runs("lo-down")["fix"] == f"nsenter -t {pid} -n ip link set lo up"  # a namespace known by its process
    said = runs("lo-down")["why"]["explanation"] + runs("not-on-bridge")["why"]["explanation"]
    assert "ip netns exec pid" not in said and "ip netns exec host " not in said, said  # the explanation's commands too


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_svg_draws_the_path_the_stop_and_the_fix_and_chromium_renders_it(runs, tmp_path):
    got = runs("no-masquerade")
    svg = got["svg"].read_text()
    marks = re.findall(r"\d+ (?:request|reply|error|arp request|arp reply) (?:in|out)", svg)
    for text in ("1 request out", "2 request in", "4 request out", "stopped here: left by the default route and never arrived", "verified fix", "masquerade"):
        assert text in svg, f"{text!r} not drawn; the marks drawn: {marks}; the explanation: {got['why']['explanation']}"
    png = tmp_path / "path.png"
    argv = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,1100", f"--screenshot={png}", "--dump-dom", got["svg"].as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cluster_container1" in proc.stdout and "stopped here" in proc.stdout  # the DOM chromium built from the SVG


@pytest.mark.skipif(drops.missing() is not None, reason=f"the kernel's drop reasons cannot be read here: {drops.missing()}")
def test_a_drop_in_the_namespace_why_runs_in_is_read(nslab_sandbox, tmp_path):
    got = why_in_sandbox(tmp_path, "host-input-drop", ["c1", "10.89.0.1"])
    why = got["why"]
    assert why["reason"] == "NETFILTER_DROP" and why["where"]["ns"] == "host" and why["decided_early"], why
    assert why["fixes"][0]["command"] == "nft delete rule inet guard in handle 2", why["fixes"]
    assert got["again_status"] == 0, got["again"]["summary"]


def test_bad_input_is_one_line_naming_the_argument(nslab_sandbox):
    script = 'ip netns add ns1; "$0" -m nslab.cli.main why nosuch 10.0.0.1; echo "status $?"; "$0" -m nslab.cli.main why ns1 10.0.0.1 70000; echo "status $?"'
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", "mount --make-rprivate / && mount -t tmpfs tmpfs /run/netns && " + script, sys.executable],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    errors = proc.stderr.strip().splitlines()
    assert errors == [
        "nslab why: no namespace 'nosuch': give a name from `ip netns` (host, ns1), 'host' for this one, or a PID",
        "nslab why: PORT: 70000 is not a TCP port; give 1 to 65535",
    ]
    assert proc.stdout.split() == ["status", "2", "status", "2"]


def test_grade_fixes_shows_the_verified_fixes_under_each_failed_probe_check(nslab_sandbox, tmp_path):
    sample = Path(__file__).parent.parent / "exercises" / "host-to-container" / "samples" / "missing-return-route.sh"
    argv = [sys.executable, "-m", "nslab.cli.main", "grade", "host-to-container", str(sample), "--fixes", "--json", str(tmp_path / "grade.json")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    checks = {c["description"]: c for c in json.loads((tmp_path / "grade.json").read_text())["submissions"][0]["checks"]}
    ping = checks["host pings 172.16.0.2"]
    assert not ping["passed"] and "ip netns exec container1 ip route add default dev ceth1" in ping["fixes"]
    assert all(not c["fixes"] for c in checks.values() if c["passed"])
    assert "             fix (verified): ip netns exec container1 ip route add default dev ceth1" in proc.stdout.splitlines()
    plain = subprocess.run(argv[:6], capture_output=True, text=True, timeout=120, check=False)
    assert "fix (verified)" not in plain.stdout  # only when the instructor asks


def test_fixes_for_a_failed_probe_of_a_lab_as_a_scenario_failure_shows_them(lab):
    """The library call the pytest plugin makes for --nslab-fixes: a lab of nslab's own, in-process."""
    from nslab import Address, Namespace, Route, Topology, Veth
    from nslab.advice.fixes import fixes_for
    from nslab.advice.path import marks_of, overlay_marks
    from nslab.views.render import to_dot

    lab.build(
        Topology(
            [Namespace("host", lo_up=True), Namespace("container1", lo_up=True)],
            veths=[Veth("host", "veth1", "container1", "ceth1")],
            addresses=[Address("host", "veth1", "10.0.0.10/24"), Address("container1", "ceth1", "172.16.0.2/24")],
            routes=[Route("host", "172.16.0.0/24", dev="veth1")],
        )
    )
    result = lab.ns("host").ping("172.16.0.2")
    lines = fixes_for(result, lab, prefixes={"host": ""})
    assert "ip netns exec container1 ip route add default dev ceth1" in lines
    marks = marks_of(result, [[{"ns": "container1", "kind": "route", "commands": [["ip", "route", "add", "default", "dev", "ceth1"]], "dev": "ceth1"}]])
    assert [(s["n"], s["ns"], s["role"], s["direction"]) for s in marks["steps"]] == [(1, "host", "request", "out"), (2, "container1", "request", "in")]
    dot = overlay_marks(to_dot(lab.topology), json.loads(json.dumps(marks)))  # as another process would draw it
    assert '"container1/#stop"' in dot and '"container1/#fix0.0"' in dot and dot.rstrip().endswith("}")
    lab.ns("container1").add_route("default", dev="ceth1")
    assert lab.ns("host").ping("172.16.0.2").replied
    assert fixes_for(lab.probes[-1], lab) == []  # nothing to fix
