"""The package's layout rules, read from the source (nothing is imported or run):

* no import circles among ``mcsyn`` modules, counting imports inside functions too (an import
  moved into a function still makes a circle; it only hides it until the call);
* no file in ``mcsyn/`` over 600 lines and no function over 80 lines, except the entries of an
  explicit allow-list, each with its reason; an entry that is no longer over its limit fails too,
  so that the list only shrinks.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mcsyn"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80

# What is over the limits, and why; prune an entry once it is split.
OVERSIZED_FILES = {
}
OVERSIZED_FUNCTIONS = {
    "mcsyn/ensemble/run.py::run_ensemble": "28 lines of code under a 58-line numpydoc of every argument",
}


# ---------------------------------------------------------------------------------------------
# the import graph

def source_modules(root: Path = ROOT, package: str = PACKAGE) -> dict:
    """{dotted module name: path} of every ``.py`` file under the package (``pkg/__init__.py`` is
    the module ``pkg``)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: dict) -> bool:
    return modules[name].name == "__init__.py"


def _names_bound_at_top(tree: ast.Module) -> set:
    """Names a package's ``__init__`` binds itself (assignments, defs, classes, imports)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST):
    """Every import statement, at any depth (functions, classes, try blocks), except those under
    ``if TYPE_CHECKING:``, which never run."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking_block(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve_base(module: str, node: ast.ImportFrom, modules: dict) -> str:
    """The absolute module a ``from X import ...`` names as X."""
    if node.level == 0:
        return node.module
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level > 1:
        parts = parts[:len(parts) - (node.level - 1)]
    base = ".".join(parts)
    return f"{base}.{node.module}" if node.module else base


def imports_of(module: str, modules: dict, bound_in_init: dict, package: str = PACKAGE) -> set:
    """The package modules ``module`` imports (edges of the graph)."""
    tree = ast.parse(modules[module].read_text(encoding="utf-8"), filename=str(modules[module]))
    targets = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:               # import pkg.module (compiled ones have no node)
                    targets.add(alias.name)
            continue
        base = _resolve_base(module, node, modules)
        if base != package and not base.startswith(package + "."):
            continue
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:                          # from pkg import submodule
                targets.add(sub)
            elif base in modules and _is_package(base, modules) and alias.name not in bound_in_init[base]:
                # from pkg import name that pkg/__init__ does not bind: a submodule without
                # source (the compiled kernel), which imports nothing of ours
                continue
            elif base in modules:                       # a name defined in module `base`
                targets.add(base)
    targets.discard(module)
    return targets


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict:
    modules = source_modules(root, package)
    bound_in_init = {name: _names_bound_at_top(ast.parse(path.read_text(encoding="utf-8")))
                     for name, path in modules.items() if path.name == "__init__.py"}
    return {name: imports_of(name, modules, bound_in_init, package) for name in modules}


def elementary_cycles(graph: dict) -> list:
    """Every simple cycle once, as a list of modules starting at its smallest name."""
    cycles = []

    def walk(start, node, path, on_path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                cycles.append(path[:])
            elif nxt > start and nxt not in on_path:
                on_path.add(nxt)
                path.append(nxt)
                walk(start, nxt, path, on_path)
                path.pop()
                on_path.discard(nxt)

    for start in sorted(graph):
        walk(start, start, [start], {start})
    return cycles


def _format_cycle(cycle) -> str:
    return " -> ".join(cycle + cycle[:1])


def test_the_graph_sees_imports_inside_functions_and_relative_forms(tmp_path):
    # the parser itself, on a made-up package: top-level and in-function imports, `from . import`,
    # `from .. import`, an absolute import, a name from __init__, a compiled module, TYPE_CHECKING
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\nVERSION = '1'\n")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    from . import _compiled\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
                              "import pkg.sub.d\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "d.py").write_text("from .. import VERSION\nfrom ..sub import e\n")
    (pkg / "sub" / "e.py").write_text("")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.sub.d"},
                     "pkg.sub": set(), "pkg.sub.d": {"pkg", "pkg.sub.e"}, "pkg.sub.e": set()}
    assert elementary_cycles(graph) == [["pkg.a", "pkg.b"]]


CYCLES_TODAY = elementary_cycles(import_graph())


def test_no_import_cycles_among_package_modules():
    assert not CYCLES_TODAY, "import cycles:\n" + "\n".join(map(_format_cycle, CYCLES_TODAY))


# ---------------------------------------------------------------------------------------------
# sizes

def _functions(tree: ast.AST, prefix=""):
    """(qualified name, number of lines) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node.end_lineno - node.lineno + 1
            yield from _functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def oversized(root: Path = ROOT):
    """({path: lines} of files over the limit, {path::function: lines} of functions over it)."""
    files, functions = {}, {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        n_lines = len(text.splitlines())
        if n_lines > MAX_FILE_LINES:
            files[rel] = n_lines
        for name, n in _functions(ast.parse(text)):
            if n > MAX_FUNCTION_LINES:
                functions[f"{rel}::{name}"] = n
    return files, functions


OVERSIZED_TODAY = oversized()


@pytest.mark.parametrize("found, allowed, limit", [
    (OVERSIZED_TODAY[0], OVERSIZED_FILES, MAX_FILE_LINES),
    (OVERSIZED_TODAY[1], OVERSIZED_FUNCTIONS, MAX_FUNCTION_LINES),
], ids=["files", "functions"])
def test_sizes_within_limits_or_allowed(found, allowed, limit):
    new = {k: v for k, v in found.items() if k not in allowed}
    assert not new, f"over {limit} lines and not in the allow-list (split them): {new}"


@pytest.mark.parametrize("found, allowed", [
    (OVERSIZED_TODAY[0], OVERSIZED_FILES),
    (OVERSIZED_TODAY[1], OVERSIZED_FUNCTIONS),
], ids=["files", "functions"])
def test_allow_list_holds_only_what_is_still_over(found, allowed):
    stale = sorted(set(allowed) - set(found))
    assert not stale, f"no longer over the limit (or gone): remove from the allow-list: {stale}"


# ---------------------------------------------------------------------------------------------
# the source tree without its compiled kernel

def test_importing_the_uncompiled_source_tree_says_what_happened_and_what_to_do(tmp_path):
    import shutil
    import subprocess
    import sys
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # -S: no site-packages, so no installed or editable mcsyn can supply the kernel
    proc = subprocess.run([sys.executable, "-S", "-c", "import mcsyn"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "circular import" not in proc.stderr
    assert "compiled kernel (mcsyn._engine) is not built" in proc.stderr and "pip install -e ." in proc.stderr
