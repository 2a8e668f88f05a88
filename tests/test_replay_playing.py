"""`nslab replay` playing what tutorials use: Docker and kind by a stand-in in the stage, `nc`,
the expectation the words give a probe, the shown output compared, and a draft exercise.

Tutorials: tests/data/tutorials/docker.md (a given container by its PID, one without network wired
by hand, one sharing its namespace, a kind node), words.md (probes the text says fail, one it does
not, an internet address).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nslab.grading.exercise import load
from tests.host import host_state
from tests.test_replay import DATA, by_line, needs_root, replay

needs_nc = pytest.mark.skipif(shutil.which("nc") is None, reason="the tutorials' nc is missing: apt-get install netcat-openbsd")


@needs_root
def test_docker_and_kind_are_played_in_the_stage_and_a_shown_pid_becomes_the_stages(nslab_sandbox):
    before = host_state()
    status, done = replay(str(DATA / "docker.md"))
    assert host_state() == before, "the replay changed the machine"
    steps = by_line(done)
    assert all(s["kind"] != "skipped" for s in done["steps"]), [s for s in done["steps"] if s["kind"] == "skipped"]
    pid = steps[6]["output"][-1]  # the given container's PID in the stage, not the 7863 the tutorial shows
    assert pid.isdigit() and pid != "7863" and steps[6]["note"].startswith(f"prints {pid} where the tutorial shows 7863")
    assert steps[8]["command"] == f"ln -s /proc/{pid}/ns/net /var/run/netns/web" and steps[8]["ok"]
    assert any("eth0@" in line and "state UP" in line for line in steps[9]["output"])  # Docker's default bridge: eth0 up
    assert steps[9]["findings"] == []  # as the tutorial shows it
    assert steps[20]["findings"] == [{"kind": "output", "text": "h1's state is DOWN, the tutorial shows UP"}]  # it is brought up 3 lines later
    assert steps[26]["output"][-1].startswith("c1@") and "10.2.0.2/24" in steps[26]["output"][-1]  # --net=container: shares the namespace
    assert steps[27]["ok"] and steps[27]["verdict"]["ok"]  # the host reaches the container it wired by hand
    assert "172.18.0.3/16" in steps[33]["output"][-1]  # kind-worker, node 2 of the cluster lab
    assert done["summary"]["findings"] == {"output": 1} and status == 1


@needs_root
@needs_nc
def test_words_set_a_probes_expectation_and_nc_runs(nslab_sandbox, tmp_path):
    status, done = replay(str(DATA / "words.md"), "--exercise", str(tmp_path / "draft"))
    steps = by_line(done)
    assert steps[16]["expect"] == "fail" and steps[16]["ok"] is False and steps[16]["findings"] == []  # "still unsuccessful"
    assert steps[16]["verdict"]["cause"] == "LINK_DOWN"
    assert steps[25]["kind"] == "server" and steps[26]["ok"] and steps[26]["findings"] == []  # nc on both ends, not skipped
    assert steps[32]["expect"] == "fail" and steps[32]["verdict"]["cause"] == "PORT_CLOSED" and steps[32]["findings"] == []  # "you will not be able to"
    assert steps[38]["kind"] == "skipped" and "4.2.2.1 is outside every network" in steps[38]["note"]  # never sent
    assert [f["kind"] for f in steps[44]["findings"]] == ["failed"]  # nothing says it fails: a finding
    assert done["summary"]["findings"] == {"failed": 1} and status == 1
    exercise = load(tmp_path / "draft" / "exercise.toml")  # the grader's own parser takes the draft
    checks = {c.id: c for c in exercise.checks}
    assert {"a", "b", "a-va", "b-vb", "addr-a-va", "addr-b-vb", "lo-b"} <= set(checks)
    assert checks["addr-b-vb"].args == {"ns": "b", "dev": "vb", "cidr": "10.3.0.2/24"}
    assert checks["ping-a-10.3.0.2"].args == {"from": "a", "to": "10.3.0.2"}  # answered in the final state, though not at line 16
    assert checks["ping-a-10.3.9.9"].args == {"from": "a", "to": "10.3.9.9", "expect": "no-reply", "cause": "NO_ROUTE_AT_SENDER"}
    assert checks["addr-b-vb"].hint == "line 22 of the tutorial: ip -n b addr add 10.3.0.2/24 dev vb"


def test_exercise_refuses_to_overwrite_a_draft(tmp_path):
    (tmp_path / "exercise.toml").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "nslab.cli.main", "replay", str(DATA / "words.md"), "--exercise", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == f"nslab replay: --exercise: {tmp_path / 'exercise.toml'} exists; remove it or choose another DIR"
