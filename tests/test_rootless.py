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
def copy(nslab_sandbox) -> Iterator[Path]:
    """The project and its packages where nobody can read them (tests/nobody.py), in this
    process's sandbox: its private mount namespace keeps the packages' bind mount."""
    with nobody.readable_copy() as base:
        yield base


PYTEST = ["-m", "pytest", SCENARIO, "-q", "-rs", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]


def _mount_options(path: Path) -> list[str] | None:
    """The options of the mount at *path* in this process's mount namespace, None if none is there."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(path):
                return fields[5].split(",")
    return None


def test_the_packages_are_bound_read_only_for_nobody_and_unbound_after(nslab_sandbox):
    site = Path(nobody.sysconfig.get_paths()["purelib"])
    before = sorted(os.listdir(site))
    with nobody.readable_copy() as copy:
        packages = copy / "site-packages"
        assert "ro" in (_mount_options(packages) or []), "the packages are not a read-only bind mount"
        with pytest.raises(OSError, match="Read-only file system"):
            (packages / "nslab-written-here").touch()
        read = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "cat", str(packages / "pytest" / "__init__.py")],
                              capture_output=True, timeout=30, check=False)
        assert read.returncode == 0, read.stderr
    assert _mount_options(packages) is None and not copy.exists()
    assert sorted(os.listdir(site)) == before  # the venv's own packages, untouched by the removal


def test_packages_not_all_world_readable_are_copied_readable(nslab_sandbox, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "__init__.py").chmod(0o600)  # as a venv installed under umask 077 has them
    monkeypatch.setattr(nobody.sysconfig, "get_paths", lambda: {"purelib": str(site)})
    with nobody.readable_copy() as copy:
        assert _mount_options(copy / "site-packages") is None
        assert (copy / "site-packages" / "pkg" / "__init__.py").stat().st_mode & 0o444 == 0o444
    assert (site / "pkg" / "__init__.py").stat().st_mode & 0o777 == 0o600


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
