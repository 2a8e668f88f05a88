"""`nslab matrix RELEASE`: a Debian release's own userland, without booting it
(`./run matrix trixie` does; see the README's *Kernel matrix*): which releases
can run nslab at all, what `--list` shows, and the versions a column names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nslab.kernel import sandbox
from nslab.matrix import cache, guest, userland
from nslab.matrix.kernels import RELEASES, parse_kernel

ROOT = Path(__file__).resolve().parent.parent


def nslab_matrix(*args: str) -> subprocess.CompletedProcess:
    """From the host's namespaces: the archive's lists may need a refresh, which a sandbox cannot reach."""
    return subprocess.run(sandbox.from_outside([sys.executable, "-m", "nslab.cli.main", "matrix", *args]),
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_a_release_name_is_a_userland_on_its_own_kernel():
    assert [parse_kernel(r).userland for r in RELEASES] == list(RELEASES)
    assert parse_kernel("6.1").userland is None and parse_kernel("host").userland is None
    assert parse_kernel("trixie,module_blacklist=bridge").append == ("module_blacklist=bridge",)


def test_list_names_each_kernel_and_release_and_what_is_cached():
    done = nslab_matrix("--list")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert set(rows) == {"5.10", "6.1", "6.12", "newest", *RELEASES}, done.stdout
    assert " linux-image-5.10.0-" in rows["5.10"] and rows["bullseye"].split()[1] == rows["5.10"].split()[1]
    assert "userland: cannot run nslab (python3 3.9; nslab needs 3.11)" in rows["bullseye"]
    for release in ("bookworm", "trixie", "sid"):
        assert "userland: built " in rows[release] or "userland: not built (python3 3." in rows[release], rows[release]


def test_a_release_whose_python_is_too_old_is_one_row_before_anything_is_built(tmp_path):
    done = nslab_matrix("bullseye", "--reports", str(tmp_path))
    assert done.returncode == 1
    assert "bullseye: not run: release 'bullseye': its Python is 3.9, and nslab needs 3.11 or newer (its Requires-Python); " \
           "use its kernel with this machine's userland instead (nslab matrix 5.10)" in done.stdout, done.stdout
    assert not list((cache.root() / "userlands").glob(".partial-*"))


def test_versions_come_from_the_roots_dpkg_database(tmp_path):
    status = tmp_path / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    status.write_text("Package: iproute2\nStatus: install ok installed\nVersion: 6.15.0-1\n\n"
                      "Package: nftables\nStatus: deinstall ok config-files\nVersion: 1.0.0-1\n\n"
                      "Package: iputils-ping\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3:20240905-3\n\n"
                      "Package: python3\nStatus: install ok installed\nVersion: 3.13.5-1\n")
    assert userland.versions(tmp_path) == "iproute2 6.15.0-1, iputils-ping 3:20240905-3, python3 3.13.5-1"
    assert userland.versions(tmp_path, "3.11.7") == "iproute2 6.15.0-1, iputils-ping 3:20240905-3, python 3.11.7"
    assert userland.versions(tmp_path / "none") == "unknown (no dpkg database)"


def test_the_guest_needs_only_what_the_suite_imports():
    wanted = userland.requirements()
    assert any(r.startswith("pyroute2") for r in wanted) and any(r.startswith("scapy") for r in wanted)
    assert any(r.startswith("pytest>=") for r in wanted) and not any(r.startswith(("virtme-ng", "hypothesis", "check-jsonschema", "pytest-")) for r in wanted)


def test_the_guest_script_exports_only_the_report_directory_writable(tmp_path):
    options = guest.qemu_options(Path("/srv/root"), ROOT, Path("/m"), tmp_path).split(" -fsdev ")
    assert len(options) == 4
    assert "path=/srv/root," in options[0] and ",readonly=on" in options[0]
    assert f"path={ROOT}," in options[1] and ",readonly=on" in options[1]
    assert "path=/m," in options[2] and ",readonly=on" in options[2]  # the kernel's modules, in the shared cache
    assert f"path={tmp_path}," in options[3] and "readonly" not in options[3]
    guest.write_script(ROOT, tmp_path, "echo body")
    script = (tmp_path / guest.SCRIPT).read_text()
    assert script.count("cache=loose") == 3
    lines = script.splitlines()  # the body runs after every mount, and its status is the script's
    body = lines.index("echo body")
    assert not any("mount " in line for line in lines[body:]) and lines[body + 1] == "status=$?" and lines[-1] == 'exit "$status"'
    assert len(guest.command().encode()) < 512  # the kernel's command line holds 2 KiB in all


def test_an_interpreter_outside_usr_is_read_through_the_cached_copy(tmp_path):
    """pyenv's Python in /root/.pyenv: bound from the cached export, not read over the uncached root."""
    assert guest.outside_usr(Path("/root/.pyenv/versions/3.11.7"), ROOT) == (Path("/root/.pyenv/versions/3.11.7"),)
    assert guest.outside_usr(Path("/usr"), ROOT) == () and guest.outside_usr(Path("/usr/local"), ROOT) == ()
    assert guest.outside_usr(ROOT / ".venv", ROOT) == () and guest.outside_usr(Path("/"), ROOT) == ()
    guest.write_script(ROOT, tmp_path, "echo body", binds=(Path("/root/.pyenv/versions/3.11.7"),))
    script = (tmp_path / guest.SCRIPT).read_text()
    mounts = script[: script.index("; then :")]  # all of them, or the uncached root as it was
    assert mounts.rstrip().endswith("&& mount --bind /run/nslab-sys/root/.pyenv/versions/3.11.7 /root/.pyenv/versions/3.11.7")


def test_a_userland_has_what_run_install_installs_for_the_scenarios():
    """./run install in a release's userland (nslab matrix bookworm --run-install) finds its Debian
    packages installed: the guest has no network for apt-get."""
    found = re.search(r"^SCENARIO_PACKAGES=\((.*)\)$", (ROOT / "run").read_text(), re.MULTILINE)
    assert found, "./run no longer sets SCENARIO_PACKAGES=(...) on one line: update this test"
    assert set(found[1].split()) <= set(userland.PACKAGES)


def test_run_install_is_refused_in_one_line_where_it_cannot_run_offline(tmp_path):
    done = nslab_matrix("6.1", "--run-install", "--reports", str(tmp_path))
    assert (done.returncode, done.stderr) == (2, "nslab matrix: --run-install: provisions a release's userland (bookworm); name one\n")
    done = nslab_matrix("trixie", "--run-install", "--reports", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("nslab matrix: --run-install: ./run install runs offline in the guest, from ") and "trixie's Python is 3.1" in done.stderr
    assert not (tmp_path / "trixie").exists()


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_a_release_builds_from_its_own_suites_with_security_updates(release):
    lines = userland._sources(release)
    assert [line.split()[-2] for line in lines] == [release, f"{release}-updates", f"{release}-security"]
