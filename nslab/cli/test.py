"""`nslab test [PYTEST ARGS]`: the scenario suite that comes with nslab, run by pytest.

The suite is the package nslab.scenarios (a checkout's scenarios/, which the
wheel carries), so this runs the same tests as `pytest scenarios/` in a
checkout, with the settings a checkout's pyproject.toml gives them. An
installed suite has no project file of its own, and one found above
site-packages is not nslab's: `-c /dev/null` reads none. Reports (JUnit,
HTML, pcaps) go to ./reports, or where --nslab-reports says.

pytest runs as a program of its own (the library never imports pytest), with
`-P` so that the directory it is started from cannot shadow the installed
nslab; its exit status is this command's.

    nslab test                  # the whole suite
    nslab test -n 2 -k bridge   # pytest's own options (-n needs pytest-xdist)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

SUITE = "nslab.scenarios"
# pyproject.toml's [tool.pytest.ini_options], which `pytest scenarios/` reads in a checkout
SETTINGS = ("-ra", "-p", "no:cacheprovider", "-o", "xfail_strict=true")
PASSES_ARGUMENTS = True  # every word after `nslab test` is pytest's (nslab.cli.main hands them over)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "nslab test [PYTEST ARGS]"
    parser.epilog = "Every argument goes to pytest: nslab test --help shows pytest's options, nslab's among them (--nslab-*)."


def pytest_argv(passed: list[str]) -> list[str]:
    """The pytest command line that runs the installed suite with *passed* (the user's pytest arguments)."""
    spec = importlib.util.find_spec(SUITE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the scenario suite ({SUITE}) is not installed with this nslab; reinstall nslab from its wheel")
    suite = spec.submodule_search_locations[0]
    reports = os.path.abspath(os.environ.get("NSLAB_REPORTS", "reports"))
    return [sys.executable, "-P", "-m", "pytest", "-c", os.devnull, "--rootdir", suite, *SETTINGS,
            "--nslab-reports", reports, "--pyargs", SUITE, *passed]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("pytest") is None:
        print("nslab test: pytest is not installed here; install it (pip install pytest), or reinstall nslab with its dependencies", file=sys.stderr)
        return 2
    try:
        argv = pytest_argv(args.passed)
    except FileNotFoundError as exc:
        print(f"nslab test: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(argv[0], argv)
