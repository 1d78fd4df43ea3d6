"""The layers the folders show: imports only go down, and nothing imports in a circle.

Built from the source with ``ast`` (no module is imported): every ``import`` and
``from ... import`` of a segexp module, function-local ones included. Layers, top
first: the package itself and its command shims; tools; jobs (the run/sweep layer);
engines; tracking; model and insight (side by side, no circle between them); data;
errors, contract, the configs' schema and the Hydra plugin.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {
    "segexp.errors": 0,
    "segexp.contract": 0,
    "segexp.conf": 0,  # the configs' schema (structured configs)
    "hydra_plugins": 0,
    "segexp.data": 1,
    "segexp.model": 2,
    "segexp.insight": 2,
    "segexp.tracking": 3,
    "segexp.engines": 4,
    "segexp.jobs": 5,
    "segexp.tools": 6,
}
TOP = 7  # segexp/__init__.py, __main__.py and the python -m shims (segexp.compare, ...)


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the segexp modules it imports (``from a import b``: a.b when it is a module)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}"
                    if f"{node.module}.{alias.name}" in modules
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "hydra_plugins":
        return "hydra_plugins"
    return ".".join(parts[:2])


def _layer(module: str) -> int:
    return LAYERS.get(_package(module), TOP)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_in_a_circle():
    assert _cycles(_imports(_modules())) == []


def test_no_subpackage_imports_in_a_circle():
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in _imports(_modules()).items():
        packages[_package(module)].update(
            _package(t) for t in targets if _package(t) != _package(module)
        )
    assert _cycles(packages) == []


def test_imports_only_go_down():
    upward = [
        f"{module} -> {target}"
        for module, targets in _imports(_modules()).items()
        for target in targets
        if _package(module) != _package(target) and _layer(target) > _layer(module)
    ]
    assert upward == []


def test_the_graph_sees_the_imports_it_checks():
    """The check is not vacuous: the job imports the store, the command the job."""
    edges = _imports(_modules())
    assert "segexp.tracking.store" in edges["segexp.jobs.job"] | edges["segexp.tracking.publish"]
    assert "segexp.jobs.app" in edges["segexp.__main__"]
    assert _layer("segexp.jobs.job") > _layer("segexp.engines") > _layer("segexp.tracking.store")


def test_one_process_and_public_hydra_only():
    """Issue 20's design rules: no process pools, no private Hydra, no os._exit, no global
    statements anywhere in src/ (code, not prose: names are matched in the parsed source)."""
    banned = ("multiprocessing", "forkserver", "ProcessPoolExecutor", "hydra._internal")
    found = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                found.append(f"{name}:{node.lineno}: global")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                targets = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                targets += [alias.name for alias in node.names]
                found += [f"{name}:{node.lineno}: {t}" for t in targets if t.startswith(banned)]
            elif isinstance(node, ast.Attribute) and ast.unparse(node) == "os._exit":
                found.append(f"{name}:{node.lineno}: os._exit")
            elif isinstance(node, ast.Constant) and node.value in banned:
                found.append(f"{name}:{node.lineno}: {node.value!r}")
    assert not found, found


def test_no_module_imports_another_modules_private_names():
    """A name another module needs is part of its owner's interface: public, not ``_name``."""
    private = [
        f"{name}:{node.lineno}: {node.module}.{alias.name}"
        for name, path in _modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module in _modules()
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert private == []
