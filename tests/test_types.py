"""nslab/ type-checks: mypy with pyproject.toml's [tool.mypy] (lab/, model/, kernel/ and diagnosis/ under --strict's checks).

mypy keeps its cache under $XDG_CACHE_HOME/nslab/mypy/ (~/.cache/nslab/mypy/), never in
the checkout, which may be read-only: a warm run takes about a second, a cold one
a few seconds of CPU.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's cache for nslab, one per checkout (two checkouts' sources differ), or a
    temporary one where that cannot be written."""
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nslab" / "mypy" / checkout
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return tmp_path_factory.mktemp("mypy")
    return base if os.access(base, os.W_OK) else tmp_path_factory.mktemp("mypy")


def test_nslab_type_checks(tmp_path_factory):
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache_dir(tmp_path_factory)), "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_type_ignore_in_the_lab():
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "nslab" / "lab").rglob("*.py")) for n, line in enumerate(p.read_text().splitlines(), 1) if "type: ignore" in line]
    assert not found, f"the lab type-checks without exceptions: {found}"
