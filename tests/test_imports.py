"""No import cycle among grader's modules, lazy imports included.

The graph is read from the source with `ast`, not from `sys.modules`: every `import` and
`from ... import` anywhere in a module counts, including those inside functions (a "lazy"
import still ties the two modules together, and only hides the cycle until that function
runs). Relative imports are resolved against the importing module. `from grader.x import y`
is an edge to `grader.x.y` when `y` is a submodule, else to `grader.x`. A package's
`__init__.py` is a module of its own (`grader.run`), and importing a submodule is an edge to
that submodule only, not to its parent packages (else every package whose `__init__`
re-exports a submodule that imports a sibling would be a "cycle").

Imports under `if TYPE_CHECKING:` are not counted: they never run, they only name types
for mypy.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "grader"

# Cycles another engineer will break in files this change does not touch, each as the sorted
# module names of one strongly connected component. Empty this as they go; a cycle that is
# not listed here fails the test, and so does a listed one that no longer exists.
KNOWN_CYCLES: list[list[str]] = []


def module_names() -> dict[str, Path]:
    """Every module of the grader package by dotted name (a package by its `__init__`)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def is_type_checking(test: ast.expr) -> bool:
    """`TYPE_CHECKING` or `typing.TYPE_CHECKING`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `tree`, at any depth, except under `if TYPE_CHECKING:`."""
    yield from _imports_in(ast.iter_child_nodes(tree))


def _imports_in(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from _imports_in(node.orelse)
        else:
            yield from _imports_in(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Each grader module -> the grader modules it imports."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                edges.add(submodule if submodule in modules else target)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    """One cycle: its modules, and which of them import which others inside it."""
    members = set(component)
    edges = [
        f"    {module} -> {', '.join(sorted(graph[module] & members))}" for module in component
    ]
    return f"  {len(component)} modules: {', '.join(component)}\n" + "\n".join(edges)


def test_graph_sees_lazy_relative_and_submodule_imports() -> None:
    """The reader finds the kinds of import that a naive grep or `sys.modules` would miss."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from grader import safe_text, __version__\n"
        "from . import errors\n"
        "if TYPE_CHECKING:\n"
        "    from grader.models import Report\n"
        "def later():\n"
        "    import grader.run.policy\n"
        "    from grader.run import Runner\n"
    )
    found = {
        node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        for node in imports(ast.parse(source))
    }
    assert found == {"typing", "grader", None, "grader.run.policy", "grader.run"}
    graph = import_graph()
    assert "grader.run.policy" in graph["grader.run"]
    assert "grader" in graph["grader.audit"]  # `from grader import __version__`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    print("import cycles among grader's modules:")
    print("\n".join(describe(component, graph) for component in found) or "  none")
    unknown = [component for component in found if component not in KNOWN_CYCLES]
    gone = [component for component in KNOWN_CYCLES if component not in found]
    assert not unknown, (
        "grader's modules import each other in a cycle (lazy imports included); move the "
        "shared name down into a module both can import, or split the module that mixes "
        "two roles:\n" + "\n".join(describe(component, graph) for component in unknown)
    )
    assert not gone, (
        f"KNOWN_CYCLES in {Path(__file__).name} lists cycles that no longer exist: remove "
        f"them: {gone}"
    )
