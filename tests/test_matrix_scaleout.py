"""Scale-out files: the Vagrantfile validates (when vagrant is installed), and
the CI workflow runs `./run matrix KERNEL` for kernels `nslab matrix` accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nslab.matrix import runner as matrix

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed (boxes cannot be downloaded here either)")
def test_vagrantfile_validates():
    done = subprocess.run(["vagrant", "validate"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


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
