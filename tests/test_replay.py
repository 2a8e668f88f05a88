"""`nslab replay TUTORIAL`: a tutorial's commands, step by step, in a sandbox of their own.

The tutorials here are nslab's own test data (tests/data/tutorials/): one with
a typo, a hang and a step the author marks `# expect: fail`; one that needs
what its VM already had (`--given`); one with every way a page shows a command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nslab.grading import jail
from nslab.replay.tutorial import commands
from tests.host import host_state

DATA = Path(__file__).parent / "data" / "tutorials"
needs_root = pytest.mark.skipif(jail.unavailable() is not None, reason=str(jail.unavailable()))


def replay(*args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "nslab.cli.main", "replay", *args, "--json"], capture_output=True, text=True, timeout=240, check=False)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def by_line(done: dict) -> dict[int, dict]:
    return {step["line"]: step for step in done["steps"]}


def test_commands_come_from_fences_prompts_inline_spans_and_leading_words():
    found = commands((DATA / "formats.txt").read_text())
    assert [(c.line, c.text, c.expect) for c in found] == [
        (8, "ip netns add red", None),  # a prompted Jekyll block: its output line 'red' is not a command
        (9, "ip netns list", None),
        (17, "ip link add a0 type veth peer name b0", None),  # a continued line, joined
        (19, "ip link set b0 netns red", "ok"),  # sudo -E stripped, the author's expectation kept
        (34, "ip netns exec red ip link", None),  # a fenced span that starts its line
        (39, "ping -c 1 -W 1 10.0.0.2", "fail"),  # user@host prompt in plain text
        (40, "ip link set a0 up", None),  # '# ' before a command is a root prompt
        (43, "ip addr add 10.0.0.1/24 dev a0", None),  # a leading command, not prose starting with 'ping'
    ]


@needs_root
@pytest.mark.skipif(shutil.which("busybox") is None, reason="the hang needs a listener that never answers: busybox nc (apt-get install busybox)")
def test_a_typo_a_hang_and_an_expected_failure_are_each_reported(nslab_sandbox):
    before = host_state()
    status, done = replay(str(DATA / "findings.md"), "--timeout", "1.5", "--interrupt", "1")
    assert host_state() == before, "the replay changed the machine"
    assert status == 1 and not done["clean"]
    steps = by_line(done)
    typo = steps[20]
    assert [f["kind"] for f in typo["findings"]] == ["typo"]
    assert typo["findings"][0]["text"] == 'ip has no object "adress" (did you mean address?)'
    expected = steps[28]  # `# expect: fail`, and it fails: no finding, nslab says why
    assert expected["ok"] is False and expected["findings"] == []
    assert expected["verdict"]["cause"] == "NO_ARP_ANSWER" and "192.0.2.2" in expected["verdict"]["explanation"]
    fixed = steps[35]
    assert fixed["ok"] is True and fixed["findings"] == [] and fixed["verdict"]["ok"]
    server = steps[41]
    assert server["kind"] == "server" and server["note"] == "started in the background, listening on TCP 8080"
    hang = steps[42]
    assert hang["hung"] and [f["kind"] for f in hang["findings"]] == ["hang"]
    assert hang["verdict"]["ok"]  # nslab connects: it is the server that never answers
    assert done["summary"]["findings"] == {"typo": 1, "hang": 1}


@needs_root
def test_given_sets_up_the_tutorials_vm_and_a_clean_replay_exits_zero(nslab_sandbox):
    status, done = replay(str(DATA / "vm.md"), "--given", str(DATA / "given-vm.sh"))
    assert status == 0 and done["clean"], [s for s in done["steps"] if s["findings"]]
    steps = by_line(done)
    assert steps[9]["verdict"]["cause"] == "LOOPBACK_DOWN" and steps[9]["findings"] == []  # expected to fail, and why
    assert steps[24]["kind"] == "skipped" and steps[24]["note"] == "docker: needs Docker, which nslab's stand-in plays only in part (run, inspect, exec, ps)"
    assert steps[29]["kind"] == "shell" and steps[30]["verdict"]["summary"].startswith("ping from blue to 10.9.0.1: reply")
    assert steps[33]["kind"] == "server" and steps[35]["output"] == ["200"] and steps[35]["verdict"]["ok"]


@needs_root
def test_without_what_the_vm_had_the_first_step_fails_against_its_expectation(nslab_sandbox):
    status, done = replay(str(DATA / "vm.md"))
    assert status == 1
    first = by_line(done)[7]
    assert first["findings"] == [{"kind": "mismatch", "text": "the tutorial says it should succeed, but it failed"}]
    assert first["verdict"]["cause"] == "NO_ROUTE_AT_SENDER"
    assert done["summary"]["findings"] == {"mismatch": 1}


def test_bad_input_is_one_line(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("No commands here, only prose.\n")
    for args, said in [
        ([str(tmp_path / "missing.md")], f"nslab replay: TUTORIAL: '{tmp_path / 'missing.md'}' is not a file"),
        ([str(empty)], f"nslab replay: TUTORIAL: no shell commands found in {empty}"),
        ([str(empty), "--timeout", "0"], "nslab replay: --timeout: 0 must be in (0, 600] seconds"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "nslab.cli.main", "replay", *args], capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 2 and proc.stderr.strip().startswith(said), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
