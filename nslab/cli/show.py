"""`nslab show [LAB]`: a catalog lab, a scenario's final state or a topology file,
as the `ip` commands a learner types, as JSON or DOT, or drawn as SVG/PNG.

    nslab show                                   # the labs there are
    nslab show bridge-three-containers           # its ip commands (run them as root)
    nslab show scenarios/test_host_to_container.py --svg lab.svg
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nslab.model.topology import LabError, Topology
from nslab.tutorials import catalog
from nslab.views.render import FORMATS, DiagramUnavailable, draw, ip_script, to_dot, to_json


def resolve(target: str) -> tuple[str, str, Topology]:
    """A catalog lab's name, a scenario module (path or name) that has a catalog
    lab, or a JSON topology file -> (name, description, topology)."""
    if target in catalog.LABS:
        lab = catalog.LABS[target]
        return lab.name, lab.title, lab.topology
    stem = Path(target).name.removesuffix(".py")
    for lab in catalog.LABS.values():
        if lab.scenario == stem:
            return lab.name, f"{lab.title} (the final state of {lab.scenario})", lab.topology
    if target.endswith(".json"):
        try:
            with open(target) as f:
                data = json.load(f)
        except OSError as exc:
            raise LabError("target", f"cannot read {target!r}: {exc.strerror}") from None
        except ValueError as exc:
            raise LabError("target", f"{target!r} is not valid JSON ({exc})") from None
        return os.path.basename(target), "a topology file", Topology.from_dict(data)
    raise LabError(
        "target",
        f"no lab or scenario named {target!r}; known labs: {', '.join(catalog.LABS)} "
        f"(scenarios: {', '.join(lab.scenario for lab in catalog.LABS.values() if lab.scenario)}), or a .json topology file",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", help="a lab name (see `nslab show` with no argument), a scenario module, or a topology .json file")
    parser.add_argument("--svg", metavar="FILE", help="also draw the lab as SVG into FILE")
    parser.add_argument("--png", metavar="FILE", help="also draw the lab as PNG into FILE")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--json", action="store_true", help="print the topology as JSON instead of ip commands")
    view.add_argument("--dot", action="store_true", help="print the Graphviz source instead of ip commands")


def run(args: argparse.Namespace) -> int:
    if args.target is None:
        for lab in catalog.LABS.values():
            print(f"{lab.name:<26} {lab.title}" + (f"  [scenario {lab.scenario}]" if lab.scenario else ""))
        return 0
    try:
        name, description, topo = resolve(args.target)
    except LabError as exc:
        print(f"nslab show: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(to_json(topo))
    elif args.dot:
        print(to_dot(topo, name), end="")
    else:
        print(ip_script(topo, f"{name}: {description}"), end="")
    for fmt in FORMATS:
        path = getattr(args, fmt)
        if path:
            try:
                Path(path).write_bytes(draw(topo, fmt, name))
            except DiagramUnavailable as exc:
                print(f"nslab show: cannot draw {path}: {exc}", file=sys.stderr)
                return 3
            except OSError as exc:
                print(f"nslab show: cannot write {path}: {exc.strerror}", file=sys.stderr)
                return 2
            print(f"wrote {path}", file=sys.stderr)
    return 0



__all__ = ["add_arguments", "resolve", "run"]
