"""Price sources: an operator's price file (and its bad forms), the genai-prices database, and
their selection on the trackers, the hub and the demo's command line."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from fakeai_metrics import (
    CostTracker,
    InvalidMetricInput,
    ModelMetricsTracker,
    Price,
    PriceTable,
    Telemetry,
    load_price_file,
)
from fakeai_metrics.cli import main, price_table
from fakeai_metrics.testing import MetricNotFound, metric_value

from conftest import require_module

CHAT = "/v1/chat/completions"
M = 1_000_000

GOOD_YAML = """\
# self-hosted and chargeback rates, USD per million tokens
llama-3.1-70b-internal:
  input: 0.60
  output: 0.80
  cached: 0.30
gpt-4o:          # our negotiated rate
  input: 4
  output: 12
"""


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _unpriced(registry: CollectorRegistry, model: str) -> float:
    try:
        return metric_value(registry, "fakeai_unpriced_requests_total", {"model": model})
    except MetricNotFound:
        return 0


def test_yaml_price_file_overrides_and_extends_the_default(tmp_path):
    path = _write(tmp_path, "prices.yaml", GOOD_YAML)
    assert load_price_file(path) == {"llama-3.1-70b-internal": Price(0.6, 0.8, 0.3),
                                     "gpt-4o": Price(4.0, 12.0)}
    t = CostTracker(prices=PriceTable.from_file(path))
    assert t.record_usage("k", "llama-3.1-70b-internal", CHAT, M, M, cached_tokens=M // 2) == \
        pytest.approx(0.3 + 0.15 + 0.8)
    assert t.record_usage("k", "gpt-4o", CHAT, M, M) == pytest.approx(16.0)
    assert t.record_usage("k", "gpt-4o-mini", CHAT, M, 0) == pytest.approx(0.15)  # default
    assert t.record_usage("k", "unlisted", CHAT, M, 0) == pytest.approx(0.5)  # fallback
    assert _unpriced(t.registry, "unlisted") == 1
    assert _unpriced(t.registry, "llama-3.1-70b-internal") == 0


def test_json_price_file_with_models_key(tmp_path):
    path = _write(tmp_path, "prices.json",
                  json.dumps({"models": {"mistral-7b-local": {"input": 0.1, "output": 0.2}}}))
    assert load_price_file(path) == {"mistral-7b-local": Price(0.1, 0.2)}


@pytest.mark.parametrize("name,text,message", [
    ("p.yaml", "a: [1, 2\n", "p.yaml: invalid YAML at line"),
    ("p.json", "{\"a\": ", "p.json: invalid JSON at line 1"),
    ("p.yaml", "- gpt-4o\n", "expected a non-empty mapping of model -> prices, got list"),
    ("p.yaml", "", "expected a non-empty mapping of model -> prices, got NoneType"),
    ("p.yaml", "m: 5\n", "p.yaml: models['m'] must be a mapping with input and output"),
    ("p.yaml", "m: {input: 1}\n", "models['m'].output is missing"),
    ("p.yaml", "m: {input: -1, output: 1}\n", "models['m'].input must be a number >= 0"),
    ("p.yaml", "m: {input: '1', output: 1}\n", "models['m'].input must be a number >= 0"),
    ("p.yaml", "m: {input: true, output: 1}\n", "models['m'].input must be a number >= 0"),
    ("p.yaml", "m: {input: .nan, output: 1}\n", "models['m'].input must be a number >= 0"),
    ("p.yaml", "m: {input: 1, output: 1, cached: -0.5}\n", "models['m'].cached must be"),
    ("p.yaml", "m: {input: 1, output: 2, cache: 1}\n", "unknown field(s) ['cache']"),
    ("p.yaml", "'': {input: 1, output: 2}\n", "model names must be non-empty strings"),
    ("p.yaml", "7: {input: 1, output: 2}\n", "model names must be non-empty strings"),
])
def test_bad_price_files_name_the_problem(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(InvalidMetricInput) as e:
        PriceTable.from_file(path)
    assert message in str(e.value)


def test_missing_price_file(tmp_path):
    with pytest.raises(InvalidMetricInput, match="cannot read"):
        load_price_file(tmp_path / "nope.yaml")


def test_a_rejected_file_changes_no_tracker(tmp_path):
    registry = CollectorRegistry()
    path = _write(tmp_path, "p.yaml", "m: {input: 1}\n")
    with pytest.raises(InvalidMetricInput):
        Telemetry(registry=registry, prices=PriceTable.from_file(path))
    Telemetry(registry=registry)  # nothing was registered: a corrected retry works


def test_telemetry_prices_cost_and_model_views_from_one_table(tmp_path):
    path = _write(tmp_path, "p.yaml", GOOD_YAML)
    t = Telemetry(registry=CollectorRegistry(), prices=PriceTable.from_file(path))
    cost = t.record_request(endpoint=CHAT, model="llama-3.1-70b-internal", latency_s=0.1,
                            prompt_tokens=M, completion_tokens=M)
    assert cost == pytest.approx(1.4)
    assert t.models.get_model_stats("llama-3.1-70b-internal")["cost"]["total_usd"] == \
        pytest.approx(1.4)


def test_model_tracker_takes_a_price_table(tmp_path):
    path = _write(tmp_path, "p.yaml", GOOD_YAML)
    t = ModelMetricsTracker(prices=PriceTable.from_file(path))
    t.track_tokens("gpt-4o", M, 0)
    assert t.get_model_stats("gpt-4o")["cost"]["total_usd"] == pytest.approx(4.0)


def test_each_model_name_is_looked_up_once():
    calls: list[str] = []

    class Counting(PriceTable):
        def _lookup(self, model):
            calls.append(model)
            return super()._lookup(model)

    t = CostTracker(prices=Counting())
    for _ in range(5):
        t.record_usage("k", "gpt-4o", CHAT, 10, 10)
        t.record_usage("k", "nobody-knows", CHAT, 10, 10)
    assert calls == ["gpt-4o", "nobody-knows"]
    assert _unpriced(t.registry, "nobody-knows") == 5


def test_demo_price_options(tmp_path, capsys):
    path = _write(tmp_path, "p.yaml", GOOD_YAML)
    assert price_table(None) is None
    table = price_table(str(path))
    assert table is not None and table.price("gpt-4o") == (Price(4.0, 12.0), True)
    bad = _write(tmp_path, "bad.yaml", "m: {input: 1}\n")
    assert main(["demo", "--price-file", str(bad), "--port", "1"]) == 2
    assert "models['m'].output is missing" in capsys.readouterr().err


# --- genai-prices ------------------------------------------------------------------------------


@pytest.fixture
def genai():
    require_module("genai_prices", "genai-prices")
    from fakeai_metrics.genai import GenaiPrices
    return GenaiPrices


def _genai_cost(model: str, prompt: int, completion: int, cached: int = 0,
                provider: str | None = None) -> float:
    from genai_prices import Usage, calc_price
    usage = Usage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion)
    return float(calc_price(usage, model, provider_id=provider).total_price)


def test_genai_prices_bill_as_the_database_does(genai):
    t = CostTracker(prices=PriceTable(genai=genai()))
    assert t.prices.source == "genai-prices"
    cost = t.record_usage("k", "gpt-4o", CHAT, 2 * M, M, cached_tokens=M)
    assert cost == pytest.approx(_genai_cost("gpt-4o", 2 * M, M, M))
    assert cost != pytest.approx(CostTracker().record_usage("k", "gpt-4o", CHAT, 2 * M, M,
                                                            cached_tokens=M))
    claude = t.record_usage("k", "claude-3-5-sonnet-20240620", CHAT, M, M)
    assert claude == pytest.approx(_genai_cost("claude-3-5-sonnet-20240620", M, M))


def test_genai_provider_from_the_model_name_or_configuration(genai):
    by_name = PriceTable(genai=genai()).price("anthropic/claude-3-5-sonnet")
    pinned = PriceTable(genai=genai(provider="anthropic")).price("claude-3-5-sonnet")
    assert by_name == pinned and by_name[1] is True
    assert by_name[0].cost(M, M) == pytest.approx(_genai_cost("claude-3-5-sonnet", M, M,
                                                              provider="anthropic"))
    with pytest.raises(InvalidMetricInput, match="genai_provider 'nope' is not a genai-prices"):
        genai(provider="nope")


def test_genai_tiered_prices(genai):
    table = PriceTable(genai=genai())
    price, known = table.price("gemini-1.5-pro")
    assert known
    for prompt in (100_000, 300_000):  # below and above the 128k tier
        assert price.cost(prompt, 1000) == pytest.approx(_genai_cost("gemini-1.5-pro", prompt,
                                                                     1000))


def test_genai_unknown_model_falls_back_and_is_counted(genai):
    t = CostTracker(prices=PriceTable(genai=genai()))
    assert t.record_usage("k", "my-own-llm", CHAT, M, M) == pytest.approx(2.0)
    assert _unpriced(t.registry, "my-own-llm") == 1
    # fine-tuned names keep FakeAI's fine-tuned rates
    assert t.record_usage("k", "ft:gpt-4o-2024-08-06:o::i", CHAT, M, 0) == pytest.approx(3.75)


def test_price_file_wins_over_genai(genai, tmp_path):
    path = _write(tmp_path, "p.yaml", GOOD_YAML)
    table = PriceTable.from_file(path, genai=genai())
    assert table.price("gpt-4o") == (Price(4.0, 12.0), True)
    assert price_table(str(path), genai=True).price("gpt-4o") == (Price(4.0, 12.0), True)
    assert price_table(None, genai_provider="openai").genai.provider == "openai"


def test_genai_database_size(genai):
    import genai_prices
    models, providers = genai().counts()
    assert models > 1000 and providers > 20
    if genai_prices.__version__ == "0.2.3":  # the figures the README quotes
        assert (models, providers) == (2330, 47)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_middleware_bills_at_its_hubs_prices(tmp_path):
    from test_middleware import build_app, post, usage

    from fakeai_metrics.testing import ManualClock
    registry, clock = CollectorRegistry(), ManualClock()
    hub = Telemetry(registry=registry, clock=clock, wall_clock=clock,
                    prices=PriceTable.from_file(_write(tmp_path, "p.yaml", GOOD_YAML)))
    app = build_app("starlette", hub, clock)
    r = await post(app, CHAT, {"model": "gpt-4o", "messages": [], "x_latency": 0.1,
                               "x_usage": usage(M, M)})
    assert r.status_code == 200
    assert metric_value(registry, "fakeai_cost_usd_total", {"model": "gpt-4o"}) == \
        pytest.approx(16.0)  # the file's $4 + $12, not the default $5 + $15
