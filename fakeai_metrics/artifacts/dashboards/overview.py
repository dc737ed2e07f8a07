"""The *Overview* dashboard: traffic, error ratio, TTFT / ITL / TPOT / request-duration quantiles
and means, output tokens per second, the per-stream speed distribution, finish reasons and
truncated answers, active streams."""

from __future__ import annotations

from typing import Any

from ... import catalog as c
from .panels import FULL, HALF, Board, Query, heatmap, rate_unit_of, stat, timeseries, unit_of
from .promql import PromQL

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


def _budget_percent(p: PromQL) -> str:
    return f"{p.budget.normalize() * 100:f}%"


def _latency_panel(p: PromQL, spec: c.MetricSpec, title: str, what: str, *by: str) -> Any:
    queries = [Query(p.quantile(q, spec, *by), f"p{q * 100:g}") for q in QUANTILES]
    queries.append(Query(p.mean(spec, *by), "mean"))
    pcts = "/".join(f"p{q * 100:g}" for q in QUANTILES)
    return timeseries(
        title,
        f"{what} {pcts} and mean over the selected models, from the `{p.name(spec)}` "
        f"histogram: `histogram_quantile` of the summed bucket rates (an aggregate over every "
        f"instance, never an average of percentiles); mean = rate of `_sum` / rate of `_count`.",
        unit_of(spec), queries, w=HALF, legend_calcs=("mean", "lastNotNull", "max"), min_val=0)


def dashboard(p: PromQL, tags: list[str]) -> Board:
    board = Board(f"{p.ns}-overview", f"{p.ns} / Overview",
                  "LLM serving at a glance: traffic, errors, streaming latency (TTFT, ITL, TPOT), "
                  "throughput and open streams, from the fakeai-metrics exporter.", tags)
    completion = {c.TOKEN_TYPE_LABEL: c.COMPLETION}
    tokens_out = p.sum_rate(c.TOKENS, **completion)
    board.row("Summary")
    board.add(stat("Requests/s", "Finished requests per second, all endpoints and the selected "
                   f"models (`{p.name(c.REQUESTS)}`).", rate_unit_of(c.REQUESTS),
                   Query(p.sum_rate(c.REQUESTS))))
    board.add(stat("Error ratio", "Failed / all finished requests over the rate interval. The "
                   f"SLO's error budget is {_budget_percent(p)}: above it the budget burns faster "
                   "than it refills.", "percentunit", Query(p.error_ratio()),
                   thresholds=((None, "green"), (float(p.budget), "red")), decimals=2))
    board.add(stat("TTFT p90", "90th percentile of time to first token over the selected models.",
                   unit_of(c.TTFT), Query(p.quantile(0.9, c.TTFT))))
    board.add(stat("ITL p90", "90th percentile of the gap between consecutive tokens.",
                   unit_of(c.ITL), Query(p.quantile(0.9, c.ITL))))
    board.add(stat("Output tokens/s", "Generated (completion) tokens per second, billed by the "
                   f"cost tracker (`{p.name(c.TOKENS)}{{{c.TOKEN_TYPE_LABEL}=\"{c.COMPLETION}\"}}`"
                   ").",
                   rate_unit_of(c.TOKENS), Query(tokens_out)))
    board.add(stat("Active streams", "Streams started and not yet completed or failed, now.",
                   unit_of(c.STREAMS_ACTIVE), Query(f"sum ({p.sel(c.STREAMS_ACTIVE)})")))

    board.row("Traffic")
    board.add(timeseries(
        "Request rate by endpoint and model",
        f"Finished requests per second (`{p.name(c.REQUESTS)}`), successes and failures, by "
        "endpoint and model.", rate_unit_of(c.REQUESTS),
        [Query(p.sum_rate(c.REQUESTS, "endpoint", "model"), "{{endpoint}} {{model}}")],
        min_val=0))
    board.add(timeseries(
        "Error ratio by endpoint and model",
        f"Failed / all finished requests by endpoint and model; 0 where nothing failed. The "
        f"dashed line is the SLO's error budget ({_budget_percent(p)}).", "percentunit",
        [Query(p.error_ratio("endpoint", "model"), "{{endpoint}} {{model}}")],
        thresholds=((None, "green"), (float(p.budget), "red")), min_val=0))

    board.row("Latency")
    board.add(_latency_panel(p, c.TTFT, "Time to first token", "Time to first token"))
    board.add(_latency_panel(p, c.ITL, "Inter-token latency", "Gap between consecutive tokens"))
    board.add(_latency_panel(p, c.TPOT, "Time per output token",
                             "Per-stream (last - first token) / (tokens - 1)"))
    board.add(_latency_panel(p, c.REQUEST_DURATION, "Request duration",
                             "Whole-request latency (streamed and plain)"))
    board.add(timeseries(
        "p90 latency by model",
        "90th percentile of TTFT, ITL and TPOT per model, on a log axis: compare models at a "
        "glance.", "s",
        [Query(p.quantile(0.9, spec, "model"), f"{label} {{{{model}}}}")
         for spec, label in ((c.TTFT, "TTFT"), (c.ITL, "ITL"), (c.TPOT, "TPOT"))],
        w=FULL, log_scale=True))

    board.row("Throughput")
    board.add(timeseries(
        "Output tokens/s by model",
        "Generated tokens per second by model, as billed (completion tokens).",
        rate_unit_of(c.TOKENS),
        [Query(p.sum_rate(c.TOKENS, "model", **completion), "{{model}}")],
        min_val=0))
    board.add(heatmap(
        "Per-stream output speed (TPS distribution)",
        f"How fast completed streams delivered tokens: tokens / (completion - start) per "
        f"stream, bucketed by `{p.name(c.TPS)}`; colour = streams per second in the bucket.",
        unit_of(c.TPS),
        Query(p.sum_rate(c.TPS, "le", suffix="_bucket"), "{{le}}", format="heatmap")))
    board.add(timeseries(
        "Active streams by model",
        f"Open streams by model (`{p.name(c.STREAMS_ACTIVE)}`): started and not yet completed "
        "or failed.", unit_of(c.STREAMS_ACTIVE),
        [Query(f"{p.sum(c.STREAMS_ACTIVE, 'model')} ({p.sel(c.STREAMS_ACTIVE)})",
               "{{model}}")], min_val=0))
    reasons = c.FINISH_REASONS_TOTAL
    truncated = p.sum_rate(reasons, "model", finish_reason=c.TRUNCATED)
    board.add(timeseries(
        "Finish reasons",
        f"Successful requests per second by the finish reason the model gave "
        f"(`{p.name(reasons)}`): `{c.TRUNCATED}` is an answer cut at its token limit, "
        f"`{c.OTHER_FINISH_REASON}` any "
        f"reason outside OpenAI's set.", rate_unit_of(reasons),
        [Query(p.sum_rate(reasons, "finish_reason"), "{{finish_reason}}")], min_val=0))
    board.add(timeseries(
        "Truncated answers by model",
        "Share of successful requests whose answer was cut at its token limit (finish reason "
        f"`{c.TRUNCATED}`); 0 where none was.", "percentunit",
        [Query(f"({truncated} or 0 * {p.sum_rate(reasons, 'model')}) / "
               f"{p.sum_rate(reasons, 'model')}", "{{model}}")], min_val=0))
    board.add(timeseries(
        "Finished streams by outcome",
        f"Streams finished per second (`{p.name(c.STREAMS)}`), completed or failed, by model.",
        rate_unit_of(c.STREAMS),
        [Query(p.sum_rate(c.STREAMS, "model", "outcome"), "{{model}} {{outcome}}")], min_val=0))
    return board
