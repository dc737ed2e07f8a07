"""The README is part of the product: its catalog table and its snippets must stay true."""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from fakeai_metrics import Telemetry
from fakeai_metrics.catalog import markdown_table
from fakeai_metrics.tracker import Tracker

README = Path(__file__).resolve().parents[2] / "README.md"
README_REDIS = "redis://127.0.0.1:6379/0"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_catalog_matches_the_catalog():
    text = README.read_text()
    table = text.split("<!-- catalog:start -->\n")[1].split("<!-- catalog:end -->")[0]
    assert table == markdown_table()


class _OTLPReceiver(http.server.BaseHTTPRequestHandler):
    posts: list[tuple[str, int]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def otlp_endpoint(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _OTLPReceiver)
    # a short poll so shutdown() returns at once, not after serve_forever's default 0.5 s
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                     daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    _OTLPReceiver.posts = []
    yield _OTLPReceiver.posts
    server.shutdown()
    server.server_close()


def _forget_trackers_on_the_default_registry():
    """Each snippet stands alone, several on prometheus_client.REGISTRY: unregister between."""
    for collector in list(prometheus_client.REGISTRY._collector_to_names):
        if isinstance(collector, Tracker):
            prometheus_client.REGISTRY.unregister(collector)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_snippet_runs_as_pasted(index, capsys, otlp_endpoint, request):
    block = BLOCKS[index]
    if README_REDIS in block:  # the fleet snippet runs against the test's own redis-server
        block = block.replace(README_REDIS, request.getfixturevalue("redis_server").url)
    namespace: dict = {}
    try:
        exec(compile(block, f"README.md python block {index + 1}", "exec"), namespace)
    finally:
        _forget_trackers_on_the_default_registry()
    out = capsys.readouterr().out
    if "generate_latest" in block:
        assert "fakeai_time_to_first_token_seconds_bucket" in out
    if "InMemoryMetricReader" in block:
        assert "gen_ai.server.request.duration" in out
    if "otlp=True" in block:
        assert any(path == "/v1/metrics" and size > 0 for path, size in otlp_endpoint)
    if README_REDIS in BLOCKS[index]:  # check_budget printed the fleet's spend of the key
        assert out == "(0.0105, 9.9895, False)\n"
    if "def test_" in block:  # the plugin example: run it with the fixtures it names
        registry = CollectorRegistry()
        namespace["test_errors_are_counted"](Telemetry(registry=registry), registry)


def test_readme_has_the_snippets_it_promises():
    joined = "\n".join(BLOCKS)
    for needle in ("generate_latest", "InMemoryMetricReader", "otlp=True", "def test_",
                   "FakeAIMetricsMiddleware", "serve("):
        assert needle in joined


def test_readme_fastapi_example_answers_get_metrics_with_200():
    """The wrap-your-own-server snippet, as pasted: GET /metrics is served, not redirected."""
    import anyio
    import httpx

    block = next(b for b in BLOCKS if "FakeAIMetricsMiddleware" in b)
    namespace: dict = {}
    try:
        exec(compile(block, "README.md FastAPI block", "exec"), namespace)

        async def get() -> httpx.Response:
            transport = httpx.ASGITransport(app=namespace["app"])
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/metrics", follow_redirects=False)

        r = anyio.run(get)
    finally:
        _forget_trackers_on_the_default_registry()
    assert r.status_code == 200
    assert "fakeai_requests_total" in r.text


def _readme_extras() -> set[str]:
    """The extras the README's install commands name (``pip install -e '.[a,b]'``)."""
    return {x.strip() for group in re.findall(r"pip install -e '\.\[([^\]]+)\]'",
                                              README.read_text()) for x in group.split(",")}


def test_readme_snippet_imports_come_with_the_extras_it_installs():
    """Every third-party module a README snippet imports is installed by the package or by an
    extra one of the README's install commands names, so a user's paste works."""
    import ast
    import importlib.metadata as md
    import sys
    import tomllib

    project = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        out = set()
        for req in requirements:
            name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")
            if name == "fakeai-metrics":  # an extra that includes other extras
                for inner in re.findall(r"\[([^\]]+)\]", req)[0].split(","):
                    out |= names(extras[inner.strip()])
            else:
                out.add(name)
        return out

    installed = names(project["dependencies"])
    for extra in _readme_extras() - {"test"}:
        installed |= names(extras[extra])
    dists = md.packages_distributions()
    for i, block in enumerate(BLOCKS):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "fakeai_metrics":
                    continue
                wanted = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                assert wanted & installed, (f"README block {i + 1} imports {module}, which no "
                                            f"extra the README installs provides")
