"""`nslab why SRC DST [PORT]`: why does (or doesn't) SRC reach DST on this machine?

SRC and DST name network namespaces as `ip netns` lists them, `host` for the
one nslab runs in, or a PID (`/proc/PID/ns/net`, e.g. a container's); DST
may also be an IPv4 or IPv6 address, a link-local one with the interface of
SRC it is on (`fe80::1%eth0`). With PORT the probe is a TCP connect, else a
ping. It prints the verdict, the cause and nslab's explanation, the per-hop
trace, and for a failure the fixes verified on a copy of the namespaces.
It changes nothing but what a ping changes (neighbour entries), and deletes
the entries its probe started and left unresolved.

Exit status: 0 the probe succeeded, 1 it failed, 2 bad input, 3 cannot run here.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="where the probe starts: a namespace of `ip netns`, host, or a PID")
    parser.add_argument("dst", metavar="DST", help="an IPv4 or IPv6 address (fe80::1%%eth0 for a link-local one), or a namespace (its address is read from the kernel)")
    parser.add_argument("port", metavar="PORT", nargs="?", type=int, help="probe TCP PORT (a connect) instead of pinging")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
    parser.add_argument("--svg", metavar="FILE", help="also draw the lab with the packet's path into FILE")
    parser.add_argument("--no-fixes", action="store_true", help="do not search verified fixes for a failure")
    parser.add_argument("--no-drop-reasons", action="store_true", help="faster: skip the kernel's drop reasons (bpftrace takes under a second to attach)")
    parser.add_argument("--budget", type=float, default=3.0, metavar="S", help="seconds the fix search may take (default: %(default)s)")
    parser.add_argument(
        "--timeout", type=float, default=1.0, metavar="S", help="the probe's deadline when evidence cannot settle it earlier (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    from nslab.advice import machine as mach

    problem = _usage_problem(args, mach.is_address(args.dst))
    if problem:
        return _fail(problem, 2)
    if os.geteuid() != 0:
        return _fail("reads this machine's namespaces and probes between them, which needs root: run it with sudo", 3)
    try:
        return _why(args, mach)
    except mach.WhyError as exc:
        return _fail(str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - the kernel or the sandbox refused: one line, no traceback
        return _fail(f"cannot probe here: {exc}", 3)


def _why(args: argparse.Namespace, mach) -> int:
    from nslab.advice import report
    from nslab.advice.fixes import find

    dst_is_address = mach.is_address(args.dst)
    machine, names = mach.open_machine([args.src] + ([] if dst_is_address else [args.dst]))
    prefixes = dict(machine.prefixes)
    lab = mach.adopt(machine, timeout=args.timeout, drop_reasons=not args.no_drop_reasons)  # bpftrace attaches while the rest is read
    src = names[0]
    dst, target = (args.dst, None) if dst_is_address else (mach.address_of(lab, names[1], src), names[1])
    probe = mach.probe_of(src, dst, args.port)
    with mach.unresolved_given_back(lab):
        result = probe.run(lab, args.timeout)
    found = None if result.ok or args.no_fixes else find(result, lab, budget=args.budget)
    if args.json:
        print(json.dumps(report.to_dict(result, found, prefixes, target), indent=2))
    else:
        print(report.to_text(result, found, prefixes, target))
    if args.svg:
        _draw(args.svg, lab, result, found)
    return 0 if result.ok else 1


def _draw(path: str, lab, result, found) -> None:
    from nslab.advice.path import draw
    from nslab.views.render import DiagramUnavailable

    fixes = [f.changes for f in found.fixes] if found is not None else []
    try:
        Path(path).write_bytes(draw(lab.topology, result, fixes, title=result.summary()))
    except DiagramUnavailable as exc:
        print(f"nslab why: cannot draw {path}: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"nslab why: --svg: cannot write {path}: {exc.strerror}", file=sys.stderr)


def _usage_problem(args: argparse.Namespace, dst_is_address: bool) -> str | None:
    if args.port is not None and not 0 < args.port < 65536:
        return f"PORT: {args.port} is not a TCP port; give 1 to 65535"
    if ":" in args.dst and not dst_is_address:
        return f"DST: {args.dst!r} is not an IPv6 address (e.g. fd00::2, or fe80::1%eth0 with the interface of a link-local one)"
    if dst_is_address and "%" not in args.dst and ipaddress.ip_address(args.dst).is_link_local and ":" in args.dst:
        return f"DST: {args.dst!r} is link-local: add the interface of SRC it is on, e.g. {args.dst}%eth0"
    if dst_is_address and "%" in args.dst and not ipaddress.ip_address(args.dst.partition("%")[0]).is_link_local:
        return f"DST: {args.dst!r}: only a link-local IPv6 address takes an interface after %; give {args.dst.partition('%')[0]}"
    if not 0 < args.timeout <= 60:
        return f"--timeout: {args.timeout:g} must be in (0, 60] seconds"
    if not 0 < args.budget <= 120:
        return f"--budget: {args.budget:g} must be in (0, 120] seconds"
    if not dst_is_address and args.dst.replace(".", "").isdigit() and "." in args.dst:
        return f"DST: {args.dst!r} is not an IPv4 address (four numbers 0-255, e.g. 10.0.0.2)"
    return None


def _fail(message: str, status: int) -> int:
    print(f"nslab why: {message}", file=sys.stderr)
    return status
