"""Exposure and faults: HTTPS with client certificates, localhost by default, a worker killed
mid-run, scrapes during heavy writes, and random call sequences that keep the invariants."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import require_binary
from fakeai_metrics import Telemetry
from fakeai_metrics.server import scrape_registry, serve
from fakeai_metrics.validation import InvalidMetricInput
from fakeai_metrics.testing import ManualClock, metric_value

EP = "/v1/chat/completions"


# --- exposure -------------------------------------------------------------------------------

def _openssl(*args: str, cwd) -> None:
    subprocess.run([require_binary("openssl", "openssl"), *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")
    # the extensions strict verification (Python 3.13's default) asks of a CA and its leaves
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n"
                               "authorityKeyIdentifier=keyid,issuer\n"
                               "basicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", f"{name}.pem",
                 cwd=d)
    return d


def _registry_with_data() -> CollectorRegistry:
    registry = CollectorRegistry()
    Telemetry(registry=registry).record_request(endpoint=EP, model="gpt-4o", latency_s=0.1,
                                                prompt_tokens=3, completion_tokens=4,
                                                api_key="sk-exposure-secret")
    return registry


@pytest.mark.slow
def test_https_with_client_certificates(pki):
    server, _ = serve(0, registry=_registry_with_data(), certfile=str(pki / "server.pem"),
                      keyfile=str(pki / "server.key"), client_cafile=str(pki / "ca.pem"),
                      client_auth_required=True)
    url = f"https://127.0.0.1:{server.server_port}/metrics"
    try:
        trusted = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(url, context=trusted, timeout=5).read()  # no client cert
        trusted.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        body = urllib.request.urlopen(url, context=trusted, timeout=5).read().decode()
        assert "fakeai_requests_total" in body and "sk-exposure-secret" not in body
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_serves_on_localhost_only_by_default():
    server, _ = serve(0, registry=_registry_with_data())
    try:
        assert server.server_address[0] == "127.0.0.1"
        body = urllib.request.urlopen(
            f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
        assert "fakeai_tokens_total" in body
        # no debug endpoints: prometheus_client answers any path with the metrics, nothing else
        other = urllib.request.urlopen(
            f"http://127.0.0.1:{server.server_port}/debug/vars", timeout=5).read().decode()
        assert other.startswith("# HELP") and "fakeai_tokens_total" in other
    finally:
        server.shutdown()
        server.server_close()


# --- stalled clients --------------------------------------------------------------------------

def _half_client_hello() -> bytes:
    """The first half of a real TLS ClientHello: a client that started a handshake and stalled."""
    hello = ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), hello,
                                                   server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    data = hello.read()
    return data[:len(data) // 2]


def _tls_server(pki, timeout: float):
    return serve(0, registry=_registry_with_data(), certfile=str(pki / "server.pem"),
                 keyfile=str(pki / "server.key"), timeout=timeout)


def _scrape_https(pki, port: int) -> str:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context,
                                timeout=10) as response:
        return response.read().decode()


def _still_open(sock: socket.socket) -> bool:
    """True while the server has neither closed nor answered ``sock``."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # data or b"": answered or closed
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


@pytest.mark.slow
def test_stalled_connections_do_not_block_https_scrapes(pki):
    # a timeout far longer than the test: the stalls below last while every scrape runs
    server, _ = _tls_server(pki, timeout=60)
    port = server.server_port
    idle = socket.create_connection(("127.0.0.1", port))  # connects, sends nothing
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(_half_client_hello())
    results: list[object] = []

    def scrape() -> None:
        try:
            results.append(_scrape_https(pki, port))
        except Exception as e:  # noqa: BLE001  (the assertion below shows what went wrong)
            results.append(e)

    try:
        threads = [threading.Thread(target=scrape) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [type(r).__name__ for r in results] == ["str"] * 4, results
        assert all("fakeai_requests_total" in r for r in results)  # type: ignore[operator]
        assert _still_open(idle) and _still_open(half)  # the scrapes ran while both stalled
    finally:
        idle.close()
        half.close()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("scheme,sent", [
    ("https", b""), ("https", "half ClientHello"), ("http", b""), ("http", b"GET /metr"),
])
def test_a_stalled_connection_is_dropped_after_the_timeout(pki, scheme, sent, capfd):
    if scheme == "https":
        server, _ = _tls_server(pki, timeout=0.5)
    else:
        server, _ = serve(0, registry=_registry_with_data(), timeout=0.5)
    stalled = socket.create_connection(("127.0.0.1", server.server_port))
    try:
        stalled.sendall(_half_client_hello() if sent == "half ClientHello" else sent)
        stalled.settimeout(30)  # only a bound on a broken server; the server's timeout is 0.5 s
        try:
            assert stalled.recv(1) == b""  # closed by the server, nothing answered
        except ConnectionResetError:
            pass
        if scheme == "https":
            assert "fakeai_requests_total" in _scrape_https(pki, server.server_port)
        else:
            assert "fakeai_requests_total" in urllib.request.urlopen(
                f"http://127.0.0.1:{server.server_port}/metrics", timeout=10).read().decode()
    finally:
        stalled.close()
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err  # a timed-out client is not an error


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", True, None])
def test_serve_rejects_a_bad_timeout(timeout):
    with pytest.raises(InvalidMetricInput, match="timeout"):
        serve(0, registry=CollectorRegistry(), timeout=timeout)


# --- a worker killed mid-run ----------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys
    from prometheus_client import CollectorRegistry
    from fakeai_metrics import Telemetry

    t = Telemetry(registry=CollectorRegistry())
    n = int(sys.argv[1])
    t.start_stream("open", endpoint="/v1/chat/completions", model="gpt-4o")
    for i in range(n if n >= 0 else 10**9):
        t.record_request(endpoint="/v1/chat/completions", model="gpt-4o", latency_s=0.01,
                         prompt_tokens=1, completion_tokens=1)
        if i == 100:
            print("busy", flush=True)
    print("done", flush=True)
    sys.stdin.read()  # stay alive (a live worker) until the parent closes stdin
""")


@pytest.mark.slow
def test_killed_worker_loses_no_count_of_the_survivors(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    env = dict(os.environ)
    survivors = [subprocess.Popen([sys.executable, "-c", WORKER, "500"], env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                 for _ in range(3)]
    victim = subprocess.Popen([sys.executable, "-c", WORKER, "-1"], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for p in survivors:
            assert p.stdout.readline().strip() == "busy"
            assert p.stdout.readline().strip() == "done"
        assert victim.stdout.readline().strip() == "busy"
        victim.send_signal(signal.SIGKILL)  # mid-run, no clean-up
        victim.wait(timeout=10)
        from prometheus_client.multiprocess import mark_process_dead
        mark_process_dead(victim.pid)
        registry = scrape_registry()
        total = metric_value(registry, "fakeai_requests_total")
        assert total >= 3 * 500 + 101  # every survivor's count, plus what the victim wrote
        assert metric_value(registry, "fakeai_streams_active") == 3  # victim's open stream gone
        text = generate_latest(registry).decode()
        list(text_string_to_metric_families(text))  # still a valid exposition
    finally:
        for p in survivors + [victim]:
            if p.poll() is None:
                p.stdin.close()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:  # still recording: never leave it running
                    p.kill()
                    p.wait(timeout=10)


# --- scrapes during heavy writes ------------------------------------------------------------

def test_scrapes_during_writes_are_consistent_snapshots():
    registry = CollectorRegistry()
    t = Telemetry(registry=registry)
    stop = threading.Event()

    def write(worker: int) -> None:
        i = 0
        while not stop.is_set():
            t.record_request(endpoint=EP, model=f"m{i % 3}", latency_s=0.001 * (i % 50),
                             prompt_tokens=2, completion_tokens=3, api_key=f"k{worker}")
            i += 1

    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for w in writers:
        w.start()
    try:
        for _ in range(30):
            text = generate_latest(registry).decode()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            hist = families["fakeai_request_duration_seconds"]
            for labels in {tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                           for s in hist.samples}:
                series = [s for s in hist.samples
                          if tuple(sorted((k, v) for k, v in s.labels.items()
                                          if k != "le")) == labels]
                buckets = [s.value for s in series if s.name.endswith("_bucket")]
                count = [s.value for s in series if s.name.endswith("_count")][0]
                assert buckets == sorted(buckets) and buckets[-1] == count  # cumulative, +Inf
            tokens = families["fakeai_tokens"]
            prompt = sum(s.value for s in tokens.samples if s.labels["type"] == "prompt")
            completion = sum(s.value for s in tokens.samples if s.labels["type"] == "completion")
            assert prompt * 3 == completion * 2  # both written under one lock: never torn
    finally:
        stop.set()
        for w in writers:
            w.join()


# --- random call sequences ------------------------------------------------------------------

_ids = st.sampled_from(["s1", "s2", "s3"])
_calls = st.one_of(
    st.tuples(st.just("request"), st.integers(0, 50), st.integers(0, 50),
              st.floats(0, 5, allow_nan=False)),
    st.tuples(st.just("failure"), st.sampled_from([400, 429, 500, 503])),
    st.tuples(st.just("start"), _ids, st.integers(0, 20)),
    st.tuples(st.just("token"), _ids, st.floats(0, 0.5, allow_nan=False)),
    st.tuples(st.just("finish"), _ids),
    st.tuples(st.just("fail"), _ids),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_calls, max_size=60))
def test_random_call_sequences_keep_the_invariants(calls):
    clock = ManualClock()
    registry = CollectorRegistry()
    t = Telemetry(registry=registry, clock=clock, wall_clock=clock)
    finished = 0
    for call in calls:
        kind = call[0]
        if kind == "request":
            t.record_request(endpoint=EP, model="gpt-4o", prompt_tokens=call[1],
                             completion_tokens=call[2], latency_s=call[3], api_key="k")
        elif kind == "failure":
            t.record_failure(endpoint=EP, model="gpt-4o", status_code=call[1], error_type="E")
        elif kind == "start":
            t.start_stream(call[1], endpoint=EP, model="gpt-4o", prompt_tokens=call[2],
                           api_key="k")
        elif kind == "token":
            clock.advance(call[2])
            t.stream_token(call[1])
        elif kind == "finish":
            t.finish_stream(call[1])
        else:
            t.fail_stream(call[1])
        finished += kind in ("request", "failure")
    errors = t.errors.get_metrics()
    assert errors["total_successes"] + errors["total_errors"] == errors["total_requests"]
    assert t.cost.get_total_cost() >= 0
    assert 0 <= t.streaming.get_active_stream_count() <= 3
    assert t.streaming.get_active_stream_count() == t.metrics.get_active_streams()
    for s in text_string_to_metric_families(generate_latest(registry).decode()):
        if s.name in ("fakeai_streams_active", "fakeai_endpoint_streams_active"):
            assert all(x.value >= 0 for x in s.samples)
    streams = t.streaming.get_metrics()
    assert errors["total_requests"] == finished + streams.completed_streams + \
        streams.failed_streams
