"""`nslab matrix`: kernel names, bounded processes, JUnit to table, and one
real run: the host and Debian's 6.1 booted with `module_blacklist=bridge`.

The VM tests boot one QEMU guest each (TCG here; the smoke test took 175 s and 46 CPU-s with the
shared cache warm at load 17 to 24 on two cores, see the README's *Kernel matrix*) and are
skipped, saying what to install, where virtme-ng or QEMU is missing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from nslab.kernel import sandbox
from nslab.matrix import archive, results
from nslab.matrix import runner as matrix

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
BLACKLISTED = "6.1,module_blacklist=bridge"


def nslab_matrix(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`nslab matrix ARGS` as a user runs it: from the host's namespaces (it fetches
    kernels from the package archive, which a test's sandbox cannot reach)."""
    argv = sandbox.from_outside([sys.executable, "-m", "nslab.cli.main", "matrix", *args])
    # it dies with this test's process (and takes its VMs with it), never running on as an orphan
    return subprocess.run(["setpriv", "--pdeathsig", "KILL", "--", *argv], check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# -- without a VM -------------------------------------------------------------
@pytest.mark.parametrize(
    "text, name, append",
    [("host", "host", ()), ("6.1", "6.1", ()), ("6.1-rt", "6.1-rt", ()), ("6.12", "6.12", ()), ("newest", "newest", ()),
     ("6.1,module_blacklist=bridge,quiet", "6.1", ("module_blacklist=bridge", "quiet"))],
)
def test_kernel_names(text, name, append):
    kernel = matrix.parse_kernel(text)
    assert (kernel.name, kernel.append, kernel.label) == (name, append, text)


def test_bad_input_is_one_line():
    done = nslab_matrix("6.1", "host,quiet")
    assert done.returncode == 2
    assert done.stderr == "nslab matrix: kernel 'host,quiet': the host kernel cannot take boot arguments; use a Debian kernel such as 6.1,quiet\n"
    done = nslab_matrix("latest")
    assert done.stderr.startswith("nslab matrix: kernel 'latest': expected host, a Debian version such as 6.1") and done.stderr.count("\n") == 1
    done = nslab_matrix("host", "--suite", "scenarioz")
    assert done.stderr == f"nslab matrix: --suite 'scenarioz': no such path under {ROOT}\n"


def test_a_kernel_without_qemu_is_one_line_naming_the_packages_before_any_download(tmp_path):
    (tmp_path / "vng").symlink_to(Path(sys.executable).parent / "vng")  # virtme-ng, and no QEMU or busybox on this PATH
    done = subprocess.run([sys.executable, "-m", "nslab.cli.main", "matrix", "host", "6.1", "--reports", str(tmp_path / "reports")],
                          env=dict(os.environ, PATH=str(tmp_path)), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "nslab matrix: booting a kernel needs what is missing here: apt-get install qemu-system-x86 busybox-static\n"
    assert not (tmp_path / "reports").exists()


def etc_apt_digest() -> str:
    """One checksum of every file under /etc/apt (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(Path("/etc/apt").rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="Debian kernels are fetched with apt-get; not a Debian system")
def test_debian_package_names_resolve_through_private_lists_and_etc_apt_is_untouched():
    """5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie, bookworm-backports) and the newest
    resolve on a stock Debian 12, whose own lists know no 6.12: from nslab's own apt
    lists; so does a release's own kernel (bookworm's is 6.1, not its backports' 6.12)."""
    before = etc_apt_digest()
    done = subprocess.run(sandbox.from_outside([sys.executable, "-m", "nslab.matrix.archive", "5.10", "6.1", "6.1-cloud", "6.12", "newest", "bookworm", "trixie"]),
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    found = dict(line.split() for line in done.stdout.splitlines())
    assert re.fullmatch(r"linux-image-5\.10\.0-\d+-amd64", found["5.10"])
    assert re.fullmatch(r"linux-image-6\.1\.0-\d+-amd64", found["6.1"])
    assert found["bookworm"] == found["6.1"] and re.fullmatch(r"linux-image-6\.12\.\d+\+deb13-amd64", found["trixie"])
    assert re.fullmatch(r"linux-image-6\.1\.0-\d+-cloud-amd64", found["6.1-cloud"])
    assert re.fullmatch(r"linux-image-6\.12\.\d+\+deb\d+(\.\d+)?-amd64", found["6.12"])
    newest = re.fullmatch(r"linux-image-(\d+)\.(\d+)\.\d+\+deb\d+(\.\d+)?-amd64", found["newest"])
    assert newest and (int(newest[1]), int(newest[2])) >= (6, 12), found["newest"]
    assert etc_apt_digest() == before, "resolving kernels changed /etc/apt"
    # a kernel that cannot be had: one line, no traceback
    done = subprocess.run(sandbox.from_outside([sys.executable, "-m", "nslab.matrix.archive", "9.99"]),
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("nslab archive: kernel '9.99': Debian's archive has no linux-image-9.99*-amd64 in bullseye, bookworm, ")
    assert done.stderr.count("\n") == 1, done.stderr


def test_private_sources_take_the_hosts_debian_mirror(tmp_path):
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nEnabled: no\nURIs: http://disabled.example/debian\nSuites: trixie\nComponents: main\n"
    )
    (etc / "sources.list.d" / "other.list").write_text(
        "deb [arch=amd64] https://packages.example/apt stable-tools main\ndeb https://download.example/linux/debian bookworm stable\n"
    )
    assert archive.host_mirrors(etc) == ("http://mirror.example/debian", "http://mirror.example/debian-security")
    text = archive.sources_list(etc)
    for suite in ("bookworm", "bookworm-backports", "trixie", "trixie-backports", "sid"):
        assert f"http://mirror.example/debian {suite} main" in text
    assert "http://mirror.example/debian-security trixie-security main" in text
    # one-line format, with options and comments
    (etc / "sources.list.d" / "debian.sources").unlink()
    (etc / "sources.list").write_text("# deb http://commented.example/debian bookworm main\ndeb [signed-by=/k.gpg] http://one.example/debian bookworm main\n")
    assert archive.host_mirrors(etc) == ("http://one.example/debian", archive.DEFAULT_SECURITY)
    # an Ubuntu host names no Debian mirror: Debian's defaults
    (etc / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu jammy main\n")
    assert archive.host_mirrors(etc) == (archive.DEFAULT_MIRROR, archive.DEFAULT_SECURITY)


def test_apt_is_pointed_only_at_the_private_directory(tmp_path):
    options = archive.apt_options(tmp_path)
    dirs = dict(o.split("=", 1) for o in options[1::2] if o.startswith("Dir::") and "=" in o and o.split("=", 1)[1].startswith("/"))
    assert set(dirs) == {"Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::Etc::Preferences", "Dir::Etc::PreferencesParts", "Dir::State", "Dir::Cache"}
    assert all(value.startswith(f"{tmp_path}/") for value in dirs.values())


def test_kernel_names_choose_the_newest_matching_package():
    names = ["linux-image-6.1.0-49-amd64", "linux-image-6.1.0-57-amd64", "linux-image-6.1.0-57-cloud-amd64", "linux-image-6.12.117+deb12-amd64",
             "linux-image-6.12.118+deb13-amd64", "linux-image-6.12.115+deb13.1-amd64", "linux-image-6.12-amd64", "linux-image-6.12.118+deb13-amd64-unsigned",
             "linux-image-7.3.4+deb13-amd64", "linux-image-7.3.4+deb13-rt-amd64"]
    assert archive.choose("6.1", names) == "linux-image-6.1.0-57-amd64"
    assert archive.choose("6.1-cloud", names) == "linux-image-6.1.0-57-cloud-amd64"
    assert archive.choose("6.12", names) == "linux-image-6.12.118+deb13-amd64"
    assert archive.choose("newest", names) == "linux-image-7.3.4+deb13-amd64"
    assert archive.choose("newest-rt", names) == "linux-image-7.3.4+deb13-rt-amd64"
    assert archive.choose("6.2", names) is None and archive.choose("6.1-cloud", names[:2]) is None


def _processes_with(word: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if word.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_time_limit_kills_the_whole_process_group(tmp_path):
    tag = f"nslab-matrix-test-{os.getpid()}"
    script = f"exec -a {tag} sleep 60 & exec -a {tag} sleep 60"  # a child and a grandchild
    started = time.monotonic()
    status = matrix.bounded(["bash", "-c", script], timeout=0.5, log=tmp_path / "log")
    assert status is None and time.monotonic() - started < 5
    assert _processes_with(tag) == []


def test_junit_becomes_a_table_with_differences_first(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_four="""
import pytest

def test_pass():
    pass

def test_fail():
    assert 1 == 2, "the kernel said no"

def test_skip():
    pytest.skip("kernel lacks bridge support: creating a bridge failed: ENOTSUP (Operation not supported)")

@pytest.mark.xfail(reason="known to fail", strict=True)
def test_xfail():
    assert False
"""
    )
    junit = pytester.path / "junit.xml"
    pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", f"--junitxml={junit}")
    cases = matrix.read_junit(junit)
    verdicts = {test.split("::")[1]: case.verdict for test, case in cases.items()}
    assert verdicts == {"test_pass": "passed", "test_fail": "failed", "test_skip": "skipped", "test_xfail": "xfail"}
    assert "the kernel said no" in cases["test_four.py::test_fail"].detail
    one = matrix.Run(matrix.parse_kernel("host"), release="A", accel="native", seconds=1.0, cases=cases)
    other_cases = dict(cases, **{"test_four.py::test_pass": results.Case("test_four.py::test_pass", "skipped", "no bridge")})
    other = matrix.Run(matrix.parse_kernel("6.1"), release="B", accel="tcg", seconds=2.0, cases=other_cases)
    broken = matrix.Run(matrix.parse_kernel("6.12"), problem="did not boot: Kernel panic")
    assert matrix.differences([one, other, broken]) == ["test_four.py::test_pass"]
    text = matrix.table([one, other, broken])
    top = text.index("Differences between kernels: 1")
    assert text.index("    host  passed") > top and text.index("    6.1   skipped: no bridge") > top
    assert text.index("test_four.py::test_fail") > text.index("6.1   skipped: no bridge")
    assert text.rstrip().endswith("6.12: did not boot: Kernel panic")


def test_a_kernel_that_skips_what_the_clean_run_ran_fails_unless_it_lacks_the_feature():
    def run(label, **verdicts):
        cases = {f"t.py::{name}": results.Case(f"t.py::{name}", *v) for name, v in verdicts.items()}
        return matrix.Run(matrix.parse_kernel(label), release=label, cases=cases)

    host = run("host", a=("passed",), b=("passed",), c=("skipped", "no vagrant"))
    no_bridge = run("6.1,module_blacklist=bridge", a=("passed",), b=("skipped", "kernel lacks bridge support: creating a bridge failed: ENOTSUP"),
                    c=("skipped", "no vagrant"))
    broken = run("6.12", a=("skipped", "not root and user namespaces are disabled"), b=("passed",), c=("skipped", "no vagrant"))
    assert matrix.compare_skips([host, no_bridge, broken]) is host
    assert no_bridge.ok and no_bridge.extra_skips == []
    assert not broken.ok and broken.extra_skips == ["t.py::a"]
    assert broken.counts() == "1 passed, 2 skipped (1 more skipped than host, not for a missing kernel feature)"
    assert "6.12: skipped t.py::a, which host ran (a skip that is not a missing kernel feature)" in matrix.table([host, no_bridge, broken])
    # without the host, the run that skipped least is the clean one
    assert matrix.compare_skips([broken, run("6.1", a=("passed",), b=("passed",), c=("passed",))]).kernel.label == "6.1"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="a bind mount in a mount namespace of its own needs root and unshare")
def test_the_guests_boot_finds_its_roots_true_in_place_of_systemd_tmpfiles_and_nothing_here_changes(tmp_path):
    from nslab.matrix import guest

    for name, text in (("systemd-tmpfiles", "the boot's tmpfiles\n"), ("true", "the root's true\n")):
        (tmp_path / "usr" / "bin").mkdir(parents=True, exist_ok=True)
        (tmp_path / "usr" / "bin" / name).write_text(text)
    tmpfiles = tmp_path / "usr" / "bin" / "systemd-tmpfiles"
    argv = guest.without_boot_tmpfiles(["cat", str(tmpfiles)], tmp_path)
    assert argv[-2:] == ["cat", str(tmpfiles)] and argv[0] == "unshare"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "the root's true\n", "")  # what vng (and QEMU's 9p server) would see
    assert tmpfiles.read_text() == "the boot's tmpfiles\n"  # here, nothing was mounted
    assert str(tmpfiles) not in Path("/proc/self/mountinfo").read_text()
    # a root without systemd-tmpfiles boots with the argv as it was
    tmpfiles.unlink()
    assert guest.without_boot_tmpfiles(["vng", "--run"], tmp_path) == ["vng", "--run"]


# -- with a VM ------------------------------------------------------------------
def _vm_missing() -> str | None:
    needs = {"vng": "pip install virtme-ng", "qemu-system-x86_64": "apt-get install qemu-system-x86",
             "busybox": "apt-get install busybox-static", "depmod": "apt-get install kmod", "apt-get": "a Debian system"}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    missing = [how for tool, how in needs.items() if shutil.which(tool, path=path) is None]
    return f"the matrix VMs need: {'; '.join(missing)}" if missing else None


needs_vm = pytest.mark.skipif(_vm_missing() is not None, reason=str(_vm_missing()))


def _junit(reports: Path, kernel: str) -> dict[str, ElementTree.Element]:
    tree = ElementTree.parse(reports / matrix.parse_kernel(kernel).slug / "junit.xml")
    return {tc.get("name"): tc for tc in tree.iter("testcase")}


@needs_vm
@pytest.mark.starts_first  # the longest test of the suite (a TCG boot): the rest runs beside it
def test_debian_kernel_without_bridges_runs_the_scenarios_and_skips_the_bridge_test(tmp_path):
    """One VM (one test, so xdist cannot boot it twice): the smoke test and the
    module_blacklist=bridge case, compared with the host in one table."""
    started = time.monotonic()
    done = nslab_matrix(
        "host", BLACKLISTED, "--reports", str(tmp_path), "--timeout", "600", "--cpus", "1",  # three tests: a second xdist worker would cost more than it saves
        "--suite", "scenarios/test_veth_two_namespaces.py", "--suite", "tests/test_matrix_features.py",
        "-k", "test_09 or test_12 or bridge_enslaves",
    )
    print(f"matrix host + {BLACKLISTED}: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    # smoke: the scenarios pass in the guest, on Debian's kernel, under KVM or TCG
    guest = _junit(tmp_path, BLACKLISTED)
    for name in ("test_09_ping_ns2_from_ns1", "test_12_netcat_chat_works_both_ways"):
        assert [child.tag for child in guest[name]] == [], f"{name} did not pass in the guest"
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"  {BLACKLISTED}"))
    row = lines[at]
    assert " 6.1.0-" in row and (" tcg: " in row or " kvm: " in row) and row.endswith("2 passed, 1 skipped")
    assert lines[at + 1].split()[:3] == ["userland:", "this", "machine's:"] and "iproute2 " in lines[at + 1]
    # the guest read the root and the checkout through the cached exports (nslab.matrix.guest)
    log = (tmp_path / matrix.parse_kernel(BLACKLISTED).slug / "guest.log").read_text()
    assert "nslab-matrix: guest up 6.1.0-" in log and "no cached root" not in log and "over the uncached root" not in log, log[:2000]
    # it booted the uncompressed kernel at its PVH entry (nslab.matrix.vmlinux): that entry fills the boot
    # parameters as protocol 2.12, where QEMU's bzImage boot leaves the image's own (2.15 for 6.1)
    # and a TCG guest without address-space randomisation, whose processes then share translated code
    # (nslab.matrix.runner.TCG_APPEND); a KVM guest keeps the kernel's default, 2
    randomised = "0" if " tcg: " in row else "2"
    # and, run by root, without virtme-ng-init's systemd-tmpfiles (nslab.matrix.guest.without_boot_tmpfiles)
    tmpfiles = "skipped" if os.geteuid() == 0 else "ran"
    assert re.search(rf"^nslab-matrix: guest up 6\.1\.0-\S+, boot protocol 0x020c, randomize_va_space {randomised}, systemd-tmpfiles {tmpfiles}$",
                     log, re.MULTILINE), log[:2000]
    # no bridges: the bridge test skips naming the feature (it passed on the host)
    skipped = guest["test_bridge_enslaves_a_veth"].find("skipped")
    assert skipped is not None, "the bridge test ran on a kernel booted with module_blacklist=bridge"
    assert skipped.get("message") == "kernel lacks bridge support: creating a bridge failed: ENOTSUP (Operation not supported)"
    assert list(_junit(tmp_path, "host")["test_bridge_enslaves_a_veth"]) == []
    top = lines.index("Differences between kernels: 1")
    assert lines[top + 1 : top + 4] == [
        "  test_matrix_features.py::test_bridge_enslaves_a_veth",
        f"    {'host':<{len(BLACKLISTED)}}  passed",
        f"    {BLACKLISTED}  skipped: kernel lacks bridge support: creating a bridge failed: ENOTSUP (Operation not supported)",
    ]
    page = (tmp_path / "index.html").read_text()
    assert "Differences between kernels (1)" in page and "kernel lacks bridge support" in page


@needs_vm
def test_kernel_that_does_not_boot_in_time_is_one_row(tmp_path):
    done = nslab_matrix("6.1", "--reports", str(tmp_path), "--timeout", "3", "--accel", "tcg", "-k", "test_09")
    assert done.returncode == 1
    assert "6.1: did not boot: no sign of life within 3 s (killed)" in done.stdout
    assert _processes_with(str(tmp_path)) == []  # vng and QEMU were killed with their group


def test_the_guests_bytecode_is_written_here_whatever_the_environment_says(monkeypatch):
    """A guest reads the checkout read-only and writes no bytecode: what it imports is compiled
    here first, as the guest's pytest imports it (nslab's modules plainly, a test imports the
    diagnosis only when it probes; the test modules and the plugin rewritten), even under
    PYTHONDONTWRITEBYTECODE=1."""
    import importlib.util

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    tag = f"{sys.implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    modules = [ROOT / "nslab" / "matrix" / "guest.py", ROOT / "nslab" / "diagnosis" / "watch.py"]
    compiled = [Path(importlib.util.cache_from_source(str(module))) for module in modules]
    rewritten = [ROOT / "tests" / "__pycache__" / f"test_matrix_features.{tag}", ROOT / "fixtures" / "__pycache__" / f"plugin.{tag}"]
    for pyc in (*compiled, *rewritten):
        pyc.unlink(missing_ok=True)
    matrix.compile_for_guests(["tests/test_matrix_features.py"], None)
    assert all(pyc.exists() and pyc.stat().st_mtime >= module.stat().st_mtime for pyc, module in zip(compiled, modules))
    assert [pyc.name for pyc in rewritten if not pyc.exists()] == []
