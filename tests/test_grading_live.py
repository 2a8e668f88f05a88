"""`nslab grade EXERCISE --live` grades what was built by hand, read-only.

Never on the real machine: each test starts a child that enters a private
sandbox of its own (`unshare --net --mount`, a tmpfs on /run/netns), builds
a sample there as a student would by hand (the exercise's `given` first,
as the VM provides it), snapshots its state, runs the live grader, and
snapshots again: same links, addresses, routes, namespaces and /run/netns.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nslab.grading import exercise as ex
from nslab.grading import jail

pytestmark = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))

# IPv4 only: IPv6 link-local addresses change by themselves (DAD ends).
SNAPSHOT = r"""
ip -o link; ip -4 -o addr; ip route; ls -A /run/netns
for ns in $(ip netns | cut -d' ' -f1); do ip -n "$ns" -o link; ip -n "$ns" -4 -o addr; ip -n "$ns" route; done
"""

CHILD = r"""
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/netns
ip link set lo up
sh -e "$1"
sh "$2"
set +e
snapshot() { SNAPSHOT }
snapshot > "$3/before"
"$4" -m nslab.cli.main grade "$5" --live --json "$3/live.json" > "$3/out"
echo $? > "$3/status"
snapshot > "$3/after"
""".replace("SNAPSHOT", SNAPSHOT.replace("\n", " ; ").strip(" ;"))


def grade_live(tmp_path, name: str, sample: str) -> tuple[dict, int, str]:
    exercise = ex.load(name)
    given = tmp_path / "given.sh"
    given.write_text(exercise.given)
    script = ex.EXERCISES / name / "samples" / f"{sample}.sh"
    subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", CHILD, "child", str(given), str(script), str(tmp_path), sys.executable, name],
        check=True,
        timeout=60,
    )
    before, after = (tmp_path / "before").read_text(), (tmp_path / "after").read_text()
    assert after == before, "live grading changed the machine it graded"
    assert "container1" in before or "ns1" in before  # the snapshot saw the student's namespaces
    grade = json.loads((tmp_path / "live.json").read_text())["submissions"][0]
    return grade, int((tmp_path / "status").read_text()), (tmp_path / "out").read_text()


@pytest.mark.parametrize(
    "name, sample, score",
    [
        ("host-to-container", "correct", 18),
        ("host-to-container", "missing-return-route", 8),
        ("bridge-three-containers", "correct", 37),
        ("veth-two-namespaces", "wrong-prefix", 11),
    ],
)
def test_live_grading_matches_the_jailed_grade_and_changes_nothing(nslab_sandbox, tmp_path, name, sample, score):
    grade, status, out = grade_live(tmp_path, name, sample)
    assert grade["submission"] == "live"
    assert grade["score"] == score
    assert status == (0 if score == grade["total"] else 1)
    assert out.startswith(f"live: {score}/{grade['total']} points")


def test_live_grading_explains_the_missing_return_route(nslab_sandbox, tmp_path):
    grade, _, out = grade_live(tmp_path, "host-to-container", "missing-return-route")
    ping = next(c for c in grade["checks"] if c["id"] == "ping-host-container")
    assert ping["cause"] == "NO_RETURN_ROUTE"
    assert "container1 has no route back to 10.0.0.10" in ping["explanation"]
    assert f"why:  {ping['explanation']}" in out
