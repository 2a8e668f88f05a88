"""Without root: the suite runs inside a user namespace, or every lab test skips
with one sentence saying how to run it. Both paths, for real: run as `nobody`,
and as `nobody` where user namespaces are forbidden (user.max_user_namespaces=0
inside a user namespace made for the test, so the host's setting is untouched)."""

from __future__ import annotations

import os
import subprocess
import traceback
from pathlib import Path
from typing import Iterator

import pytest

from nslab.kernel import child, linux
from tests import nobody
from tests.nobody import NOBODY

SCENARIO = "scenarios/test_veth_two_namespaces.py"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to user nobody needs root")


def interpreter() -> str:
    try:
        return nobody.interpreter()
    except nobody.NoInterpreter as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    """The project and its packages where nobody can read them (tests/nobody.py)."""
    with nobody.readable_copy() as base:
        yield base


PYTEST = ["-m", "pytest", SCENARIO, "-q", "-rs", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]


def test_as_nobody_the_scenarios_run_in_a_user_namespace_and_pass(copy):
    with open("/proc/sys/user/max_user_namespaces") as f:
        if int(f.read()) == 0:
            pytest.skip("this kernel forbids user namespaces (user.max_user_namespaces=0)")
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", interpreter(), *PYTEST, "-n", "2"],
        cwd=copy / "project", env=nobody.nobody_env(copy), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], done.stdout


def test_as_nobody_without_user_namespaces_every_lab_test_skips_saying_how(copy):
    done = run_as_nobody_without_user_namespaces([interpreter(), *PYTEST], copy)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "skipped" in last and "passed" not in last and "failed" not in last, done.stdout
    assert "not root and user namespaces are disabled (user.max_user_namespaces=0); run as root (sudo ./run scenarios)" in done.stdout


def run_as_nobody_without_user_namespaces(argv: list[str], copy: Path) -> subprocess.CompletedProcess:
    """Run *argv* as uid/gid 65534, from *copy*, inside a new user namespace (ids
    0-65535 mapped one to one) whose user.max_user_namespaces is 0."""
    env = nobody.nobody_env(copy)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()

    def become_nobody_and_exec() -> None:  # in the child: single-threaded, so it may unshare a user namespace
        try:
            os.close(ready_r), os.close(go_w), os.close(out_r)
            os.dup2(out_w, 1), os.dup2(out_w, 2)
            linux.unshare(linux.CLONE_NEWUSER)
            os.write(ready_w, b"x")
            os.read(go_r, 1)  # the parent has written our uid/gid maps
            with open("/proc/sys/user/max_user_namespaces", "w") as f:
                f.write("0")
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.chdir(copy / "project")
            os.execve(argv[0], argv, env)
        except BaseException:
            os.write(out_w, traceback.format_exc().encode())
            raise  # the child exits with status 1

    pid = child.spawn(become_nobody_and_exec)
    os.close(ready_w), os.close(go_r), os.close(out_w)
    try:
        assert os.read(ready_r, 1) == b"x", "the child could not create a user namespace"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("0 0 65536")
        os.write(go_w, b"x")
        output = b""
        while chunk := os.read(out_r, 65536):
            output += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        for fd in (ready_r, go_w, out_r):
            os.close(fd)
    return subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), output.decode(), "")
