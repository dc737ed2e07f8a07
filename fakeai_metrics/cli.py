"""The ``fakeai-metrics`` command: the demo, a bare exporter, and the generated rules/catalog."""

from __future__ import annotations

import argparse
import asyncio
import errno
import math
import signal
import socket
import sys
import threading
from typing import Sequence

from .pricing import PriceTable, load_price_file
from .server import DEFAULT_TIMEOUT_S

EPILOG = """examples:
  fakeai-metrics demo                       fake OpenAI API + load + /metrics on :9464
  fakeai-metrics demo --rps 50 --duration 120 --seed 1
  fakeai-metrics demo --slos fakeai_metrics/examples/latency-slos.yml
  fakeai-metrics demo --redis-url redis://127.0.0.1:6379/0   budgets shared through Redis
  fakeai-metrics demo --price-file prices.yaml --genai-prices
  fakeai-metrics serve --port 9464          /metrics only (multiprocess-aware)
  fakeai-metrics rules --objective 0.995    regenerate grafana/alerts/
  fakeai-metrics dashboards                 regenerate grafana/dashboards/
  fakeai-metrics catalog                    the metric catalog as a Markdown table
"""


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1..65535)")
    return port


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be > 0 and finite")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be in [0, 1)")
    return value


def _check_port_free(addr: str, port: int) -> str | None:
    """None if ``addr:port`` can be bound, else a sentence saying what to do.

    Binds as both servers (prometheus_client's WSGIServer, uvicorn) do, with ``SO_REUSEADDR``:
    without it, the connections of a server just stopped (TIME_WAIT, up to 60 s) made a restart
    fail this check although the server itself would have bound.
    """
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} on {addr} is already in use; pick another with --port"
            return f"cannot listen on {addr}:{port}: {e.strerror}; check --addr and --port"
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fakeai-metrics", epilog=EPILOG, formatter_class=argparse.RawTextHelpFormatter,
        description="LLM-serving metrics for Prometheus, Grafana and OpenTelemetry.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="serve a fake OpenAI API under load, with /metrics",
                          description="Start a fake OpenAI-compatible server under the metrics "
                          "middleware, drive it over HTTP on ADDR:PORT, and serve /metrics there.")
    demo.add_argument("--port", type=_port, default=9464, help="listen port (default 9464)")
    demo.add_argument("--addr", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    demo.add_argument("--rps", type=_positive, default=20.0,
                      help="requests per second the load generator sends (default 20)")
    demo.add_argument("--duration", type=_non_negative, default=0.0,
                      help="seconds to run; 0 = until Ctrl-C (default 0)")
    demo.add_argument("--error-rate", type=_ratio, default=0.02,
                      help="fraction of requests the fake API fails (default 0.02)")
    demo.add_argument("--seed", type=int, default=None, help="random seed for a repeatable run")
    demo.add_argument("--slos", metavar="FILE",
                      help="latency SLO spec (YAML) to judge requests against, e.g. "
                           "fakeai_metrics/examples/latency-slos.yml")
    demo.add_argument("--redis-url", default=None, metavar="URL",
                      help="share budgets with every process on this Redis (redis://host:port/db; "
                      "default: $FAKEAI_METRICS_REDIS_URL, else this process only)")
    demo.add_argument("--price-file", metavar="PATH",
                      help="YAML/JSON prices (model -> input/output/cached USD per million "
                      "tokens) over the default table")
    demo.add_argument("--genai-prices", action="store_true",
                      help="price models from the genai-prices database instead of FakeAI's "
                      "table (pip install 'fakeai-metrics[genai]')")
    demo.add_argument("--genai-provider", metavar="ID",
                      help="genai-prices provider id (e.g. openai); implies --genai-prices")

    serve = sub.add_parser("serve", help="serve /metrics only",
                           description="Serve /metrics of this process (or, with "
                           "PROMETHEUS_MULTIPROC_DIR set, of every worker) until Ctrl-C.")
    serve.add_argument("--port", type=_port, default=9464, help="listen port (default 9464)")
    serve.add_argument("--addr", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument("--certfile", help="TLS certificate (PEM): serve HTTPS")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    serve.add_argument("--client-cafile", help="require scraper certificates signed by this CA")
    serve.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S,
                       help="seconds a client may stall (TLS handshake, each read or write) "
                       "before it is disconnected (default %(default)s)")

    # rules and dashboards have their own parsers (their modules' main); listed for --help
    sub.add_parser("rules", help="write the Prometheus rule files (see: rules --help)",
                   add_help=False)
    sub.add_parser("dashboards", help="write the Grafana dashboards (see: dashboards --help)",
                   add_help=False)

    sub.add_parser("catalog", help="print the metric catalog as a Markdown table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rules"]:
        from .artifacts import rules
        return rules.main(argv[1:])
    if argv[:1] == ["dashboards"]:
        from .artifacts import dashboards
        return dashboards.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "catalog":
        from .catalog import markdown_table
        print(markdown_table(), end="")
        return 0
    prices = None
    if args.command == "demo":
        try:
            prices = price_table(args.price_file, args.genai_prices, args.genai_provider)
        except ValueError as e:  # InvalidMetricInput: a bad price file or provider
            print(f"fakeai-metrics: {e}", file=sys.stderr)
            return 2
    problem = _check_port_free(args.addr, args.port)
    if problem:
        print(f"fakeai-metrics: {problem}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args)
    try:
        from . import demo
        import httpx, uvicorn  # noqa: F401  (the demo's server and load generator)
    except ImportError as e:
        print(f"fakeai-metrics: the demo needs {e.name}: pip install 'fakeai-metrics[demo]'",
              file=sys.stderr)
        return 2
    slos = None
    if args.slos:  # checked before anything listens, so a bad spec is one clear line
        from .latency_slo import load_slos
        try:
            slos = load_slos(args.slos)
        except (OSError, ValueError) as e:
            print(f"fakeai-metrics: --slos: {e}", file=sys.stderr)
            return 2
    try:
        asyncio.run(demo.run(port=args.port, addr=args.addr, rps=args.rps,
                             duration=args.duration, seed=args.seed, error_rate=args.error_rate,
                             slos=slos, budget_store=args.redis_url, prices=prices))
    except KeyboardInterrupt:
        pass
    return 0


def price_table(price_file: str | None, genai: bool = False,
                genai_provider: str | None = None) -> PriceTable | None:
    """The demo's prices from its options; None keeps the default table."""
    if not (price_file or genai or genai_provider):
        return None
    own = load_price_file(price_file) if price_file else None
    if not (genai or genai_provider):
        return PriceTable(own)
    from .genai import GenaiPrices
    return PriceTable(own, genai=GenaiPrices(genai_provider))


def _serve(args: argparse.Namespace) -> int:
    from .server import serve
    if bool(args.certfile) != bool(args.keyfile):
        print("fakeai-metrics: --certfile and --keyfile go together", file=sys.stderr)
        return 2
    # Ctrl-C is held back until the server is up: the port answers before serve() returns (the
    # server threads inherit the mask, so a Ctrl-C still reaches this thread, at the unblock)
    server = None
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        server, _ = serve(args.port, args.addr, certfile=args.certfile, keyfile=args.keyfile,
                          client_cafile=args.client_cafile,
                          client_auth_required=bool(args.client_cafile), timeout=args.timeout)
        scheme = "https" if args.certfile else "http"
        print(f"serving metrics on {scheme}://{args.addr}:{args.port}/metrics; Ctrl-C stops",
              flush=True)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
