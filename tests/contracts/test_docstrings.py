"""Every module and every public class says why it exists (issue 16: a newcomer reads the
package from its docstrings and docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fakeai_metrics"


def test_every_module_and_public_class_has_a_docstring() -> None:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        name = path.relative_to(PACKAGE.parent)
        if not ast.get_docstring(tree):
            missing.append(f"{name} (module)")
        missing += [f"{name}: class {node.name}" for node in tree.body
                    if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
                    and not ast.get_docstring(node)]
    assert missing == []
