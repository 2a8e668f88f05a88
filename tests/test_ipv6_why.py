"""`nslab why` on IPv6 setups made with plain `ip -6` commands (tests/data/why/ipv6-*.sh).

As tests/test_why.py does it, never on the real machine: a child enters a sandbox
of its own (`unshare --net --mount --pid`, a tmpfs on /run/netns), builds the
state, asks `nslab why` (its fix search verifies a fix on a copy), snapshots the
namespaces before and after (unchanged), applies the fix the cause calls for, and
asks again: the probe gets through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nslab.grading import jail
from nslab.kernel.drops import shared

pytestmark = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))

DATA = Path(__file__).parent / "data" / "why"

# $1 state script, $2 the fix (sh), $3 settle (1: wait until the kernel's own link-local addresses
# are done with DAD: a router solicits from one, so until then it cannot resolve for a forwarded
# packet, and the probe after the fix would see that instead), $4 python, then `nslab why`'s arguments.
CHILD = r"""
tentative() { ip -6 -o addr show scope link tentative; ip -all netns exec ip -6 -o addr show scope link tentative; }
snapshot() { for ns in $(ls /run/netns) ; do ip -n "$ns" -o link | sed -e 's/ state [A-Z]*//' -e 's/NO-CARRIER,//'; ip -n "$ns" -6 -o addr show scope global | sed -e 's/ valid_lft.*//'; ip -n "$ns" -6 route | grep -v '^fe80::/64'; done; }
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/netns
ip link set lo up
sh -e "$1"
fix=$2; settle=$3; py=$4; shift 4
set +e
if [ "$settle" = 1 ]; then for i in $(seq 100); do tentative | grep -q inet6 || break; sleep 0.05; done; fi
before=$(snapshot)
"$py" -m nslab.cli.main why "$@" --json
echo "status $?"
[ "$before" = "$(snapshot)" ] && echo "unchanged" || echo "changed"
sh -e -c "$fix"
"$py" -m nslab.cli.main why "$@" --json --no-fixes --no-drop-reasons
echo "status $?"
"""

# state, SRC, DST, the cause, where, the fix applied (as the explanation names it), settle
STATES = [
    ("ipv6-no-return-route", "host", "container1", "NO_RETURN_ROUTE", ("container1", "ceth1"), "ip -n container1 -6 route add default dev ceth1", 1),
    ("ipv6-forwarding-off", "ns1", "ns2", "FORWARDING_OFF", ("router", "r1"), "ip netns exec router sysctl -qw net.ipv6.conf.all.forwarding=1", 1),
    (
        "ipv6-tentative",
        "host",
        "container1",
        "ADDRESS_TENTATIVE",
        ("container1", "ceth1"),
        "ip -n container1 addr del fd00:10::2/64 dev ceth1 && ip -n container1 addr add fd00:10::2/64 dev ceth1 nodad",
        0,  # its DAD takes a minute, on purpose
    ),
]


@pytest.mark.parametrize("state, src, dst, cause, where, fix, settle", STATES, ids=[s[0] for s in STATES])
def test_why_names_the_ipv6_cause_and_the_fix_gets_through(nslab_sandbox, state, src, dst, cause, where, fix, settle):
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", CHILD, "child", str(DATA / f"{state}.sh"), fix, str(settle), sys.executable, src, dst],
        capture_output=True, text=True, timeout=90, check=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **{k: v for k, v in os.environ.items() if k == shared.ENV}},  # the run's drop monitor
    )  # fmt: skip
    first, _, rest = proc.stdout.partition("\nstatus ")
    status, verdict, again = rest.split("\n", 2)
    why = json.loads(first)
    assert status == "1" and why["cause"] == cause, why.get("explanation", proc.stderr)
    assert (why["where"]["ns"], why["where"]["dev"]) == where, why["explanation"]
    assert ":" in why["dst"] and verdict == "unchanged", verdict
    assert why["fixes"], why["fix_search"]["note"]  # a fix verified on a copy, in the namespace the cause names
    assert why["fixes"][0]["command"].startswith(f"ip netns exec {where[0]} "), why["fixes"]
    after = json.loads(again.rpartition("\nstatus ")[0])
    assert again.rstrip().endswith("status 0") and after["ok"], f"after `{fix}`: {after['summary']}"


def test_bad_ipv6_input_is_one_line_naming_the_argument(nslab_sandbox):
    script = (
        'ip netns add ns1; "$0" -m nslab.cli.main why ns1 fd00::zz; echo "status $?"; '
        '"$0" -m nslab.cli.main why ns1 fe80::1; echo "status $?"; "$0" -m nslab.cli.main why ns1 fd00::1%eth0; echo "status $?"'
    )
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", "mount --make-rprivate / && mount -t tmpfs tmpfs /run/netns && " + script, sys.executable],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert proc.stderr.strip().splitlines() == [
        "nslab why: DST: 'fd00::zz' is not an IPv6 address (e.g. fd00::2, or fe80::1%eth0 with the interface of a link-local one)",
        "nslab why: DST: 'fe80::1' is link-local: add the interface of SRC it is on, e.g. fe80::1%eth0",
        "nslab why: DST: 'fd00::1%eth0': only a link-local IPv6 address takes an interface after %; give fd00::1",
    ]
    assert proc.stdout.split() == ["status", "2"] * 3
