"""The package keeps its layers (docs/architecture.md draws them): a module imports only from its
own layer or the layers below, and no import, at module level or inside a function, closes a
circle. Imports under ``if TYPE_CHECKING:`` are annotations only and are not counted."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fakeai_metrics"

#: Layers, lowest first. A name covers a module or a subpackage and everything in it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("facts", frozenset({"catalog", "validation", "keys", "routes", "durations", "pricing", "genai",
                         "slo", "latency_slo"})),
    ("state and sinks", frozenset({"instruments", "windows", "open_stream", "budgets", "stores",
                                   "redis_store", "multiprocess", "otel"})),
    ("trackers", frozenset({"collector", "limits", "tracker", "metrics",
                            "streaming_metrics_tracker", "model_metrics", "cost_tracker",
                            "error_metrics_tracker", "goodput_tracker"})),
    ("hub", frozenset({"telemetry"})),
    ("edges", frozenset({"asgi", "artifacts", "server", "cli", "demo", "pytest_plugin",
                         "testing"})),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"fakeai_metrics.{module} is in no layer: add it to LAYERS and to "
                         "docs/architecture.md")


class _Imports(ast.NodeVisitor):
    """The package modules one module imports at run time."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".") if self.package else []
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        elif node.module and node.module.startswith("fakeai_metrics"):
            target = node.module.removeprefix("fakeai_metrics").lstrip(".")
        else:
            return
        for alias in node.names:
            submodule = f"{target}.{alias.name}".lstrip(".")
            self.found.add(submodule if submodule in self.known else target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("fakeai_metrics"):
                self.found.add(alias.name.removeprefix("fakeai_metrics").lstrip("."))


@functools.cache
def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        visitor = _Imports(module, path.name == "__init__.py", set(files))
        visitor.visit(ast.parse(path.read_text()))
        graph[module] = visitor.found - {module}
    return graph


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "merge" in {m.rpartition(".")[2] for m in graph["multiprocess"]}  # a lazy import
    assert "otel" in graph["collector"]  # another
    assert "limits" in graph["tracker"] and "collector" in graph["limits"]


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in import_graph().items() if m
              for d in sorted(deps) if d and layer_of(d) > layer_of(m)]
    assert upward == []


def test_no_import_circle() -> None:
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                circles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []
