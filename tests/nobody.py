"""Running something as user nobody from a copy nobody can read, wherever the
checkout lives (a mode-700 home included): the project is copied into a
world-readable scratch directory of this run, and its installed packages are
bound there read-only (in the sandbox's private mount namespace), or copied
where they are not all world-readable or this process has no sandbox.

    with readable_copy() as copy:
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", interpreter(), "-c", "import nslab"],
                       cwd=copy / "project", env=nobody_env(copy))
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import stat
import sys
import sysconfig
from pathlib import Path
from typing import Iterator

from nslab.kernel import leftovers, linux, sandbox

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
# What a run of the scenarios needs from the checkout (the rest stays behind), and
# nslab's packages as Python finds them (the plugin installs from fixtures/ as nslab.fixtures).
PROJECT = ("conftest.py", "pyproject.toml", "scenarios")
PACKAGES = ("nslab", "nslab.fixtures", "fixtures")
# Installed packages a run does not import (pip is a tenth of the venv, mypy and its compiled modules
# a third; the rest still takes 4 CPU-seconds to copy, a file created on this ext4 /tmp costing 0.4 ms).
NOT_NEEDED = ("pip", "pip-*", "setuptools", "setuptools-*", "pkg_resources", "_distutils_hack", "virtme", "virtme_ng*", "*.pth",
              "mypy", "mypyc", "*__mypyc*")


class NoInterpreter(Exception):
    """No Python of our version that another user may execute."""


def world_usable(path: str) -> bool:
    """Can any user execute *path* (and search every directory above it)?"""
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])


def interpreter() -> str:
    """A Python of our version that `nobody` can run (the venv's is a link to the system's)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.path.exists(candidate) and world_usable(candidate):
            return str(Path(candidate).resolve())
    raise NoInterpreter(f"no {version} that user nobody can execute (the venv's interpreter is under a private directory)")


def package_dir(name: str) -> Path | None:
    """Where the package *name* is imported from, if it is one of this checkout's."""
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations and Path(locations[0]).resolve().is_relative_to(ROOT) else None


def _world_readable(top: Path) -> bool:
    """Can any user read every file under *top* and search every directory?"""
    for directory, _dirs, files in os.walk(top):
        if os.stat(directory).st_mode & 0o005 != 0o005 or any(os.stat(os.path.join(directory, f)).st_mode & 0o004 == 0 for f in files):
            return False
    return True


class _Packages:
    """The venv's installed packages at *target*: bound read-only where every user can read them
    and this process's sandbox keeps the mount to itself (a copy took 2.4 CPU-seconds), else
    copied (and chmod'ed with the rest of the copy)."""

    def __init__(self, target: Path):
        self.target, self.bound = target, False
        site = Path(sysconfig.get_paths()["purelib"])
        if sandbox.current() is None or os.geteuid() != 0 or not _world_readable(site):
            shutil.copytree(site, target, ignore=shutil.ignore_patterns(*NOT_NEEDED))
            return
        target.mkdir()
        linux.mount(str(site), str(target), None, linux.MS_BIND | linux.MS_REC)
        self.bound = True
        try:
            linux.mount(None, str(target), None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
        except OSError:
            self.unbind()  # never left writable where the scratch directory is removed
            raise

    def unbind(self) -> None:
        if self.bound:
            linux.umount(str(self.target))
            self.bound = False


@contextlib.contextmanager
def readable_copy() -> Iterator[Path]:
    """The project (under project/) and its installed packages (under site-packages/),
    where user nobody can read them, with a reports/ directory nobody may write.

    The copy is a scratch directory of this run (a killed run's is removed by the
    next run's sweep; a bind mount dies with the sandbox that made it), removed when
    the block ends, never while the packages are still bound there."""
    base = Path(leftovers.scratch_dir("nobody"))
    packages: _Packages | None = None
    try:
        copies = [(ROOT / name, base / "project" / name) for name in PROJECT]
        copies += [(source, base / "project" / name.replace(".", "/")) for name in PACKAGES if (source := package_dir(name)) is not None]
        for source, target in copies:
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)  # with its bytecode: nobody writes none, and would compile it all in each Python
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        packages = _Packages(base / "site-packages")
        for directory, dirs, files in os.walk(base):
            if packages.bound and directory == str(packages.target):
                dirs.clear()  # bound read-only, and readable as it is
                continue
            os.chmod(directory, 0o755)
            for name in files:
                path = os.path.join(directory, name)
                os.chmod(path, os.stat(path).st_mode | 0o444)
        (base / "reports").mkdir()
        os.chown(base / "reports", NOBODY, NOBODY)
        if not world_usable(str(base / "project")):
            raise PermissionError(f"{base} is not usable by other users; is {base.parent} private?")
        yield base
    finally:
        if packages is not None:
            packages.unbind()
        shutil.rmtree(base, ignore_errors=True)


def nobody_env(copy: Path) -> dict[str, str]:
    """Our environment, less pytest's, nslab's and Python's settings, importing from *copy*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NSLAB_", "PYTHON"))}
    env.update(HOME="/tmp", PYTHONPATH=f"{copy / 'project'}{os.pathsep}{copy / 'site-packages'}", PYTHONDONTWRITEBYTECODE="1",
               NSLAB_REPORTS=str(copy / "reports"))
    return env
