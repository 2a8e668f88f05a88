"""nslab installed as a tool: its wheel in a fresh venv, run from a directory that is no checkout.

The wheel is built from a copy of this checkout's sources (a build writes
build/ next to its sources) and installed, with pytest-xdist for -n 2, by pip
from the wheels that `./run install` keeps in .venv/wheels (tox: in its env's
wheels/): no index, no download. From there, `nslab grade` scores the
exercise's own samples as their expected.toml says, `nslab show` lists the
tutorial catalog, and `nslab test` runs the scenario suite the wheel carries:
the same tests as scenarios/ here, all of them passing or skipping (`pytest
--pyargs nslab.scenarios` collects the same ones).

A Debian package a command needs and lacks is named with its apt-get line:
here nftables, without which `nslab why` cannot read a namespace's rules to copy
them, and says so instead of "nothing nslab can see".
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from nslab import Address, Topology, Veth
from nslab.advice import copy, trials
from nslab.tutorials import catalog

ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(sys.prefix) / "wheels"  # beside this venv: ./run install fills .venv/wheels, tox.ini its env's
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXERCISE = "veth-two-namespaces"
SAMPLES = ("correct", "forgot-lo-up")  # full marks, and a score below them


class Installed:
    """A fresh venv with nslab's wheel installed, and a working directory outside any checkout."""

    def __init__(self, base: Path):
        self.base, self.venv, self.cwd = base, base / "venv", base / "elsewhere"
        (self.wheel,) = (base / "dist").glob("nslab-*.whl")

    @classmethod
    def make(cls, base: Path) -> Installed:
        """Build the wheel from a copy of the sources and install it into a fresh venv, all under *base*."""
        assert ROOT not in base.parents, "the fresh venv must live outside the checkout"
        source = base / "source"
        ignore = shutil.ignore_patterns("__pycache__")
        for directory in {"nslab", *PROJECT["tool"]["setuptools"]["package-dir"].values()}:
            shutil.copytree(ROOT / directory, source / directory, ignore=ignore)
        for name in ("pyproject.toml", PROJECT["project"]["readme"]):
            shutil.copy(ROOT / name, source / name)
        pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(source))  # this venv's setuptools: no build env to make
        venv = base / "venv"
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)  # type: ignore[attr-defined]
        (wheel,) = (base / "dist").glob("nslab-*.whl")
        pip("install", "--no-compile", str(wheel), "pytest-xdist", into=venv)  # xdist: the suite under -n 2, as here
        (base / "elsewhere").mkdir()  # last: the sign that the rest is done
        return cls(base)

    def run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NSLAB_REPORTS")}
        return subprocess.run([str(self.venv / "bin" / program), *args], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    @property
    def package(self) -> Path:
        (found,) = self.venv.glob("lib/python3*/site-packages/nslab")
        return found


def pip(command: str, *args: str, into: Path | None = None) -> None:
    """This venv's pip (working on the venv *into*, if given), offline: from .venv/wheels only."""
    target = ["--python", str(into / "bin" / "python")] if into else []
    argv = [sys.executable, "-m", "pip", *target, command, "--disable-pip-version-check", "-q", "--no-index", "--find-links", str(WHEELS), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Made once per run: under xdist, by the first worker that asks, in a directory they all share."""
    if not WHEELS.is_dir():
        pytest.fail(f"{WHEELS} is missing: ./run install fills .venv/wheels with the wheels of .venv (run it again)")
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return Installed.make(tmp_path_factory.mktemp("installed"))
    shared = tmp_path_factory.getbasetemp().parent  # this run's, above each worker's own
    base = shared / "installed"
    with open(shared / "installed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "elsewhere").is_dir():
            shutil.rmtree(base, ignore_errors=True)  # a worker's attempt that failed half-way
            base.mkdir()
            Installed.make(base)
    return Installed(base)


def test_the_wheel_carries_the_plugin_the_scenarios_and_the_exercises(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert "nslab/fixtures/plugin.py" in names
    assert {f"nslab/scenarios/{p.name}" for p in (ROOT / "scenarios").glob("*.py")} <= names
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "exercises").rglob("*") if p.is_file()}
    assert {f"nslab/{name}" for name in shipped} <= names
    done = installed.run("python", "-c", "import nslab; print(nslab.__file__)")
    assert done.stdout.strip() == str(installed.package / "__init__.py"), done.stderr  # the wheel's, not this checkout's


def test_installed_nslab_grades_the_packaged_exercise_samples(installed):
    samples = installed.package / "exercises" / EXERCISE / "samples"
    expected = tomllib.loads((samples / "expected.toml").read_text())
    report = installed.cwd / "grades.json"
    done = installed.run("nslab", "grade", EXERCISE, *(str(samples / f"{s}.sh") for s in SAMPLES), "--json", str(report))
    assert done.returncode == 1, done.stdout + done.stderr  # one sample misses points
    scores = {Path(g["submission"]).stem: g["score"] for g in json.loads(report.read_text())["submissions"]}
    assert scores == {s: expected[s]["score"] for s in SAMPLES}, done.stdout


def test_installed_nslab_show_lists_the_catalog_and_prints_a_lab(installed):
    listed = installed.run("nslab", "show")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines() if line.strip()] == list(catalog.LABS)
    lab = installed.run("nslab", "show", EXERCISE)
    assert lab.returncode == 0 and "ip netns add ns1" in lab.stdout, lab.stdout + lab.stderr


def checkout_scenarios() -> set[str]:
    """The scenario tests a checkout's `pytest scenarios/` collects, as 'test_module.py::test_name[param]'."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", "scenarios/"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return {line.removeprefix("scenarios/") for line in done.stdout.splitlines() if line.startswith("scenarios/")}


@pytest.mark.starts_first
def test_installed_scenario_suite_runs_the_same_tests_and_passes(installed):
    reports = installed.base / "reports"
    done = installed.run("nslab", "test", "-q", "-n", "2", "--nslab-reports", str(reports), timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    ran = {}
    for case in ElementTree.parse(reports / "junit.xml").iter("testcase"):
        verdict = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        ran[f"{case.get('classname')}.py::{case.get('name')}"] = verdict
    assert set(ran) == checkout_scenarios()
    assert set(ran.values()) <= {"passed", "skipped"}
    collected = installed.run("pytest", "--pyargs", "nslab.scenarios", "--collect-only", "-q", "-p", "no:cacheprovider", "--nslab-reports", str(reports / "collected"))
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert f"{len(ran)} tests collected" in collected.stdout, collected.stdout[-2000:]


def test_why_names_nftables_when_nft_is_missing_and_only_then(make_lab, monkeypatch, tmp_path):
    lab = make_lab(Topology(["a", "b"], veths=[Veth("a", "va", "b", "vb")], addresses=[Address("a", "va", "10.0.0.1/24")]))
    state = copy.read_state(lab)
    assert shutil.which("nft") is not None and "nftables" not in trials._missing(state)
    monkeypatch.setenv("PATH", str(tmp_path))  # a directory without nft
    assert trials._missing(copy.read_state(lab)) == "nftables rules, if any (nft is not installed: apt-get install nftables)"


def test_installed_nslab_matrix_runs_its_own_suite_and_names_what_it_lacks(installed):
    """No checkout around it: the host column runs the installed scenarios (through nslab test,
    whose root is the installed suite), and what cannot run from a wheel is one line, as is a missing virtme-ng."""
    reports = installed.base / "matrix"
    done = installed.run("nslab", "matrix", "host", "-k", "test_09_ping_ns2_from_ns1", "--reports", str(reports))
    assert done.returncode == 0, done.stdout + done.stderr
    (case,) = ElementTree.parse(reports / "host" / "junit.xml").iter("testcase")
    assert (case.get("classname"), case.get("name"), list(case)) == ("test_veth_two_namespaces", "test_09_ping_ns2_from_ns1", [])
    refused = installed.run("nslab", "matrix", "host", "trixie")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("nslab matrix: an installed nslab runs its own scenario suite on kernels") and refused.stderr.count("\n") == 1
    no_vng = installed.run("nslab", "matrix", "6.1")  # the wheel's venv has no virtme-ng (a test extra)
    assert no_vng.returncode == 2 and no_vng.stderr.startswith("nslab matrix: booting a kernel needs what is missing here: ")
    assert no_vng.stderr.rstrip().endswith("pip install virtme-ng") and no_vng.stderr.count("\n") == 1
