"""Serving ``/metrics``: prometheus_client does the exposition, this module picks what to serve.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) the registry served is one that reads every
worker's files; otherwise it is the registry you pass (``prometheus_client.REGISTRY`` by default).
The HTTP server binds to 127.0.0.1 unless told otherwise; TLS and client-certificate checks are
prometheus_client's own options, passed through.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any, Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, make_wsgi_app
from prometheus_client import start_http_server
from prometheus_client.multiprocess import mark_process_dead

from . import multiprocess as mp

__all__ = ["asgi_app", "mark_process_dead", "scrape_registry", "serve", "wsgi_app"]


def scrape_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """The registry a scrape should read: all workers' files in multiprocess mode."""
    if mp.enabled():
        return mp.scrape_registry()
    return REGISTRY if registry is None else registry


def serve(port: int = 9464, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None,
          *, certfile: str | None = None, keyfile: str | None = None,
          client_cafile: str | None = None, client_capath: str | None = None,
          client_auth_required: bool = False,
          tls_min_version: ssl.TLSVersion | None = None) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on a daemon thread; returns prometheus_client's (server, thread).

    Give ``certfile``/``keyfile`` for HTTPS, and ``client_cafile`` with
    ``client_auth_required=True`` to accept only scrapers holding a certificate from that CA.
    ``tls_min_version`` needs prometheus_client 0.26 or later. Stop the server with
    ``server.shutdown(); server.server_close()``.
    """
    tls = {} if tls_min_version is None else {"tls_min_version": tls_min_version}
    return start_http_server(port, addr, registry=scrape_registry(registry), certfile=certfile,
                             keyfile=keyfile, client_cafile=client_cafile,
                             client_capath=client_capath,
                             client_auth_required=client_auth_required, **tls)


def asgi_app(registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """An ASGI app serving the metrics; gzip when asked.

    In Starlette/FastAPI route it with ``app.add_route("/metrics", asgi_app())``, which answers
    ``GET /metrics`` itself (``app.mount`` answers it with a redirect to ``/metrics/``).
    """
    return _ASGIApp(make_asgi_app(scrape_registry(registry)))


class _ASGIApp:
    """prometheus_client's ASGI app as an object: Starlette's router serves an object as an ASGI
    app at exactly its path, while a function would be taken for a request handler."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def wsgi_app(registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """A WSGI app serving the metrics; gzip and OpenMetrics when the scraper asks."""
    return make_wsgi_app(scrape_registry(registry))
