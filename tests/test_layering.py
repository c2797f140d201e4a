"""No import cycles between sardata / exporters modules or packages, counting imports inside functions too.

A function-local import hides a cycle from Python (it runs later) but not from the reader: the two modules still
depend on each other. Each module may import only from floors below it, so two graphs must be acyclic: modules, and
floors (a subpackage such as ``sardata.train`` or ``sardata.datasets`` is one floor, as is ``exporters``; a
top-level module such as ``sardata.evaluate`` is its own). The second catches ``evaluate -> train.common`` together
with ``train.detector -> evaluate``, which is no module-level cycle but still makes two floors lean on each other.

Edges: ``import a.b`` and ``from a.b import c`` give an edge to ``a.b`` (or to ``a.b.c`` when that is a module);
relative imports are resolved. A package's ``__init__`` running when a submodule is imported is not counted (a
package re-exporting its submodules lazily is not a cycle); ``if TYPE_CHECKING:`` imports are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sardata", "exporters")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    skipped.add(id(sub))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module → the sardata/exporters modules it imports anywhere in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_blocks(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import sardata.index.faiss as x` → the module itself
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def floor(module: str) -> str:
    """``sardata.train.detector`` → ``sardata.train``; ``sardata.evaluate`` → itself; ``exporters.coco`` → ``exporters``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "sardata" else parts[0]


def floor_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    floors: dict[str, set[str]] = {}
    for a, targets in graph.items():
        floors.setdefault(floor(a), set()).update(floor(b) for b in targets if floor(b) != floor(a))
    return floors


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def _describe(graph, component, key=lambda m: m) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in sorted(graph) for b in sorted(graph[a])
             if key(a) in members and key(b) in members and key(a) != key(b)]
    return "; ".join(edges)


def test_graph_sees_function_local_and_relative_imports():
    graph = import_graph()
    # sardata/__init__ imports sardata.datasets only inside load(): still an edge
    assert "sardata.datasets" in graph["sardata"]
    assert "sardata._io" in graph["sardata.sarimage"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    # the shape of the old evaluate <-> train leaning: no module cycle, but a floor cycle
    old = {"sardata.evaluate": {"sardata.train.common"}, "sardata.train.common": set(),
           "sardata.train.detector": {"sardata.evaluate"}}
    assert find_cycles(old) == []
    assert find_cycles(floor_graph(old)) == [["sardata.evaluate", "sardata.train"]]


def test_no_import_cycles():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between modules:\n" + "\n".join(_describe(graph, c) for c in cycles)


def test_no_import_cycles_between_floors():
    graph = import_graph()
    cycles = find_cycles(floor_graph(graph))
    assert not cycles, "floors importing each other (a module imports from a floor above it):\n" + "\n".join(
        _describe(graph, c, key=floor) for c in cycles)
