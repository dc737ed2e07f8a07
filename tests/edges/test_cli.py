"""The ``fakeai-metrics`` command as a user meets it: help, errors that say what to do, the demo."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import require_module
from fakeai_metrics.catalog import markdown_table
from fakeai_metrics.cli import _check_port_free, main

CMD = [sys.executable, "-m", "fakeai_metrics.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "serve", "rules", "catalog"):
        assert command in out


@pytest.mark.parametrize("argv,message", [
    (["demo", "--port", "70000"], "not a TCP port"),
    (["demo", "--rps", "0"], "must be > 0"),
    (["demo", "--error-rate", "1.5"], "must be in [0, 1)"),
    (["serve", "--timeout", "0"], "must be > 0"),
    (["serve", "--timeout", "nan"], "must be > 0"),
    (["nonsense"], "invalid choice"),
])
def test_bad_options_exit_2_and_say_why(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_port_taken_is_reported(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["demo", "--port", str(port), "--duration", "1"]) == 2
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err


def _port_in_time_wait() -> int:
    """A port nothing listens on, holding a TIME_WAIT connection: what a stopped server leaves."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first, so its end waits in TIME_WAIT
            assert client.recv(1) == b""
    with socket.socket() as plain, pytest.raises(OSError):  # the state the old check tripped on
        plain.bind(("127.0.0.1", port))
    return port


def test_port_check_accepts_a_port_in_time_wait():
    assert _check_port_free("127.0.0.1", _port_in_time_wait()) is None


@pytest.mark.parametrize("reuse", [False, True])
def test_port_check_reports_a_live_listener(reuse):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert "already in use" in _check_port_free("127.0.0.1", port)


def test_catalog_prints_the_table(capsys):
    assert main(["catalog"]) == 0
    assert capsys.readouterr().out == markdown_table()


def _interrupt(proc: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, as a user would; killed if it does not stop within 20 s (then the test fails)."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def _scrape(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_demo_serves_metrics_and_stops_cleanly_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(CMD + ["demo", "--port", str(port), "--rps", "40", "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        text = _scrape(port, deadline)
        while "fakeai_time_to_first_token_seconds_bucket" not in text:
            assert time.monotonic() < deadline, "no stream finished within 30 s"
            time.sleep(0.5)
            text = _scrape(port, deadline)
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {"fakeai_requests", "fakeai_cost_usd", "fakeai_budget_limit_usd",
                "fakeai_slo_burn_rate"} <= families
        assert "sk-demo" not in text  # keys are exported as their aliases
        assert 'api_key="carol"' in text
    finally:
        out, err = _interrupt(proc)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert "requests" in out and "p50 TTFT" in out and "stopped." in out
    assert "Traceback" not in err


@pytest.mark.slow
def test_demo_duration_ends_the_run():
    port = free_port()
    started = time.monotonic()
    result = subprocess.run(CMD + ["demo", "--port", str(port), "--duration", "2"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    assert "stopped." in result.stdout


def test_rules_subcommand_passes_options_through(tmp_path):
    assert main(["rules", "--objective", "0.995", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "fakeai-slo.rules.yml").read_text()
    assert "(14.4 * 0.005)" in text


def test_rules_subcommand_takes_a_latency_slo_spec(tmp_path):
    spec = tmp_path / "slos.yml"
    spec.write_text("slos:\n  - {name: chat, objective: 0.995, good_when: {ttft_seconds: 1}}\n")
    assert main(["rules", "--slos", str(spec), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "fakeai-latency-slo.rules.yml").read_text()
    assert 'fakeai:slo_bad:ratio_rate1h{slo="chat"} > (14.4 * 0.005)' in text


@pytest.mark.parametrize("spec, message", [
    (None, "No such file"),
    ("slos:\n  - {name: chat, objective: 0.99, good_when: {ttft_seconds: -1}}\n",
     "slos[0].good_when.ttft_seconds must be a positive number"),
])
def test_demo_refuses_a_bad_slo_spec_before_serving(tmp_path, capsys, spec, message):
    path = tmp_path / "slos.yml"
    if spec is not None:
        path.write_text(spec)
    assert main(["demo", "--port", str(free_port()), "--slos", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fakeai-metrics: --slos: ") and message in err


def test_dashboards_subcommand_writes_the_committed_files(tmp_path):
    require_module("grafana_foundation_sdk", "fakeai-metrics[dashboards]")
    root = Path(__file__).resolve().parents[2]
    example = root / "fakeai_metrics" / "examples" / "latency-slos.yml"
    assert main(["dashboards", "--out", str(tmp_path), "--slos", str(example)]) == 0
    committed = root / "grafana" / "dashboards"
    for path in committed.glob("*.json"):
        assert (tmp_path / path.name).read_text() == path.read_text()


@pytest.mark.slow
def test_serve_subcommand_serves_until_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(CMD + ["serve", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        text = _scrape(port, time.monotonic() + 20)
        assert "python_info" in text or "process_" in text  # the default registry's collectors
    finally:
        out, err = _interrupt(proc)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/metrics" in out


def test_serve_needs_both_tls_files(capsys):
    assert main(["serve", "--port", str(free_port()), "--certfile", "x.pem"]) == 2
    assert "--certfile and --keyfile go together" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_timeout_drops_a_stalled_client():
    port = free_port()
    proc = subprocess.Popen(CMD + ["serve", "--port", str(port), "--timeout", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _scrape(port, time.monotonic() + 20)  # up
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.sendall(b"GET /metr")  # a request line never finished
            stalled.settimeout(30)  # only a bound on a broken server
            assert stalled.recv(1) == b""  # the server hung up, without answering
    finally:
        out, err = _interrupt(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
