"""Scale-out files: the CI workflows are valid GitHub workflows (checked offline
against the schema check-jsonschema ships), the Vagrantfile validates (when
vagrant is installed), and the CI workflow runs `./run matrix KERNEL` for
kernels `nslab matrix` accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nslab.matrix.kernels import parse_kernel

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# the test extra's check-jsonschema, beside this interpreter; the schema is inside the package (no network)
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def check_workflows(*paths: Path) -> subprocess.CompletedProcess:
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} is missing: it comes with the test extra (./run install, or pip install -e '.[test]')"
    argv = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_ci_workflows_are_valid_github_workflows():
    assert WORKFLOWS, "no .github/workflows/*.yml found"
    done = check_workflows(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (("    runs-on: ubuntu-latest\n", ""), "'runs-on' is a required property"),
        (("    timeout-minutes:", "    timeout-minuts:"), "'timeout-minuts' was unexpected"),
    ],
    ids=["runs-on missing", "misspelt key"],
)
def test_a_broken_workflow_is_rejected(tmp_path, breakage, expected):
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    old, new = breakage
    assert old in text, f"matrix.yml no longer has {old!r}: update this test's breakage"
    broken = tmp_path / "matrix.yml"
    broken.write_text(text.replace(old, new, 1))  # the first job only
    done = check_workflows(broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout + done.stderr


def vagrant_validate(vagrantfile_dir: Path, scratch: Path) -> subprocess.CompletedProcess:
    """`vagrant validate` with nothing written outside `scratch` (its home and the
    project's .vagrant/ directory) and no version check over the network.

    Validation needs a usable provider; without VirtualBox (none here) the
    provider blocks (vb.memory, vb.cpus) go unchecked (--ignore-provider),
    everything else (boxes, hostnames, provisioners, define options) is checked."""
    env = {**os.environ, "VAGRANT_HOME": str(scratch / "home"), "VAGRANT_DOTFILE_PATH": str(scratch / "dotfile"), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    argv = ["vagrant", "validate", *([] if shutil.which("VBoxManage") else ["--ignore-provider"])]
    return subprocess.run(argv, cwd=vagrantfile_dir, env=env, capture_output=True, text=True, timeout=120, check=False)


needs_vagrant = pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed (./run install as root installs it; or apt-get install vagrant)")


@needs_vagrant
def test_vagrantfile_validates(tmp_path):
    done = vagrant_validate(ROOT, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Vagrantfile validated successfully." in done.stdout


@needs_vagrant
def test_a_broken_vagrantfile_is_rejected(tmp_path):
    text = (ROOT / "Vagrantfile").read_text()
    assert text.count("vm.vm.hostname = name") == 1, "the Vagrantfile no longer sets vm.vm.hostname once: update this test's breakage"
    (tmp_path / "Vagrantfile").write_text(text.replace("vm.vm.hostname = name", "vm.vm.hostnme = name"))
    done = vagrant_validate(tmp_path, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "The following settings shouldn't exist: hostnme" in done.stdout + done.stderr


def test_vagrantfile_has_the_distro_boxes_and_the_learners_default():
    text = (ROOT / "Vagrantfile").read_text()
    boxes = dict(re.findall(r'^\s+"(\w+)" => "([^"]+)",', text, re.MULTILINE))
    assert boxes == {"nslab": "debian/bookworm64", "ubuntu2404": "bento/ubuntu-24.04"}
    assert 'primary: default, autostart: default' in text and 'default = name == "nslab"' in text
    assert 'provision "shell", inline: "cd /vagrant && ./run install"' in text


def matrix_axis(text: str, axis: str) -> list[str]:
    """The values of a workflow's `AXIS: [a, "b", ...]` matrix line."""
    found = re.findall(rf"^\s+{axis}: \[(.*)\]$", text, re.MULTILINE)
    assert len(found) == 1, f"matrix.yml: expected one {axis}: [...] line, found {len(found)}"
    raw = [value.strip() for value in found[0].split(",")]
    unquoted_numbers = [value for value in raw if re.fullmatch(r"[\d.]+", value)]
    assert not unquoted_numbers, f"matrix.yml: {axis}: {unquoted_numbers} must be quoted (YAML reads 5.10 as the number 5.1)"
    return [value.strip('"') for value in raw]


def test_ci_workflow_has_one_job_per_kernel_running_the_launcher():
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    kernels, userlands = matrix_axis(text, "kernel"), matrix_axis(text, "userland")
    assert kernels[0] == "host" and {"5.10", "6.1", "6.12", "newest"} <= set(kernels)
    assert userlands == ["bookworm", "trixie"]
    for name in kernels + userlands:
        assert parse_kernel(name).name == name  # what ./run matrix accepts
    assert all(parse_kernel(name).userland is None for name in kernels)
    assert all(parse_kernel(name).userland == name for name in userlands)
    for axis in ("kernel", "userland"):
        assert re.search(rf'^\s+run: \./run matrix "\$\{{\{{ matrix\.{axis} \}}\}}" --timeout (\d+)$', text, re.MULTILINE), f"no job runs ./run matrix on matrix.{axis}"
    # nslab's limit per column stays under the job's, so a slow column is a row and its reports are uploaded
    job_minutes = [int(m) for m in re.findall(r"^\s+timeout-minutes: (\d+)$", text, re.MULTILINE)]
    column_seconds = [float(s) for s in re.findall(r"--timeout (\d+)", text)]
    assert len(job_minutes) == 2 and len(column_seconds) == 2
    assert max(column_seconds) < min(job_minutes) * 60 - 300
