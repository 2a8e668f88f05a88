"""Without root: the suite runs inside a user namespace, or every lab test skips
with one sentence saying how to run it. Both paths, for real: run as `nobody`,
and as `nobody` where user namespaces are forbidden (user.max_user_namespaces=0
inside a user namespace made for the test, so the host's setting is untouched)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterator

import pytest

from nslab.kernel import leftovers

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
SCENARIO = "scenarios/test_veth_two_namespaces.py"
# What a run of the scenarios needs from the checkout (the rest stays behind), and
# nslab's packages as Python finds them (the plugin installs from fixtures/ as nslab.fixtures).
PROJECT = ("conftest.py", "pyproject.toml", "scenarios")
PACKAGES = ("nslab", "nslab.fixtures", "fixtures")
# Installed packages the run does not import (pip alone is a fifth of the venv).
NOT_NEEDED = ("pip", "pip-*", "setuptools", "setuptools-*", "pkg_resources", "_distutils_hack", "virtme", "virtme_ng*", "*.pth")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to user nobody needs root")


def world_usable(path: str) -> bool:
    """Can any user execute *path* (and search every directory above it)?"""
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])


def interpreter() -> str:
    """A Python of our version that `nobody` can run (the venv's is a link to the system's)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.path.exists(candidate) and world_usable(candidate):
            return candidate
    pytest.skip(f"no {version} that user nobody can execute (the venv's interpreter is under a private directory)")


def package_dir(name: str) -> Path | None:
    """Where the package *name* is imported from, if it is one of this checkout's."""
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations and Path(locations[0]).resolve().is_relative_to(ROOT) else None


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    """The project and its installed packages, copied where user nobody can read them.

    The checkout may live anywhere root can use, a mode-700 home included, where
    nobody can neither enter the checkout nor import pytest from its venv. The
    copy is a scratch directory of this run (a killed run's is removed by the
    next run's sweep), world-readable, with a reports directory nobody may write."""
    base = Path(leftovers.scratch_dir("rootless"))
    try:
        copies = [(ROOT / name, base / "project" / name) for name in PROJECT]
        copies += [(source, base / "project" / name.replace(".", "/")) for name in PACKAGES if (source := package_dir(name)) is not None]
        for source, target in copies:
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        shutil.copytree(sysconfig.get_paths()["purelib"], base / "site-packages", ignore=shutil.ignore_patterns(*NOT_NEEDED))
        for directory, _dirs, files in os.walk(base):
            os.chmod(directory, 0o755)
            for name in files:
                path = os.path.join(directory, name)
                os.chmod(path, os.stat(path).st_mode | 0o444)
        (base / "reports").mkdir()
        os.chown(base / "reports", NOBODY, NOBODY)
        assert world_usable(str(base / "project")), f"{base} is not usable by other users; is {base.parent} private?"
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def nobody_env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NSLAB_", "PYTHON"))}
    env.update(HOME="/tmp", PYTHONPATH=f"{copy / 'project'}{os.pathsep}{copy / 'site-packages'}", PYTHONDONTWRITEBYTECODE="1",
               NSLAB_REPORTS=str(copy / "reports"))
    return env


PYTEST = ["-m", "pytest", SCENARIO, "-q", "-rs", "-p", "no:randomly", "-p", "no:cacheprovider"]


def test_as_nobody_the_scenarios_run_in_a_user_namespace_and_pass(copy):
    with open("/proc/sys/user/max_user_namespaces") as f:
        if int(f.read()) == 0:
            pytest.skip("this kernel forbids user namespaces (user.max_user_namespaces=0)")
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", interpreter(), *PYTEST, "-n", "2"],
        cwd=copy / "project", env=nobody_env(copy), capture_output=True, text=True, timeout=120,
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
    env = nobody_env(copy)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: single-threaded, so it may unshare a user namespace
        try:
            os.close(ready_r), os.close(go_w), os.close(out_r)
            os.dup2(out_w, 1), os.dup2(out_w, 2)
            from nslab.kernel import linux

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
            import traceback

            os.write(out_w, traceback.format_exc().encode())
        finally:
            os._exit(127)
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
