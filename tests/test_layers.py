"""The layers of nslab, checked from the source (a short walk over every module's AST):

    model -> kernel -> probes -> diagnosis -> lab -> {views, tutorials, matrix, grading} -> advice -> replay -> cli

A module may import its own layer and the layers to its left, never one to its
right, not even for type hints (TYPE_CHECKING) and not lazily inside a
function; the four packages after lab are siblings that do not import each
other; advice (nslab why, verified fixes) uses grading's snapshots and the
views' diagram, and replay (nslab replay) uses advice. `nslab` itself (its __init__, the public API) sits with
cli. pytest is imported only by the plugin in fixtures/, never under nslab/.
And no two modules import each other when they are loaded (no import circle).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "nslab"
LAYERS = [("model",), ("kernel",), ("probes",), ("diagnosis",), ("lab",), ("views", "tutorials", "matrix", "grading"), ("advice",), ("replay",), ("cli", "")]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
TEST_ONLY = ("pytest", "_pytest", "pluggy")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def package_of(module: str) -> str:
    """'kernel' for nslab.kernel.netlink; '' for nslab itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str) -> list[tuple[int, str, bool]]:
    """(line, imported module, loaded with the module) for every import in *module*,
    wherever it is: at the top, under TYPE_CHECKING, inside a function."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, at_load: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for part in child.body:
                    visit_node(part, False)
                for part in child.orelse:
                    visit_node(part, at_load)
            else:
                visit_node(child, at_load)

    def visit_node(node: ast.AST, at_load: bool) -> None:
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, at_load) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                out.append((node.lineno, target if target in MODULES else base, at_load))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            visit(node, False)  # runs when called, not when the module loads
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            visit(node, at_load)

    visit(tree, True)
    return out


def test_every_package_has_a_layer():
    unplaced = sorted({package_of(m) for m in MODULES} - set(RANK))
    assert not unplaced, f"packages in no layer: {unplaced}; place each in LAYERS (tests/test_layers.py) and in the README's layout"


def test_every_import_follows_the_layers():
    wrong = []
    for module in MODULES:
        here = package_of(module)
        if here not in RANK:
            continue  # test_every_package_has_a_layer says so
        for line, target, _ in imports(module):
            if not target.startswith("nslab.") and target != "nslab":
                continue
            there = package_of(target)
            if there == here or there not in RANK:
                continue
            if RANK[there] > RANK[here]:
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}: {here or 'nslab'} may not import {there or 'nslab'}, a layer above it")
            elif RANK[there] == RANK[here]:
                wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}: {here} and {there} are siblings and stay independent")
    assert not wrong, "imports against model -> kernel -> probes -> diagnosis -> lab -> {views, tutorials, matrix, grading} -> advice -> replay -> cli:\n" + "\n".join(wrong)


def test_the_library_never_imports_pytest():
    found = [
        f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
        for module in MODULES
        for line, target, _ in imports(module)
        if target.split(".")[0] in TEST_ONLY
    ]
    assert not found, "pytest belongs to the plugin in fixtures/ only:\n" + "\n".join(found)


def test_no_import_circle():
    """Modules that import each other as they load (directly or round a longer loop)."""
    graph = {m: sorted({t for _, t, at_load in imports(m) if at_load and t in MODULES and t != m}) for m in MODULES}
    circles, state = [], {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                circles.append(" -> ".join(path[path.index(nxt) :] + [node, nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                walk(nxt, path + [node])
        state[node] = "done"

    for m in MODULES:
        if m not in state:
            walk(m, [])
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))


MAPPED = {"nslab.fixtures": "fixtures", "nslab.scenarios": "scenarios", "nslab.exercises": "exercises"}  # top-level directories installed inside nslab


def test_the_distribution_lists_every_package():
    """pyproject.toml lists nslab's packages (fixtures/, scenarios/ and exercises/ are
    mapped in as nslab.*, which setuptools' find cannot see): the list must not fall
    behind the tree."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {module_name(p.parent / "__init__.py") for p in LIBRARY.rglob("__init__.py")} | set(MAPPED)
    assert listed == on_disk
    assert config["tool"]["setuptools"]["package-dir"] == MAPPED
    assert not {"fixtures", "scenarios", "exercises"} & listed  # PyPI's "fixtures" is another project


def test_the_tests_never_import_the_benchmarks():
    """bench/ measures; what the tests share with it (the fault corpus) lives in corpus/, which imports no bench either."""
    found = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "corpus").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}" for name in names if name.split(".")[0] == "bench"]
    assert not found, "tests/ and corpus/ may not import bench:\n" + "\n".join(found)
