"""The package type-checks: mypy, with the ``[tool.mypy]`` settings in pyproject.toml (strict),
reports no error. ``py.typed`` ships, so a user's mypy reads these annotations."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    api = require_module("mypy.api", "fakeai-metrics[test]")
    monkeypatch.chdir(ROOT)  # the config's `packages` and mypy's cache are relative to the root
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
    assert stdout.startswith("Success: no issues found"), stdout
