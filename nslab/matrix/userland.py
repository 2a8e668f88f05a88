"""A Debian release's own userland for a matrix column: its iproute2, nftables,
iptables, iputils, bpftrace, CNI plugins and Python, built with mmdebstrap and cached.

    root = userland.prepare("trixie")   # ~/.cache/nslab/userlands/trixie-<key>/, built once
    userland.install_project(root)      # the guest's line that installs nslab itself, as this checkout's venv has it

The root filesystem holds Debian's packages of that release (from the same
mirror as nslab's apt lists, security updates included), and the Python
libraries the suite needs beyond them (pytest, scapy, ...; the versions
nslab's metadata asks for) installed from PyPI for the release's own Python
into /usr/local, as pip does on a Debian machine. It is cached under a key
made of everything that went into it: the release, the package list, the
requirements, the mirror and the day's date (so a cache is at most a day
behind the archive's security updates). A release whose Python is older than
nslab's `Requires-Python` is refused before anything is built.

nslab itself is not copied: the checkout's venv holds setuptools' editable
install (a finder that maps `nslab` and `nslab.fixtures` to this checkout,
and the entry point that loads the pytest plugin), and the same files, copied
by the guest into its site directory on its writable /usr, make the guest
import this checkout, mounted at the same path. The root in the shared cache
stays as mmdebstrap and pip left it, whichever checkout runs it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nslab.kernel import leftovers
from nslab.matrix import archive
from nslab.matrix import cache as shared
from nslab.matrix.kernels import MatrixError

ROOT = Path(__file__).resolve().parents[2]
# ./run's SCENARIO_PACKAGES (what ./run install wants for the scenario suite: tests/test_matrix_userland.py
# checks), and procps
PACKAGES = ("python3", "python3-venv", "iproute2", "util-linux", "nftables", "iptables", "iputils-ping", "kmod", "procps", "bpftrace",
            "containernetworking-plugins", "graphviz")
FORMAT = 1  # bump when the way a root is built changes


def requirements() -> list[str]:
    """nslab's own dependencies (pytest among them: the guest's suite needs no more of the test
    extra, see nslab.matrix.runner.pytest_args), as the installed nslab's metadata names them:
    a checkout's editable install and a wheel alike, no project file read."""
    return [spec for spec in importlib.metadata.requires("nslab") or [] if "extra ==" not in spec.partition(";")[2]]


def python_version(release: str) -> tuple[int, int]:
    """The release's python3 (3, 13), from nslab's apt lists, before anything is built."""
    version = archive.suite_version("python3", release)
    found = re.match(r"(\d+)\.(\d+)", version or "")
    if found is None:
        raise MatrixError(f"release {release!r}: Debian's archive has no python3 in {release}")
    return int(found[1]), int(found[2])


def needed_python() -> tuple[int, int]:
    """The oldest Python nslab runs on (its Requires-Python, from the installed metadata)."""
    found = re.match(r">=\s*(\d+)\.(\d+)", importlib.metadata.metadata("nslab")["Requires-Python"] or "")
    return (int(found[1]), int(found[2])) if found else (3, 0)


def _sources(release: str) -> list[str]:
    mirror, security = archive.host_mirrors()
    lines = [f"deb [signed-by={archive.KEYRING}] {mirror} {release} main"]
    if release != "sid":
        lines += [f"deb [signed-by={archive.KEYRING}] {mirror} {release}-updates main",
                  f"deb [signed-by={archive.KEYRING}] {security} {release}-security main"]
    return lines


def cached(release: str) -> Path | None:
    """The release's root filesystem if a complete one is cached (any day's), else None."""
    done = sorted((shared.root() / "userlands").glob(f"{release}-*/.nslab-complete"), key=lambda p: p.stat().st_mtime)
    return done[-1].parent if done else None


def prepare(release: str, *, log=sys.stderr) -> Path:
    """The root filesystem for *release*, built now if today's is not cached."""
    have, need = python_version(release), needed_python()
    if have < need:
        raise MatrixError(f"release {release!r}: its Python is {have[0]}.{have[1]}, and nslab needs {need[0]}.{need[1]} or newer (its Requires-Python); "
                          "use its kernel with this machine's userland instead (nslab matrix "
                          + _version_of(archive.release_kernel(release)) + ")")
    sources = _sources(release)
    key = hashlib.sha256(repr((FORMAT, release, PACKAGES, requirements(), sources, time.strftime("%Y-%m-%d"))).encode()).hexdigest()[:12]
    root = shared.directory("userlands") / f"{release}-{key}"
    if (root / ".nslab-complete").exists():
        return root
    if shutil.which("mmdebstrap") is None:
        raise MatrixError("mmdebstrap is not installed: apt-get install mmdebstrap (./run install does)")
    with shared.lock(root):
        if not (root / ".nslab-complete").exists():  # nobody built it while we waited
            _build(release, root, sources, f"{have[0]}.{have[1]}", log)
    return root


def _build(release: str, root: Path, sources: list[str], python: str, log) -> None:
    partial = leftovers.partial_in(root.parent)
    started = time.monotonic()
    print(f"nslab matrix: building {release}'s userland with mmdebstrap (once a day) ...", file=log, flush=True)
    try:
        _run(["mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(PACKAGES)}", release, str(partial), *sources], f"mmdebstrap {release}")
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--only-binary=:all:",
              "--python-version", python, "--implementation", "cp", "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64",
              "--target", str(_site(partial)), *requirements()], f"pip install for {release}'s Python {python}")
        (partial / ".nslab-complete").write_text(f"{root.name} built in {time.monotonic() - started:.0f} s\n")
        for old in root.parent.glob(f"{release}-*"):
            if old.is_dir():
                shared.remove(old)  # an older day's, unless a run still uses it
        partial.rename(root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"nslab matrix: {release}'s userland built in {time.monotonic() - started:.0f} s", file=log, flush=True)


def _site(root: Path) -> Path:
    """/usr/local/lib/python3.X/dist-packages of *root*: where pip puts libraries on Debian."""
    pythons = sorted(root.glob("usr/lib/python3.[0-9]*"), key=lambda p: tuple(int(n) for n in p.name[6:].split(".")))
    if not pythons:
        raise MatrixError(f"{root}: no usr/lib/python3.X: was python3 installed?")
    site = root / "usr" / "local" / "lib" / pythons[-1].name / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    return site


def install_project(root: Path, *, venv: Path = ROOT / ".venv") -> str:
    """The guest's shell line that puts this checkout's editable install (setuptools' finder,
    its .pth and dist-info, read from the checkout mounted at its own path) into *root*'s site
    directory, on the guest's writable /usr: the root in the shared cache is not written, so
    two checkouts can run one userland at once. Makes the checkout's mount point in *root*."""
    found = sorted(venv.glob("lib/python3*/site-packages"))
    files = [f for site in found for f in site.iterdir() if f.name.startswith(("__editable__", "__editable___nslab", "nslab-"))] if found else []
    if not any(f.name.endswith(".dist-info") for f in files):
        raise MatrixError(f"{venv} has no editable install of nslab: run ./run install")
    (root / ROOT.relative_to("/")).mkdir(parents=True, exist_ok=True)
    site = "/" / _site(root).relative_to(root)
    return f"cp -a {' '.join(shlex.quote(str(f)) for f in files)} {shlex.quote(str(site))}/"


BOX = Path("/run/nslab-box")  # the guest's writable copy of the checkout, as a Vagrant box's /vagrant


def offline_wheels(release: str, venv: Path = ROOT / ".venv") -> Path:
    """The wheels `./run install` keeps in *venv*, from which the guest's `./run install` installs
    offline; refused (before anything is built) where *release*'s Python cannot use them."""
    have, wheels = python_version(release), venv / "wheels"
    if have != sys.version_info[:2] or not wheels.is_dir():
        raise MatrixError(f"--run-install: ./run install runs offline in the guest, from {wheels}, built for Python "
                          f"{sys.version_info[0]}.{sys.version_info[1]}; {release}'s Python is {have[0]}.{have[1]} (bookworm's is 3.11)")
    return wheels


def run_install(root: Path, release: str, out: Path, *, venv: Path = ROOT / ".venv") -> tuple[str, Path, str]:
    """The guest's lines that provision *root* as the Vagrantfile provisions a box: this
    checkout's files (those a clone has, and new ones git does not ignore) copied to BOX, and
    `./run install` run there as root, offline: pip finds the wheels `./run install` keeps in
    this venv's wheels directory (the guest has no network), so the release's Python must be
    the venv's. Returns the lines, the directory the suite runs in and the Python of the venv
    `./run install` made. Writes the list of files to *out*."""
    wheels = offline_wheels(release, venv)
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=False)
    if listed.returncode != 0:
        raise MatrixError(f"--run-install: cannot list this checkout's files with git: {listed.stderr.decode(errors='replace').strip()[:200]}")
    (out / "box-files").write_bytes(listed.stdout)
    (root / ROOT.relative_to("/")).mkdir(parents=True, exist_ok=True)
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    lines = (f"mkdir -p {BOX} && tar -C {q(ROOT)} --null -T {q(out / 'box-files')} -cf - | tar -C {BOX} -xf - || exit 1\n"
             f"cd {BOX} && PIP_NO_INDEX=1 PIP_FIND_LINKS={q(wheels)} ./run install || exit 1\n")
    return lines, BOX, str(BOX / ".venv" / "bin" / "python")


def versions(root: Path, python: str | None = None) -> str:
    """'iproute2 6.15.0-1, nftables 1.1.3-1, iputils-ping 3:20240905-3, python3 3.13.5-1': the
    packages that ran the labs in *root*, as its dpkg database has them (*python* instead of
    Debian's python3 where another interpreter ran the suite)."""
    try:
        status = (root / "var" / "lib" / "dpkg" / "status").read_text(errors="replace")
    except OSError:
        status = ""
    found = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Status): (.*)$", stanza, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed"):
            found[fields.get("Package")] = fields.get("Version")
    names = ("iproute2", "nftables", "iputils-ping") + (() if python else ("python3",))
    parts = [f"{p} {found[p]}" for p in names if p in found] + ([f"python {python}"] if python else [])
    return ", ".join(parts) or "unknown (no dpkg database)"


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise MatrixError(f"{what} failed (exit {done.returncode}): {lines[-1][:300] if lines else 'no output'}")


def _version_of(kernel: str) -> str:
    """'6.1' for 'linux-image-6.1.0-27-amd64'; the package name when it has no version."""
    m = re.match(r"linux-image-(\d+\.\d+)", kernel)
    return m[1] if m else kernel
