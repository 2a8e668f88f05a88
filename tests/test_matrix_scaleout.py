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

from nslab.matrix import runner as matrix

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
    assert text.count(old) == 1, f"matrix.yml no longer has exactly one {old!r}: update this test's breakage"
    broken = tmp_path / "matrix.yml"
    broken.write_text(text.replace(old, new))
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
    assert boxes == {"nslab": "ubuntu/jammy64", "debian12": "debian/bookworm64", "ubuntu2404": "bento/ubuntu-24.04", "fedora": "bento/fedora-40"}
    assert 'primary: default, autostart: default' in text and 'default = name == "nslab"' in text
    assert 'provision "shell", inline: "cd /vagrant && ./run install"' in text


def test_ci_workflow_has_one_job_per_kernel_running_the_launcher():
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    kernels = re.search(r"^\s+kernel: \[(.*)\]$", text, re.MULTILINE).group(1)
    names = [k.strip().strip('"') for k in kernels.split(",")]
    assert names[0] == "host" and {"6.1", "6.12"} <= set(names)
    for name in names:
        assert matrix.parse_kernel(name).name == name
    assert re.search(r'^\s+run: \./run matrix "\$\{\{ matrix\.kernel \}\}"', text, re.MULTILINE)
