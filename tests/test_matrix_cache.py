"""nslab's shared cache (nslab.matrix.cache): one per user, not per checkout; locked, so that
two runs never fetch the same kernel at once; what `nslab cache` lists and cleans; and a
second checkout that boots the first one's kernel without the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nslab.kernel import sandbox
from nslab.matrix import archive, cache

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def xdg(tmp_path, monkeypatch) -> Path:
    """An empty cache of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "nslab"


def nslab_cache(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nslab.cli.main", "cache", *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_cache_is_the_users_not_the_checkouts(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache.root() == Path.home() / ".cache" / "nslab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG specification: a relative path is ignored
    assert cache.root() == Path.home() / ".cache" / "nslab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert archive.apt_directory() == tmp_path / "nslab" / "apt" and archive.kernels_directory() == tmp_path / "nslab" / "kernels"


def _tiny_kernel_package(tmp_path: Path) -> Path:
    """A real .deb (dpkg-deb --build) holding boot/vmlinuz-0.0.0-test and its lib/modules."""
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text("Package: linux-image-0.0.0-test\nVersion: 1\nArchitecture: amd64\nMaintainer: nslab <t@example.invalid>\nDescription: test\n")
    (tree / "boot").mkdir()
    (tree / "boot" / "vmlinuz-0.0.0-test").write_bytes(b"\0" * 4096)
    (tree / "lib" / "modules" / "0.0.0-test").mkdir(parents=True)
    done = subprocess.run(["dpkg-deb", "--build", str(tree), str(tmp_path / "kernel.deb")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return tmp_path / "kernel.deb"


def _waits_on(path: Path, bound: float = 10.0) -> bool:
    """Does a process wait for *path*'s flock? The kernel lists a blocked request as '->' in /proc/locks."""
    inode, deadline = os.stat(path).st_ino, time.monotonic() + bound
    while time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            if any("->" in line and line.split()[6].endswith(f":{inode}") for line in locks if len(line.split()) > 6):
                return True
        time.sleep(0.01)
    return False


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_two_runs_that_want_one_kernel_download_it_once(xdg, tmp_path, monkeypatch):
    deb = _tiny_kernel_package(tmp_path)
    downloads, inside = [], threading.Event()

    def download(package, dest, apt_dir=None):
        downloads.append(package)
        inside.set()
        started.wait(10)  # the other run is waiting on the lock by now, or has found the kernel
        return Path(shutil.copy(deb, dest))

    started = threading.Event()
    monkeypatch.setattr(archive, "download", download)
    found: list[Path] = []
    runs = [threading.Thread(target=lambda: found.append(archive.fetch("linux-image-0.0.0-test"))) for _ in range(2)]
    runs[0].start()
    assert inside.wait(10)
    runs[1].start()
    assert _waits_on(xdg / "kernels" / "linux-image-0.0.0-test.lock"), "the second run did not wait for the first one's download"
    started.set()
    for run in runs:
        run.join(20)
    assert downloads == ["linux-image-0.0.0-test"]
    assert found == [xdg / "kernels" / "linux-image-0.0.0-test" / "boot" / "vmlinuz-0.0.0-test"] * 2
    assert archive.modules_dir(found[0]).joinpath("0.0.0-test").is_dir()
    assert sorted(p.name for p in (xdg / "kernels").iterdir()) == ["linux-image-0.0.0-test", "linux-image-0.0.0-test.lock"]  # no partial left


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_a_killed_download_never_counts(xdg, tmp_path, monkeypatch):
    def broken(package, dest, apt_dir=None):
        (dest / "half.deb").write_bytes(b"!<arch>\n")  # what a killed download leaves
        raise archive.ArchiveError("connection reset")

    monkeypatch.setattr(archive, "download", broken)
    with pytest.raises(archive.ArchiveError, match="connection reset"):
        archive.fetch("linux-image-0.0.0-test")
    assert [p.name for p in (xdg / "kernels").iterdir()] == ["linux-image-0.0.0-test.lock"]
    deb = _tiny_kernel_package(tmp_path)
    monkeypatch.setattr(archive, "download", lambda package, dest, apt_dir=None: Path(shutil.copy(deb, dest)))
    assert archive.fetch("linux-image-0.0.0-test").name == "vmlinuz-0.0.0-test"


def test_nslab_cache_lists_sizes_and_clean_keeps_what_a_run_uses(xdg):
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg.parent))
    done = nslab_cache(env=env)
    assert (done.returncode, done.stdout) == (0, f"nslab cache: {xdg} is empty\n")
    for name, size in (("kernels/linux-image-6.1.0-57-amd64", 3 << 20), ("userlands/bookworm-0123456789ab", 1 << 20)):
        (xdg / name).mkdir(parents=True)
        (xdg / name / "data").write_bytes(os.urandom(size))
    (xdg / "apt" / "state").mkdir(parents=True)
    (xdg / "apt" / "state" / "lists").write_bytes(os.urandom(1 << 20))
    (xdg / "kernels" / ".partial-1-2-3").mkdir()  # being built: not an entry
    done = nslab_cache(env=env)
    lines = done.stdout.splitlines()
    assert lines[0] == f"nslab cache: {xdg}"
    sizes = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[1:]}
    assert sizes == {"apt": "1.0 MiB", "kernels/linux-image-6.1.0-57-amd64": "3.0 MiB", "userlands/bookworm-0123456789ab": "1.0 MiB", "total": "5.0 MiB"}
    # a matrix run holds its userland (a shared lock while its VM runs): clean leaves it and says so
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; from nslab.matrix import cache\n"
                               "with cache.lock(Path(sys.argv[1]), shared=True):\n    print('held', flush=True); sys.stdin.read()",
                               str(xdg / "userlands" / "bookworm-0123456789ab")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        done = nslab_cache("clean", env=env)
    finally:
        holder.communicate("", timeout=10)
    assert done.stdout.splitlines() == [f"nslab cache: removed 2 entries (4.0 MiB) from {xdg}",
                                        "  kept userlands/bookworm-0123456789ab: a running nslab uses it"]
    assert [e.name for e in cache.entries()] == ["userlands/bookworm-0123456789ab"]
    assert nslab_cache("clean", env=env).stdout.startswith("nslab cache: removed 1 entries (1.0 MiB)")
    assert nslab_cache(env=env).stdout == f"nslab cache: {xdg} is empty\n"


@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("unshare") is None, reason="Debian kernels are fetched with apt-get; needs unshare")
def test_a_second_checkout_boots_the_first_ones_kernel_without_the_network(tmp_path):
    """The user's real cache: warm it from the host's namespaces (a no-op once `./run matrix` or
    the VM test fetched 6.1), then a copy of the library elsewhere, in a network namespace with
    no interface but lo, finds the same unpacked kernel: no download, no apt-get update."""
    warm = subprocess.run(sandbox.from_outside([sys.executable, "-m", "nslab.matrix.archive", "--fetch", "6.1"]),
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert warm.returncode == 0, warm.stderr
    name, package, image = warm.stdout.split()
    assert Path(image).is_relative_to(cache.root() / "kernels" / package)
    before, refreshed = os.stat(image), archive.apt_directory().joinpath("updated").stat().st_mtime_ns
    second = tmp_path / "checkout"
    shutil.copytree(ROOT / "nslab", second / "nslab", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(second))
    offline = subprocess.run(["unshare", "--net", "--", sys.executable, "-c", "import nslab, sys; print(nslab.__file__); from nslab.matrix import archive; sys.exit(archive.main())",
                              "--fetch", "6.1"], cwd=second, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert offline.returncode == 0, offline.stderr
    where, found = offline.stdout.splitlines()
    assert where == str(second / "nslab" / "__init__.py")  # the second checkout's code ran
    assert found == f"6.1 {package} {image}"
    assert (os.stat(image).st_ino, os.stat(image).st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (second / ".cache").exists()
    assert archive.apt_directory().joinpath("updated").stat().st_mtime_ns == refreshed, "the offline run tried to refresh the shared apt lists"


def test_an_apt_query_is_asked_once_while_the_lists_are_the_same(tmp_path, monkeypatch):
    """A stand-in apt-cache counts its calls: the second query is answered from the memo, a
    changed list asks again, and an apt directory nobody may write to is asked every time."""
    calls = tmp_path / "calls"
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "apt-cache"
    fake.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'linux-image-6.1.0-57-amd64 - Linux 6.1 for 64-bit PCs (signed)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    apt_dir = tmp_path / "apt"
    (apt_dir / "state" / "lists").mkdir(parents=True)
    listed = apt_dir / "state" / "lists" / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
    listed.write_text("Package: linux-image-6.1.0-57-amd64\n")
    query = ["apt-cache", "search", "--names-only", "^linux-image-[0-9]"]

    def asked() -> int:
        return len(calls.read_text().splitlines())

    first = archive._query(query, apt_dir)
    assert first.returncode == 0 and first.stdout.startswith("linux-image-6.1.0-57-amd64 ")
    assert archive._query(query, apt_dir).stdout == first.stdout and asked() == 1
    listed.write_text("Package: linux-image-6.1.0-58-amd64\n")  # the lists were refreshed
    archive._query(query, apt_dir)
    assert asked() == 2
    shutil.rmtree(apt_dir / "queries")
    (apt_dir / "queries").write_text("")  # where the memo would go, a file: nothing can be remembered
    assert archive._query(query, apt_dir).stdout == first.stdout and archive._query(query, apt_dir).stdout == first.stdout
    assert asked() == 4
