"""A live stack for integration tests: ``fakeai-metrics demo`` scraped by a real Prometheus.

``live_stack()`` starts the demo (fake OpenAI API under load, ``/metrics`` beside it) on a free
port of 127.0.0.1 and ``prometheus`` on another, with a throw-away config that scrapes the demo
every second, evaluates the bundled rules (``grafana/alerts/*.rules.yml``) every second and keeps
its TSDB in a temporary directory. It waits until both answer, yields a ``LiveStack`` with small
helpers over Prometheus' HTTP API, and always stops both processes (SIGTERM, then SIGKILL after a
bounded wait), also when the body raises.

``fixture()`` wraps it as a pytest fixture that skips locally (fails in CI) without ``prometheus``.

Everything listens on 127.0.0.1 only; the demo's load is its own bounded generator.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES: tuple[Path, ...] = tuple(sorted((ROOT / "grafana" / "alerts").glob("*.rules.yml")))
JOB = "fakeai"

T = TypeVar("T")


class StackError(RuntimeError):
    """The stack did not start, or a wait ran out; the message carries the processes' logs."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback only)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, wait at most ``timeout`` seconds, then SIGKILL; only this process, by its pid."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def has_data(result: Sequence[dict[str, Any]]) -> bool:
    """True when an instant or range result holds at least one finite sample."""
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        if any(math.isfinite(float(v)) for _, v in samples):
            return True
    return False


@dataclass
class LiveStack:
    """A running demo and the Prometheus that scrapes it."""

    demo_url: str
    prometheus_url: str
    job: str
    workdir: Path
    demo: subprocess.Popen[bytes]
    prometheus: subprocess.Popen[bytes]
    started: float  # time.monotonic() when the demo was launched

    # --- Prometheus' HTTP API ------------------------------------------------------------------

    def api(self, path: str, params: dict[str, Any] | Sequence[tuple[str, Any]] | None = None,
            *, timeout: float = 10.0) -> Any:
        """GET ``/api/v1/<path>?<params>``; the ``data`` of a success, else StackError."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        status, body = _http_get(f"{self.prometheus_url}/api/v1/{path}?{query}", timeout)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"errorType": f"HTTP {status}", "error": body[:200].decode(errors="replace")}
        if payload.get("status") != "success":
            raise StackError(f"Prometheus /api/v1/{path} {dict(params or {})!r} failed: "
                             f"{payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (vector; a scalar comes back as one unlabelled sample)."""
        data = self.api("query", {"query": expr, **({"time": at} if at is not None else {})})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, expr: str, start: float, end: float,
                    step: float = 1.0) -> list[dict[str, Any]]:
        return self.api("query_range", {"query": expr, "start": start, "end": end,
                                        "step": step})["result"]

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        return self.api(f"label/{label}/values",
                        [("match[]", match)] if match else None)

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, each with its group's ``file`` and ``group`` added."""
        out = []
        for group in self.api("rules")["groups"]:
            for rule in group["rules"]:
                out.append({**rule, "group": group["name"], "file": group["file"]})
        return out

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]

    # --- waiting -------------------------------------------------------------------------------

    def wait_until(self, check: Callable[[], T | None], *, timeout: float, what: str,
                   interval: float = 0.5) -> T:
        """Call ``check`` until it returns something truthy; StackError with logs on timeout."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.assert_running()
            try:
                value = check()
                if value:
                    return value
            except StackError as e:  # a query error may just mean "not yet"
                last_error = e
            if time.monotonic() >= deadline:
                raise StackError(f"timed out after {timeout:g}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else "")
                                 + "\n" + self.logs())
            time.sleep(interval)

    def assert_running(self) -> None:
        for name, proc in (("demo", self.demo), ("prometheus", self.prometheus)):
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for name in ("demo.log", "prometheus.log"):
            path = self.workdir / name
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {name} (last {tail} chars) ---\n{text[-tail:]}")
        return "\n".join(parts)


def prometheus_config(target: str, *, job: str = JOB, scrape_interval: str = "1s",
                      rule_files: Sequence[Path] = RULE_FILES) -> str:
    """A Prometheus config (JSON, which is YAML) scraping ``target`` and loading ``rule_files``."""
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    return json.dumps(config, indent=2) + "\n"


@contextlib.contextmanager
def live_stack(*, rps: float = 40.0, seed: int = 7, scrape_interval: str = "1s",
               rule_files: Sequence[Path] = RULE_FILES, prometheus: str = "prometheus",
               startup_timeout: float = 30.0,
               demo_args: Sequence[str] = ()) -> Iterator[LiveStack]:
    """Start the demo and Prometheus, wait until Prometheus scrapes the demo, yield, stop both."""
    binary = shutil.which(prometheus) or prometheus
    workdir = Path(tempfile.mkdtemp(prefix="fakeai-livestack-"))
    demo_port, prom_port = free_port(), free_port()
    while prom_port == demo_port:
        prom_port = free_port()
    (workdir / "prometheus.yml").write_text(
        prometheus_config(f"127.0.0.1:{demo_port}", scrape_interval=scrape_interval,
                          rule_files=rule_files))
    demo = prom = None
    logs = [open(workdir / "demo.log", "wb"), open(workdir / "prometheus.log", "wb")]
    try:
        demo = subprocess.Popen(
            [sys.executable, "-m", "fakeai_metrics.cli", "demo", "--port", str(demo_port),
             "--rps", f"{rps:g}", "--seed", str(seed), *demo_args],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=logs[0], stderr=subprocess.STDOUT,
            start_new_session=True)
        started = time.monotonic()
        prom = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=info"],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=logs[1], stderr=subprocess.STDOUT,
            start_new_session=True)
        stack = LiveStack(f"http://127.0.0.1:{demo_port}", f"http://127.0.0.1:{prom_port}", JOB,
                          workdir, demo, prom, started)

        def answers(url: str) -> bool:
            try:
                return _http_get(url, timeout=2.0)[0] == 200
            except OSError:
                return False

        stack.wait_until(lambda: answers(f"{stack.demo_url}/metrics"), timeout=startup_timeout,
                         what="the demo's /metrics")
        stack.wait_until(lambda: answers(f"{stack.prometheus_url}/-/ready"),
                         timeout=startup_timeout, what="Prometheus /-/ready")
        yield stack
    finally:
        for proc in (prom, demo):
            _stop(proc)
        for f in logs:
            f.close()
        shutil.rmtree(workdir, ignore_errors=True)


def fixture(scope: str = "module", **options: Any) -> Any:
    """A pytest fixture yielding a ``LiveStack``; skipped locally (failed in CI) without
    ``prometheus``. Assign it at a test module's top level: ``stack = livestack.fixture()``."""
    import pytest

    @pytest.fixture(scope=scope)
    def _stack() -> Iterator[LiveStack]:
        from conftest import require_binary

        with live_stack(prometheus=require_binary("prometheus"), **options) as stack:
            yield stack

    return _stack
