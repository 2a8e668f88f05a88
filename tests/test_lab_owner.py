"""The lab owns its model: outside nslab/lab/ nothing writes `*.topology`, and
nothing reaches into a Lab's or a Netns's private members (checked on the AST).

A change goes through `Lab.apply` (nslab/lab/edits.py), a namespace's own
steps, or `Lab.read_back()` for namespaces adopted rather than built.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "nslab" / "lab"
OWNERS = ("Lab", "Netns", "Steps", "Readback", "Processes", "Probing")  # a Lab, and a Netns with its parts
CHECKED = [ROOT / "nslab", ROOT / "fixtures", ROOT / "scenarios", ROOT / "bench", ROOT / "corpus", ROOT / "tests"]


def private_members() -> set[str]:
    """`_name` methods and attributes of the lab's classes, as defined in nslab/lab/."""
    names: set[str] = set()
    for path in LAB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name in OWNERS:
                for item in ast.walk(node):
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(item.name)
                    elif isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) and item.value.id == "self":
                        names.add(item.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def outside_the_lab() -> list[Path]:
    return [p for d in CHECKED for p in sorted(d.rglob("*.py")) if LAB not in p.parents and p.resolve() != Path(__file__).resolve()]


def assigned(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [t for e in target.elts for t in assigned(e)]
    return [target.value] if isinstance(target, ast.Starred) else [target]


def violations(source: str, where: str, private: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, where)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in (t for t in targets for t in assigned(t)):
            if isinstance(target, ast.Attribute) and target.attr == "topology":
                found.append(f"{where}:{target.lineno}: assigns {ast.unparse(target)} (use Lab.apply or Lab.read_back)")
        if isinstance(node, ast.Attribute) and node.attr in private and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"{where}:{node.lineno}: reaches into the lab: {ast.unparse(node)}")
    return sorted(found, key=lambda v: int(v.split(":")[1]))


def test_the_lab_has_private_members_to_guard():
    assert {"_ns", "_kernel", "_topology"} <= private_members()


def test_nothing_outside_the_lab_writes_its_model_or_reaches_into_it():
    private = private_members()
    found = [v for path in outside_the_lab() for v in violations(path.read_text(), str(path.relative_to(ROOT)), private)]
    assert not found, "\n".join(found)


def test_the_check_sees_what_it_guards_against():
    source = "lab.topology = observe(lab, snap)\nlab._ns['x'] = 1\na, lab.topology = 1, 2\nself._ns = {}\nlab.apply(change)\n"
    assert violations(source, "bad.py", private_members()) == [
        "bad.py:1: assigns lab.topology (use Lab.apply or Lab.read_back)",
        "bad.py:2: reaches into the lab: lab._ns",
        "bad.py:3: assigns lab.topology (use Lab.apply or Lab.read_back)",
    ]
