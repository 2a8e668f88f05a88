"""`nslab matrix`: kernel names, bounded processes, JUnit to table, and one
real run: the host and Debian's 6.1 booted with `module_blacklist=bridge`.

The VM tests boot one QEMU guest each (TCG here: 2 min for both, measured) and are
skipped, saying what to install, where virtme-ng or QEMU is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from nslab.kernel import sandbox
from nslab.matrix import runner as matrix

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
BLACKLISTED = "6.1,module_blacklist=bridge"


def nslab_matrix(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`nslab matrix ARGS` as a user runs it: from the host's namespaces (it fetches
    kernels from the package archive, which a test's sandbox cannot reach)."""
    argv = sandbox.from_outside([sys.executable, "-m", "nslab.cli.main", "matrix", *args])
    return subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# -- without a VM -------------------------------------------------------------
@pytest.mark.parametrize(
    "text, name, append",
    [("host", "host", ()), ("6.1", "6.1", ()), ("6.1-rt", "6.1-rt", ()), ("6.12", "6.12", ()),
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


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="Debian kernels are found with apt-cache; not a Debian system")
def test_debian_package_names():
    import re

    try:
        generic = matrix.package_for("6.1")
    except matrix.MatrixError as exc:
        pytest.skip(f"apt lists no Debian 6.1 kernel here: {exc}")
    cloud, newer = matrix.package_for("6.1-cloud"), matrix.package_for("6.12")
    assert re.fullmatch(r"linux-image-6\.1\.0-\d+-amd64", generic)
    assert re.fullmatch(r"linux-image-6\.1\.0-\d+-cloud-amd64", cloud)
    assert re.fullmatch(r"linux-image-6\.12\.\d+\+deb\d+-amd64", newer)
    with pytest.raises(matrix.MatrixError, match=r"kernel '9\.99': no package matches linux-image-9\.99\*-amd64"):
        matrix.package_for("9.99")


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
    pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", f"--junitxml={junit}")
    cases = matrix.read_junit(junit)
    verdicts = {test.split("::")[1]: case.verdict for test, case in cases.items()}
    assert verdicts == {"test_pass": "passed", "test_fail": "failed", "test_skip": "skipped", "test_xfail": "xfail"}
    assert "the kernel said no" in cases["test_four.py::test_fail"].detail
    one = matrix.Run(matrix.parse_kernel("host"), release="A", accel="native", seconds=1.0, cases=cases)
    other_cases = dict(cases, **{"test_four.py::test_pass": matrix.Case("test_four.py::test_pass", "skipped", "no bridge")})
    other = matrix.Run(matrix.parse_kernel("6.1"), release="B", accel="tcg", seconds=2.0, cases=other_cases)
    broken = matrix.Run(matrix.parse_kernel("6.12"), problem="did not boot: Kernel panic")
    assert matrix.differences([one, other, broken]) == ["test_four.py::test_pass"]
    text = matrix.table([one, other, broken])
    top = text.index("Differences between kernels: 1")
    assert text.index("    host  passed") > top and text.index("    6.1   skipped: no bridge") > top
    assert text.index("test_four.py::test_fail") > text.index("6.1   skipped: no bridge")
    assert text.rstrip().endswith("6.12: did not boot: Kernel panic")


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
def test_debian_kernel_without_bridges_runs_the_scenarios_and_skips_the_bridge_test(tmp_path):
    """One VM (one test, so xdist cannot boot it twice): the smoke test and the
    module_blacklist=bridge case, compared with the host in one table."""
    started = time.monotonic()
    done = nslab_matrix(
        "host", BLACKLISTED, "--reports", str(tmp_path), "--timeout", "600",
        "--suite", "scenarios/test_veth_two_namespaces.py", "--suite", "tests/test_matrix_features.py",
        "-k", "test_09 or test_12 or bridge_enslaves",
    )
    print(f"matrix host + {BLACKLISTED}: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    # smoke: the scenarios pass in the guest, on Debian's kernel, under KVM or TCG
    guest = _junit(tmp_path, BLACKLISTED)
    for name in ("test_09_ping_ns2_from_ns1", "test_12_netcat_chat_works_both_ways"):
        assert [child.tag for child in guest[name]] == [], f"{name} did not pass in the guest"
    row = next(line for line in done.stdout.splitlines() if line.startswith(f"  {BLACKLISTED}"))
    assert " 6.1.0-" in row and ("tcg (" in row or "kvm (" in row) and row.endswith("2 passed, 1 skipped")
    # no bridges: the bridge test skips naming the feature (it passed on the host)
    skipped = guest["test_bridge_enslaves_a_veth"].find("skipped")
    assert skipped is not None, "the bridge test ran on a kernel booted with module_blacklist=bridge"
    assert skipped.get("message") == "kernel lacks bridge support: creating a bridge failed: ENOTSUP (Operation not supported)"
    assert list(_junit(tmp_path, "host")["test_bridge_enslaves_a_veth"]) == []
    lines = done.stdout.splitlines()
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
