"""Shared test helpers: external binaries (promtool, prometheus, openssl, redis-server) some tests
need."""

from __future__ import annotations

import os
import shutil

import pytest


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
