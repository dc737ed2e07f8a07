"""The README is part of the product: its catalog table and its snippets must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from fakeai_metrics import Telemetry
from fakeai_metrics.catalog import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_catalog_matches_the_catalog():
    text = README.read_text()
    table = text.split("<!-- catalog:start -->\n")[1].split("<!-- catalog:end -->")[0]
    assert table == markdown_table()


def test_readme_python_snippets_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert "fakeai_time_to_first_token_seconds_bucket" in capsys.readouterr().out
    # the plugin example defines a test: run it with the fixtures it names
    registry = CollectorRegistry()
    namespace["test_errors_are_counted"](Telemetry(registry=registry), registry)
