"""`nslab ...` for people: show, grade, matrix, clean.

Each subcommand lives in its own module, imported only when it runs (so
`nslab --help` imports none of them); the module provides
`add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

COMMANDS = {
    "show": ("nslab.cli.show", "print a lab's equivalent ip commands, or draw it as SVG/PNG"),
    "grade": ("nslab.cli.grade", "grade a lab exercise: a student's script in a sandbox, or --live"),
    "matrix": ("nslab.matrix.runner", "run the scenario suite on several kernels and print one table"),
    "clean": ("nslab.cli.clean", "remove what a killed nslab run left behind (and only that)"),
    "why": ("nslab.cli.why", "why does a probe between this machine's namespaces fail? verdict, trace, verified fixes"),
    "replay": ("nslab.cli.replay", "run a tutorial's commands step by step in a private sandbox and check each"),
    "test": ("nslab.cli.test", "run the scenario suite that comes with nslab (pytest; every argument is pytest's)"),
    "cache": ("nslab.cli.cache", "list what nslab's shared cache holds (kernels, userlands) and its size; 'clean' empties it"),
}


class CommandUnavailable(Exception):
    """A subcommand cannot be loaded; the message says why in one line."""


def load(command: str) -> ModuleType:
    """The module behind *command*. A module of nslab's own that is missing means
    this version has no such command; any other missing module is a dependency,
    named, with how to install it."""
    module = COMMANDS[command][0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or str(exc)
        if missing == module or module.startswith(missing + "."):
            raise CommandUnavailable(f"'{command}' is not available in this version of nslab (no module {module})") from None
        top = missing.split(".")[0]
        raise CommandUnavailable(
            f"'{command}' needs the Python module {missing!r}, which is not installed here; "
            f"install it (e.g. pip install {top}), or reinstall nslab with its dependencies (./run install)"
        ) from None


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="nslab", description="hermetic container-networking labs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(argv)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(module=module)
        if name == chosen:
            try:
                load(name).add_arguments(cmd)
            except CommandUnavailable as exc:
                parser.error(str(exc))
    passed: list[str] = []
    if chosen in COMMANDS and getattr(load(chosen), "PASSES_ARGUMENTS", False):  # another program's arguments (nslab test: pytest's)
        at = argv.index(chosen) + 1
        argv, passed = argv[:at], argv[at:]
    args = parser.parse_args(argv)
    args.passed = passed
    return importlib.import_module(args.module).run(args)


if __name__ == "__main__":
    sys.exit(main())
