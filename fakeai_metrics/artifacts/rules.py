"""Prometheus rules for the availability SLO and the API-key budgets, generated from the catalog.

``generate()`` turns a small SLO spec (objective, period, grouping) and the metric catalog into
the text of two rule files; ``write()`` puts them in a directory; ``main()`` is the
``fakeai-metrics rules`` command. The files in ``grafana/alerts/`` are this module's output with
the defaults, and a test fails when they drift.

The SLO: a fraction ``objective`` of finished requests (``fakeai_requests_total``) succeed over
``period``. Its error ratio is recorded per window as ``<ns>:sli_error:ratio_rate<window>``,
summed over every instance of a ``job`` (optionally per ``model``), so a fleet is one SLO.
The burn-rate alerts are the SRE workbook's multiwindow, multi-burn-rate pairs; thresholds are
printed as ``(factor * budget)`` with the budget computed in decimal, so 0.999 gives 0.001.

Every name comes from the catalog (metrics, recorded series, alerts, label values) and the
burn-alert pairs from ``slo``; the rules are built as dicts and written by ``rules_yaml``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import catalog as c
from ..durations import format_duration, parse_period
from ..latency_slo import LatencySLO, SLOSource, resolve
from ..slo import (ALERT_WINDOWS, BURN_ALERT_PAIRS, BurnAlertPair, error_budget,
                   longest_window_seconds)
from .rules_yaml import Groups, render

DEFAULT_OBJECTIVE = 0.999
DEFAULT_PERIOD = "30d"
DEFAULT_OUT = "grafana/alerts"
#: Where ``runbook_url`` points; each alert links to its own section (``#<alertname>``).
#: Relative to the repository root by default; pass an absolute URL where the repo is hosted.
DEFAULT_RUNBOOK = "docs/runbook.md"

SLO_FILE = "fakeai-slo.rules.yml"
BUDGET_FILE = "fakeai-budget.rules.yml"
#: Written only with latency SLOs (``--slos FILE``).
LATENCY_SLO_FILE = "fakeai-latency-slo.rules.yml"

#: How long the SLO metrics must be missing before ``FakeAIMetricsAbsent`` fires: long enough to
#: ride out a rolling restart or a Prometheus restart, short enough to notice the same hour.
ABSENT_FOR = "15m"


_NAMESPACE_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


# --- spec validation ------------------------------------------------------------------------------

def _check_objective(objective: float) -> float:
    if isinstance(objective, bool) or not isinstance(objective, (int, float)):
        raise ValueError(f"objective must be a number in (0, 1), got {objective!r}")
    objective = float(objective)
    if not math.isfinite(objective) or not 0.0 < objective < 1.0:
        raise ValueError(
            f"objective must be strictly between 0 and 1 (for example 0.999 for 99.9 %), "
            f"got {objective!r}")
    return objective


def exact_text(d: Decimal) -> str:
    """A decimal as PromQL reads it, without exponent or trailing zeros: 0.0010 -> '0.001'."""
    return format(d.normalize(), "f")


def _percent(d: Decimal) -> str:
    """An exact percentage: Decimal('0.0144') -> '1.44%'."""
    return exact_text(d * 100) + "%"


def _share(d: Decimal) -> str:
    """A rounded percentage for prose: 3 significant digits."""
    return f"{float(d * 100):.3g}%"


@dataclass(frozen=True)
class _Spec:
    objective: float
    budget: Decimal
    period: str  # canonical
    period_seconds: int
    by: tuple[str, ...]
    ns: str
    runbook: str

    def metric(self, spec: c.MetricSpec) -> str:
        return spec.full_name(self.ns)

    @property
    def by_clause(self) -> str:
        return f"by ({', '.join(self.by)})"

    @property
    def subject(self) -> str:
        """How an alert names what it is about, in templates."""
        text = "{{ $labels.job }}"
        if "model" in self.by:
            text += " (model {{ $labels.model }})"
        return text

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook}#{alert.lower()}"


def _spec(objective: float, period: str, by_model: bool, namespace: str,
          runbook_url: str) -> _Spec:
    budget = error_budget(_check_objective(objective))
    seconds = parse_period(period)
    if seconds <= longest_window_seconds():
        raise ValueError(
            f"period {period!r} must be longer than the longest alert window "
            f"({format_duration(longest_window_seconds())}): the 1x burn alert reads 3 days")
    if not isinstance(namespace, str) or not _NAMESPACE_RE.fullmatch(namespace):
        raise ValueError(f"namespace must be a metric-name prefix such as 'fakeai', got "
                         f"{namespace!r}")
    if not isinstance(runbook_url, str) or not runbook_url or any(ch.isspace()
                                                                  for ch in runbook_url):
        raise ValueError(f"runbook_url must be a non-empty URL without spaces, got "
                         f"{runbook_url!r}")
    by = ("job", "model") if by_model else ("job",)
    return _Spec(_check_objective(objective), budget, format_duration(seconds), seconds, by,
                 namespace, runbook_url.rstrip("#"))


def command(objective: float = DEFAULT_OBJECTIVE, period: str = DEFAULT_PERIOD,
            by_model: bool = False, namespace: str = c.DEFAULT_NAMESPACE,
            runbook_url: str = DEFAULT_RUNBOOK) -> str:
    """The ``fakeai-metrics rules`` command line that generates these options."""
    s = _spec(objective, period, by_model, namespace, runbook_url)
    parts = ["fakeai-metrics", "rules", "--objective", repr(s.objective), "--period", s.period]
    if by_model:
        parts.append("--by-model")
    if namespace != c.DEFAULT_NAMESPACE:
        parts += ["--namespace", namespace]
    if s.runbook != DEFAULT_RUNBOOK:
        parts += ["--runbook-url", s.runbook]
    return " ".join(parts)


# --- the rules ------------------------------------------------------------------------------------

def _slo_recording(s: _Spec) -> list[dict[str, Any]]:
    requests = s.metric(c.REQUESTS)
    errors = f'{requests}{{{c.OUTCOME_LABEL}="{c.ERROR}"}}'

    def ratio(window: str) -> str:
        return (f"(\n"
                f"  sum {s.by_clause} (rate({errors}[{window}]))\n"
                f"  or\n"
                f"  0 * sum {s.by_clause} (rate({requests}[{window}]))\n"
                f")\n"
                f"/\n"
                f"sum {s.by_clause} (rate({requests}[{window}]))")

    rules: list[dict[str, Any]] = [
        {"record": c.error_ratio_record(w, s.ns), "expr": ratio(w)} for w in ALERT_WINDOWS]
    requests_5m, errors_5m = c.sli_rate_records(s.ns)
    rules += [
        {"record": requests_5m, "expr": f"sum {s.by_clause} (rate({requests}[5m]))"},
        {"record": errors_5m,
         "expr": (f"sum {s.by_clause} (rate({errors}[5m]))\n"
                  f"or\n"
                  f"0 * sum {s.by_clause} (rate({requests}[5m]))")},
        # The period's ratio from the recorded 5m rates: weighted by traffic like a rate over the
        # raw counters, at a fraction of the samples a 30-day range over them would load.
        {"record": c.error_ratio_record(s.period, s.ns),
         "expr": (f"sum_over_time({errors_5m}[{s.period}])\n"
                  f"/\n"
                  f"sum_over_time({requests_5m}[{s.period}])")},
        {"record": c.budget_remaining_record(s.ns),
         "expr": f"1 - {c.error_ratio_record(s.period, s.ns)} / {exact_text(s.budget)}"},
    ]
    return rules


@dataclass(frozen=True)
class _BurnTerms:
    """What a burn alert of one pair prints for an SLO's budget: its threshold (exact), how
    fast it burns, and the description's closing sentence (threshold, budget, spend)."""

    expr_threshold: str
    threshold_pct: str
    speed: str
    closing: str

    @classmethod
    def of(cls, w: BurnAlertPair, objective: float, budget: Decimal, period: str,
           period_seconds: int) -> "_BurnTerms":
        spent_share = _share(Decimal(w.factor) * parse_period(w.long) / period_seconds)
        lasts = format_duration(int(Decimal(period_seconds) / Decimal(w.factor)))
        return cls(
            f"({w.factor} * {exact_text(budget)})", _percent(Decimal(w.factor) * budget),
            "fast" if w.severity == c.PAGE else "steadily",
            f"(threshold: {w.factor}x the {_percent(budget)} error budget of the "
            f"{_percent(Decimal(repr(objective)))} objective over {period}). A burn of "
            f"{w.factor}x spends {spent_share} of the budget every {w.long} and all of it "
            f"in {lasts}.")

    def expr(self, long_series: str, short_series: str) -> str:
        return (f"{long_series} > {self.expr_threshold}\nand\n"
                f"{short_series} > {self.expr_threshold}")


def _burn_alert(s: _Spec, w: BurnAlertPair) -> dict[str, Any]:
    t = _BurnTerms.of(w, s.objective, s.budget, s.period, s.period_seconds)
    return {
        "alert": c.ALERT_BURN,
        "expr": t.expr(c.error_ratio_record(w.long, s.ns), c.error_ratio_record(w.short, s.ns)),
        "labels": {"severity": w.severity, "long_window": w.long, "short_window": w.short},
        "annotations": {
            "summary": f"{s.subject} is burning its error budget {t.speed} "
                       f"(over {w.factor}x for {w.long} and {w.short})",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of requests to {s.subject} failed over "
                f"the last {w.long} and more than {t.threshold_pct} over the last {w.short} "
                f"{t.closing}"),
            "runbook_url": s.runbook_url(c.ALERT_BURN),
        },
    }


def _absent_alert(s: _Spec) -> dict[str, Any]:
    objective = s.metric(c.SLO_OBJECTIVE)
    return {
        "alert": c.ALERT_ABSENT,
        "expr": f"absent({objective})",
        "for": ABSENT_FOR,
        "labels": {"severity": c.TICKET},
        "annotations": {
            "summary": "No fakeai-metrics exporter is being scraped",
            "description": (
                f"Prometheus has had no {objective} series for {ABSENT_FOR}: no exporter of "
                f"fakeai-metrics is scraped, so {c.ALERT_BURN} cannot fire and "
                f"{c.error_ratio_record(ALERT_WINDOWS[0], s.ns)} has no data."),
            "runbook_url": s.runbook_url(c.ALERT_ABSENT),
        },
    }


# --- latency SLOs ---------------------------------------------------------------------------------

def _latency_recording(s: _Spec, slos: Sequence[LatencySLO]) -> list[dict[str, Any]]:
    """Bad ratios per window for every SLO at once, then each SLO's period ratio and budget.

    The ratio is 1 - good / total computed as (total - good) / total: with whole rates the
    division is then correctly rounded, so a ratio exactly at a threshold is not read above it.
    """
    requests, good = s.metric(c.SLO_REQUESTS), s.metric(c.SLO_GOOD_REQUESTS)
    by = "by (job, slo)"

    def bad_ratio(window: str) -> str:
        return (f"(\n"
                f"  sum {by} (rate({requests}[{window}]))\n"
                f"  -\n"
                f"  sum {by} (rate({good}[{window}]))\n"
                f")\n"
                f"/\n"
                f"sum {by} (rate({requests}[{window}]))")

    requests_5m, good_5m = c.slo_rate_records(s.ns)
    rules: list[dict[str, Any]] = [
        {"record": c.slo_bad_ratio_record(w, s.ns), "expr": bad_ratio(w)} for w in ALERT_WINDOWS]
    rules += [{"record": requests_5m, "expr": f"sum {by} (rate({requests}[5m]))"},
              {"record": good_5m, "expr": f"sum {by} (rate({good}[5m]))"}]
    for slo in slos:
        sel = f'{{slo="{slo.name}"}}'
        period = c.slo_bad_ratio_record(slo.period, s.ns)
        # Each SLO's own rules carry its slo label, so two of them never look alike to promtool.
        labels = {"slo": slo.name}
        rules += [
            # The period's ratio from the recorded 5m rates, as for the availability SLO.
            {"record": period,
             "expr": (f"(\n"
                      f"  sum_over_time({requests_5m}{sel}[{slo.period}])\n"
                      f"  -\n"
                      f"  sum_over_time({good_5m}{sel}[{slo.period}])\n"
                      f")\n"
                      f"/\n"
                      f"sum_over_time({requests_5m}{sel}[{slo.period}])"),
             "labels": labels},
            {"record": c.slo_budget_remaining_record(s.ns),
             "expr": f"1 - {period}{sel} / {exact_text(error_budget(slo.objective))}",
             "labels": labels},
        ]
    return rules


def _latency_alert(s: _Spec, slo: LatencySLO, w: BurnAlertPair) -> dict[str, Any]:
    t = _BurnTerms.of(w, slo.objective, error_budget(slo.objective), slo.period,
                      slo.period_seconds)
    sel = f'{{slo="{slo.name}"}}'
    return {
        "alert": c.ALERT_LATENCY_BURN,
        "expr": t.expr(f"{c.slo_bad_ratio_record(w.long, s.ns)}{sel}",
                       f"{c.slo_bad_ratio_record(w.short, s.ns)}{sel}"),
        "labels": {"slo": slo.name, "severity": w.severity, "long_window": w.long,
                   "short_window": w.short},
        "annotations": {
            "summary": f"Latency SLO {{{{ $labels.slo }}}} of {{{{ $labels.job }}}} is burning "
                       f"its error budget {t.speed} (over {w.factor}x for {w.long} and {w.short})",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of the requests latency SLO "
                f"{{{{ $labels.slo }}}} matches on {{{{ $labels.job }}}} were bad (failed, or "
                f"not within {slo.bounds_text()}) over the last {w.long}, and more than "
                f"{t.threshold_pct} over the last {w.short} {t.closing}"),
            "runbook_url": s.runbook_url(c.ALERT_LATENCY_BURN),
        },
    }


def _pairs_by_severity() -> dict[str, str]:
    """The burn pairs in prose per severity, for the files' headers."""
    return {sev: " or ".join(f"{w.factor}x over {w.long} and {w.short}"
                             for w in BURN_ALERT_PAIRS if w.severity == sev)
            for sev in (c.PAGE, c.TICKET)}


def _latency_document(s: _Spec, slos: Sequence[LatencySLO],
                      cmd: str) -> tuple[list[str], Groups]:
    pairs = _pairs_by_severity()
    header = [f"Generated by `{cmd}` (fakeai_metrics/rules.py)",
              "from the metric catalog and the latency SLO spec. Do not edit: rerun it.", "",
              "Latency SLOs: a request an SLO matches is good when it succeeded within every "
              "bound that applies;",
              f"{c.slo_bad_ratio_record('<w>', s.ns)} = 1 - good / total, per job (all "
              f"instances) and slo.",
              f"{c.ALERT_LATENCY_BURN}: page at {pairs[c.PAGE]};",
              f"ticket at {pairs[c.TICKET]} (factor x the SLO's error budget)."]
    for slo in slos:
        header.append(f"  {slo.name}: {_percent(Decimal(repr(slo.objective)))} over "
                      f"{slo.period}, good when {slo.bounds_text()}")
    rules = _latency_recording(s, slos)
    rules += [_latency_alert(s, slo, w) for slo in slos for w in BURN_ALERT_PAIRS]
    return header, [(f"{s.ns}-latency-slo", rules)]


def _budget_rules(s: _Spec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spent, limit = s.metric(c.BUDGET_SPENT), s.metric(c.BUDGET_LIMIT)
    threshold, cost = s.metric(c.BUDGET_THRESHOLD), s.metric(c.COST)
    key_label = c.BUDGET_SPENT.labels[0]
    if not (c.BUDGET_LIMIT.labels == c.BUDGET_THRESHOLD.labels == c.BUDGET_SPENT.labels
            and key_label in c.COST.labels):
        raise RuntimeError("catalog: the budget gauges and the cost counter must share a key label")

    # One figure per job and key however many instances report it: with a shared (Redis) store
    # every instance exports the fleet's spend, so a sum would multiply it; with in-process
    # stores each instance enforces its own budget, so the fullest one is the one to alert on.
    by = f"max by (job, {key_label})"
    spent, limit, threshold = (f"{by} ({m})" for m in (spent, limit, threshold))

    # Each description first names the alert's own job and key, then reads the other gauges.
    series = (f'{{{{ $series := printf "{{job=%q,{key_label}=%q}}" $labels.job '
              f"$labels.{key_label} -}}}} ")

    def value_of(metric: str, fmt: str = 'printf "%.2f"') -> str:
        return (f'{{{{ with query (print "max({metric}" $series ")") }}}}'
                f"{{{{ . | first | value | {fmt} }}}}{{{{ end }}}}")

    key = f"{{{{ $labels.{key_label} }}}}"
    used = "{{ $value | humanizePercentage }}"
    spent_text = (f"API key {key} has spent {used} of its budget for the current period "
                  f"({value_of(s.metric(c.BUDGET_SPENT))} USD of "
                  f"{value_of(s.metric(c.BUDGET_LIMIT))} USD)")
    recording = [
        {"record": c.budget_used_record(s.ns), "expr": f"{spent} / {limit}"},
        *({"record": c.spend_rate_record(w, s.ns),
           "expr": f"sum by (job, {key_label}) (rate({cost}[{w}]))"} for w in c.SPEND_RATE_WINDOWS),
    ]
    alerts = [
        {"alert": c.ALERT_BUDGET_THRESHOLD,
         "expr": f"{spent} / {limit} >= {threshold}",
         "labels": {"severity": c.WARNING},
         "annotations": {
             "summary": f"API key {key} has used {used} of its budget",
             "description": (f"{series}{spent_text}, at or above its alert threshold of "
                             f"{value_of(s.metric(c.BUDGET_THRESHOLD), 'humanizePercentage')}."),
             "runbook_url": s.runbook_url(c.ALERT_BUDGET_THRESHOLD),
         }},
        {"alert": c.ALERT_BUDGET_EXCEEDED,
         "expr": f"{spent} / {limit}\nand\n{spent} >= {limit}",
         "labels": {"severity": c.CRITICAL},
         "annotations": {
             "summary": f"API key {key} has exceeded its budget ({used} used)",
             "description": (f"{series}{spent_text}. With a hard budget CostTracker.allows() "
                             f"is now False for the key; a soft one only reports."),
             "runbook_url": s.runbook_url(c.ALERT_BUDGET_EXCEEDED),
         }},
    ]
    return recording, alerts


def _documents(s: _Spec, cmd: str) -> dict[str, tuple[list[str], Groups]]:
    """Each file's header comment lines and rule groups, before rendering."""
    generated = [f"Generated by `{cmd}` (fakeai_metrics/rules.py)",
                 "from the metric catalog (fakeai_metrics/catalog.py). Do not edit: rerun it."]
    pairs = _pairs_by_severity()
    slo_header = generated + [
        "",
        f"SLO: {_percent(Decimal(repr(s.objective)))} of finished requests "
        f"({s.metric(c.REQUESTS)}) succeed over {s.period},",
        f"per {' and '.join(s.by)} across all instances. Error budget: {exact_text(s.budget)}.",
        f"{c.ALERT_BURN} (multiwindow, multi-burn-rate): page at {pairs[c.PAGE]};",
        f"ticket at {pairs[c.TICKET]}. Without `for:`: the short",
        "window confirms the long one, and a `for:` would only add to the detection time.",
        f"{c.ALERT_ABSENT} waits {ABSENT_FOR} (restarts, first scrapes) before firing.",
    ]
    budget_header = generated + [
        "",
        f"Per-API-key budgets: {c.ALERT_BUDGET_THRESHOLD} at the key's alert threshold,",
        f"{c.ALERT_BUDGET_EXCEEDED} at its limit. Keys without a budget export no budget series,",
        "so they never alert. Figures are taken per job and key with max over instances: with",
        "the Redis budget store every instance reports the fleet's spend (a sum would multiply",
        "it); with in-process stores each instance enforces its own budget (the fullest alerts).",
    ]
    budget_recording, budget_alerts = _budget_rules(s)
    # One group a file: a group evaluates its rules in order, so each alert reads the ratios
    # recorded in the same evaluation (separate groups run on their own timers and lag).
    return {
        SLO_FILE: (slo_header, [(f"{s.ns}-slo", _slo_recording(s) + [
            *(_burn_alert(s, w) for w in BURN_ALERT_PAIRS), _absent_alert(s)])]),
        BUDGET_FILE: (budget_header, [(f"{s.ns}-budget", budget_recording + budget_alerts)]),
    }


def generate(objective: float = DEFAULT_OBJECTIVE, period: str = DEFAULT_PERIOD,
             by_model: bool = False, namespace: str = c.DEFAULT_NAMESPACE,
             runbook_url: str = DEFAULT_RUNBOOK,
             slos: SLOSource | None = None) -> dict[str, str]:
    """The rule files for this SLO spec: file name -> YAML text. Pure and deterministic.

    ``slos`` (``LatencySLO``s or the path of a spec file) adds LATENCY_SLO_FILE; the other
    files do not depend on it. Raises ValueError for an objective outside (0, 1), a period that
    is not a duration or not longer than 3d (the longest alert window), a namespace that is not a
    metric prefix, or a bad latency SLO spec (InvalidMetricInput).
    """
    documents = _all_documents(objective, period, by_model, namespace, runbook_url, slos)
    return {name: render(header, groups) for name, (header, groups) in documents.items()}


def recorded(objective: float = DEFAULT_OBJECTIVE, period: str = DEFAULT_PERIOD,
             namespace: str = c.DEFAULT_NAMESPACE,
             slos: SLOSource | None = None) -> frozenset[str]:
    """Every series name the rules generated with these options record: all a dashboard may
    read. Raises as ``generate`` does."""
    documents = _all_documents(objective, period, False, namespace, DEFAULT_RUNBOOK, slos)
    return frozenset(rule["record"] for _, groups in documents.values() for _, rules in groups
                     for rule in rules if "record" in rule)


def _all_documents(objective: float, period: str, by_model: bool, namespace: str,
                   runbook_url: str, slos: SLOSource | None) -> dict[str, tuple[list[str], Groups]]:
    s = _spec(objective, period, by_model, namespace, runbook_url)
    cmd = command(objective, period, by_model, namespace, runbook_url)
    documents = _documents(s, cmd)
    latency = resolve(slos)
    if latency:
        source = str(slos) if isinstance(slos, (str, os.PathLike)) else "FILE"
        documents[LATENCY_SLO_FILE] = _latency_document(s, latency, f"{cmd} --slos {source}")
    return documents


def write(out_dir: str | Path = DEFAULT_OUT, *, objective: float = DEFAULT_OBJECTIVE,
          period: str = DEFAULT_PERIOD, by_model: bool = False,
          namespace: str = c.DEFAULT_NAMESPACE, runbook_url: str = DEFAULT_RUNBOOK,
          slos: SLOSource | None = None) -> list[Path]:
    """Write the generated rule files into ``out_dir`` (created if missing); their paths."""
    return write_files(out_dir, generate(objective, period, by_model, namespace, runbook_url,
                                         slos))


def write_files(out_dir: str | Path, files: dict[str, str]) -> list[Path]:
    """Write generated ``{name: text}`` files into ``out_dir`` (created if missing); their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in sorted(files.items()):
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``fakeai-metrics rules``: write the rule files; 2 on a bad option."""
    p = argparse.ArgumentParser(
        prog="fakeai-metrics rules",
        description="Generate the Prometheus recording and alerting rules (SLO burn rate and "
                    "API-key budgets) from the metric catalog.")
    p.add_argument("--objective", type=float, default=DEFAULT_OBJECTIVE,
                   help="fraction of requests that must succeed (default 0.999)")
    p.add_argument("--period", default=DEFAULT_PERIOD,
                   help="SLO period, a duration such as 30d or 4w (default 30d)")
    p.add_argument("--by-model", action="store_true",
                   help="one SLO per job and model instead of one per job")
    p.add_argument("--namespace", default=c.DEFAULT_NAMESPACE,
                   help="metric prefix of the exporter (default fakeai)")
    p.add_argument("--runbook-url", default=DEFAULT_RUNBOOK,
                   help="the runbook that alerts link to (default docs/runbook.md)")
    p.add_argument("--slos", metavar="FILE",
                   help=f"latency SLO spec (YAML): also write {LATENCY_SLO_FILE}")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="directory to write the rule files to (default grafana/alerts)")
    args = p.parse_args(argv)
    return report(p.prog, lambda: write(args.out, objective=args.objective, period=args.period,
                                        by_model=args.by_model, namespace=args.namespace,
                                        runbook_url=args.runbook_url, slos=args.slos))


def report(prog: str, generate_files: Callable[[], list[Path]]) -> int:
    """Run a generator for the command line: print the paths written, or the error and 2."""
    try:
        paths = generate_files()
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
