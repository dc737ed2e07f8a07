"""Serving ``/metrics``: prometheus_client does the exposition, this module picks what to serve.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) the registry served is one that reads every
worker's files; otherwise it is the registry you pass (``prometheus_client.REGISTRY`` by default).
The HTTP server binds to 127.0.0.1 unless told otherwise.

Why ``serve`` builds its server instead of calling prometheus_client's ``start_http_server``: that
server wraps the *listening* socket in TLS, so each handshake runs in the one accepting thread,
with no timeout. Measured with prometheus_client 0.26: while one TCP connection that sends nothing
is held open, every HTTPS scrape waits exactly as long (3.0 s and 10.0 s for a 3 s and a 10 s
hold; forever without a client timeout), so a single idle client takes HTTPS monitoring down. Here
each accepted connection gets a socket timeout and its TLS handshake in its own worker thread, so a
stalled client (idle, half a ClientHello, a request line never finished) costs one thread until the
timeout and is then closed. Everything else is prometheus_client's: its threading WSGI server,
request handler, address-family choice, TLS context (certificates, client-certificate checks,
minimum version) and WSGI app. Three of those are private names (``_SilentHandler``,
``_get_best_family``, ``_get_ssl_ctx``), unchanged from 0.24 (our lower bound) to 0.26.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from typing import Any, Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, make_wsgi_app
from prometheus_client.exposition import (ThreadingWSGIServer, _get_best_family, _get_ssl_ctx,
                                          _SilentHandler)
from prometheus_client.multiprocess import mark_process_dead

from . import multiprocess as mp
from . import validation as v

__all__ = ["asgi_app", "mark_process_dead", "scrape_registry", "serve", "wsgi_app"]

#: Seconds a client may stall (TLS handshake, each read or write) before it is disconnected.
DEFAULT_TIMEOUT_S = 5.0


def scrape_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """The registry a scrape should read: all workers' files in multiprocess mode."""
    if mp.enabled():
        return mp.scrape_registry()
    return REGISTRY if registry is None else registry


class _MetricsServer(ThreadingWSGIServer):
    """prometheus_client's thread-per-request server, with TLS and a timeout per connection."""

    def __init__(self, family: socket.AddressFamily, address: tuple[str, int],
                 tls: ssl.SSLContext | None, connection_timeout: float) -> None:
        self.address_family = family
        self.tls = tls
        self.connection_timeout = connection_timeout
        super().__init__(address, _SilentHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.connection_timeout)  # bounds the handshake and every read/write
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except OSError:  # timed out, refused (e.g. no client certificate) or gone
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], TimeoutError):  # a stalled client is dropped quietly
            super().handle_error(request, client_address)


def serve(port: int = 9464, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None,
          *, certfile: str | None = None, keyfile: str | None = None,
          client_cafile: str | None = None, client_capath: str | None = None,
          client_auth_required: bool = False,
          tls_min_version: ssl.TLSVersion | None = None,
          timeout: float = DEFAULT_TIMEOUT_S) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on a daemon thread; returns the (server, thread).

    Give ``certfile``/``keyfile`` for HTTPS, and ``client_cafile`` with
    ``client_auth_required=True`` to accept only scrapers holding a certificate from that CA.
    ``tls_min_version`` needs prometheus_client 0.26 or later. ``timeout`` (seconds, > 0) bounds
    the TLS handshake and each read or write of a connection (sending the whole response body is
    one write); a client that stalls longer is disconnected. Stop the server with
    ``server.shutdown(); server.server_close()``.
    """
    v.positive("timeout", timeout, v.MAX_SECONDS)
    tls = None
    if certfile and keyfile:
        versions = {} if tls_min_version is None else {"tls_min_version": tls_min_version}
        tls = _get_ssl_ctx(certfile, keyfile, ssl.PROTOCOL_TLS_SERVER, client_cafile,
                           client_capath, client_auth_required, **versions)
    family, host = _get_best_family(addr, port)
    server = _MetricsServer(family, (host, port), tls, timeout)
    server.set_app(make_wsgi_app(scrape_registry(registry)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


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
