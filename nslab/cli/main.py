"""`nslab ...` for people: show, grade, matrix, clean.

Each subcommand lives in its own module, imported only when it runs; the
module provides `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "show": ("nslab.views.render", "print a lab's equivalent ip commands, or draw it as SVG/PNG"),
    "grade": ("nslab.grading.command", "grade a lab exercise: a student's script in a sandbox, or --live"),
    "matrix": ("nslab.matrix.runner", "run the scenario suite on several kernels and print one table"),
    "clean": ("nslab.kernel.leftovers", "remove what a killed nslab run left behind (and only that)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nslab", description="hermetic container-networking labs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(module=module)
        try:
            importlib.import_module(module).add_arguments(cmd)
        except ModuleNotFoundError:
            cmd.set_defaults(missing=True)
    args = parser.parse_args(argv)
    if getattr(args, "missing", False):
        parser.error(f"'{args.command}' is not available in this version")
    return importlib.import_module(args.module).run(args)


if __name__ == "__main__":
    sys.exit(main())
