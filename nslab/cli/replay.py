"""`nslab replay TUTORIAL`: run a tutorial's commands step by step in a private sandbox.

The sandbox's "host" is a fresh network namespace (lo up, nothing else,
unless `--given SCRIPT` sets up what the tutorial's VM already had). Each
command prints its exit status and the tail of its output; `ping`, `curl`,
`wget` and `nc` also nslab's verdict, cause and explanation. A typo, a hang,
an outcome other than the author's `# expect: ok|fail`, and an unexpected
failure are findings.

Exit status: 0 no findings, 1 findings, 2 bad input, 3 cannot run here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tutorial", metavar="TUTORIAL", help="a tutorial: Markdown, or plain text copied from a web page")
    parser.add_argument("--given", metavar="SCRIPT", help="a shell script that sets up what the tutorial's machine already had (run first)")
    parser.add_argument("--json", action="store_true", help="print the replay as JSON (for scripts)")
    parser.add_argument("--fixes", action="store_true", help="for a failed ping/curl/wget/nc, the fixes verified on a copy")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds a command may run before it counts as a hang (default: %(default)s)")
    parser.add_argument(
        "--interrupt", type=float, default=2.0, metavar="S", help="seconds before Ctrl-C for a command that runs until interrupted (default: %(default)s)"
    )
    parser.add_argument("--list", action="store_true", help="only list the commands found, with their lines; run nothing")
    parser.add_argument("--exercise", metavar="DIR", help="write a draft DIR/exercise.toml from the tutorial's final state and its probes")


def run(args: argparse.Namespace) -> int:
    from nslab.replay.tutorial import commands

    problem = _usage_problem(args)
    if problem:
        return _fail(problem, 2)
    try:
        with open(args.tutorial, errors="replace") as f:
            found = commands(f.read())
        given = open(args.given, errors="replace").read() if args.given else None
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    if args.list:
        for c in found:
            print(f"line {c.line:>4}: {c.text}" + (f"   # expect: {c.expect}" if c.expect else ""))
        return 0
    if not found:
        return _fail(
            f"TUTORIAL: no shell commands found in {args.tutorial} (fenced sh/bash/console blocks, $ prompts, or lines starting with ip, ping, ...)", 2
        )
    from nslab.grading import jail

    if jail.unavailable():
        return _fail("replay runs the tutorial in a sandbox of its own (as nslab grade does), which needs real root: run it with sudo", 3)
    return _replay(args, found, given)


def _replay(args: argparse.Namespace, found, given: str | None) -> int:
    from nslab.replay import show
    from nslab.replay.runner import Options, replay

    options = Options(timeout=args.timeout, interrupt=args.interrupt, fixes=args.fixes, draft=bool(args.exercise))
    on_step = None if args.json else (lambda step: print(show.step_text(step), flush=True))
    if not args.json:
        print(f"replaying {len(found)} commands of {args.tutorial} in a private sandbox (its host: a fresh network namespace)", flush=True)
    try:
        done = replay(found, options, tutorial=os.path.basename(args.tutorial), given=given, on_step=on_step)
    except Exception as exc:  # noqa: BLE001 - the sandbox could not be made: one line
        return _fail(f"cannot replay here: {exc}", 3)
    if done.given is not None and done.given["status"] != 0:
        tail = " | ".join(done.given["output"]) or "no output"
        return _fail(f"--given: {args.given} failed (exit status {done.given['status']}): {tail}", 3)
    if args.exercise:
        problem = _write_draft(args, found, done, given)
        if problem:
            return _fail(problem, 3)
    if args.json:
        print(json.dumps(done.to_dict(), indent=2))
    else:
        for line in done.made:
            print(f"before the first command: {line}")
        print(done.summary_line())
    return 0 if done.clean else 1


def _write_draft(args: argparse.Namespace, found, done, given: str | None) -> str | None:
    """Write DIR/exercise.toml; a line saying why not, else None."""
    from nslab.grading.exercise import ExerciseError
    from nslab.replay import compare, draft

    name = os.path.splitext(os.path.basename(args.tutorial))[0]
    commands = [(s.line, s.command) for s in done.steps if s.kind != "skipped"]
    items = draft.checks(done.final, done.probes, compare.known_names([c.text for c in found]))
    if not items:
        return "--exercise: the tutorial leaves nothing to check (no namespace, link, address, route or probe of its own)"
    try:
        text = draft.exercise_toml(f"Draft from {name}", name, items, commands, given)
    except ExerciseError as exc:
        return f"--exercise: the draft is not a valid exercise: {exc}"
    path = os.path.join(args.exercise, "exercise.toml")
    os.makedirs(args.exercise, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if not args.json:
        print(f"wrote {path}: {len(items)} checks, {sum(draft.POINTS[c['type']] for c in items)} points (a draft: edit its goal, points and hints)")
    return None


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not os.path.isfile(args.tutorial):
        return f"TUTORIAL: {args.tutorial!r} is not a file"
    if args.given and not os.path.isfile(args.given):
        return f"--given: {args.given!r} is not a file"
    if not 0 < args.timeout <= 600:
        return f"--timeout: {args.timeout:g} must be in (0, 600] seconds"
    if args.exercise and os.path.exists(os.path.join(args.exercise, "exercise.toml")):
        return f"--exercise: {os.path.join(args.exercise, 'exercise.toml')} exists; remove it or choose another DIR"
    if not 0 < args.interrupt < args.timeout:
        return f"--interrupt: {args.interrupt:g} must be more than 0 and less than --timeout ({args.timeout:g})"
    return None


def _fail(message: str, status: int) -> int:
    print(f"nslab replay: {message}", file=sys.stderr)
    return status
