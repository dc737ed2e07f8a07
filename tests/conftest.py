"""Shared test helpers: external binaries (promtool, prometheus, openssl, redis-server) some tests
need."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import threading
import time
from typing import Any, Iterator

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection built (modules, ~1800 test items, their parameters) out of the
    garbage collector's reach: each full collection otherwise walks it again, which took ~6 s of
    a ~29 s ``-m "not slow"`` run here (47 full collections; ~2 s once frozen)."""
    gc.collect()
    gc.freeze()


def require_binary(name: str, package: str = "prometheus") -> str:
    """The path of executable ``name``; without it, skip the test locally and fail it in CI.

    CI (env ``CI=true``, as ``.ci/run`` sets it) installs Prometheus, so a missing binary there
    is a broken environment, not a reason to pass quietly.
    """
    path = shutil.which(name)
    if path:
        return path
    reason = f"`{name}` is not on PATH; install it (Debian/Ubuntu: apt-get install {package})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}. CI=true, so this test fails instead of skipping.", pytrace=False)
    pytest.skip(f"{reason}. Skipped because CI is not 'true'.")


def require_module(module: str, requirement: str):
    """Import an optional test dependency: skip locally, fail in CI (CI=true) without it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        reason = f"{module} is not installed: pip install '{requirement}'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}. CI=true, so this test fails instead of skipping.",
                        pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def promtool() -> str:
    """The ``promtool`` binary (skip locally / fail in CI when missing)."""
    return require_binary("promtool")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert thread.is_alive(), "uvicorn exited while starting"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def redis_server(tmp_path):
    """A fresh ``redis-server`` on a free port in a temp dir, stopped after the test."""
    from redis_server import RedisServer

    server = RedisServer(require_binary("redis-server", "redis-server"), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
