"""The dashboards' PromQL, built from the catalog: selectors, rates, quantiles, means, the error
ratio and the recorded series.

Every metric name comes from a ``MetricSpec``, every label a query filters or groups by is checked
against that metric's catalog labels, and a recorded series can be read only if the rules
generator records it with the same options, so a renamed metric, label or rule fails generation
instead of leaving an empty panel. Quantiles are computed by Prometheus from the exported buckets
(``histogram_quantile`` over ``sum by (le)``), means as the rate of ``_sum`` over the rate of
``_count``; every ``rate()`` reads ``$__rate_interval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from ... import catalog as c
from ...slo import error_budget

#: Grafana's own variables the queries use; tests substitute real values for them.
RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"
#: The dashboards' template variables the queries filter by.
JOB_VAR = "job"
MODEL_VAR = "model"


@dataclass(frozen=True)
class PromQL:
    """Query text for one namespace and the SLO the rules were generated with."""

    ns: str
    objective: float
    period: str
    #: Names the rules generator records with these options; ``record()`` reads only these.
    recorded: frozenset[str] = frozenset()

    @property
    def budget(self) -> Decimal:
        """The SLO's error budget, exact: 0.999 -> 0.001."""
        return error_budget(self.objective)

    def name(self, spec: c.MetricSpec, suffix: str = "") -> str:
        if suffix and spec.kind != "histogram":
            raise ValueError(f"{spec.name} is a {spec.kind}: it has no {suffix} series")
        return spec.full_name(self.ns) + suffix

    @staticmethod
    def _check_labels(spec: c.MetricSpec, labels: Sequence[str]) -> None:
        known = set(spec.labels) | {"job", "instance"} | ({"le"} if spec.kind == "histogram"
                                                           else set())
        unknown = [label for label in labels if label not in known]
        if unknown:
            raise ValueError(f"{spec.name} has no label {', '.join(unknown)} "
                             f"(catalog labels: {', '.join(spec.labels)})")

    def sel(self, spec: c.MetricSpec, suffix: str = "", **equal: str) -> str:
        """``name{job="$job", model=~"$model", k="v"}``; ``model`` only where the metric has it."""
        self._check_labels(spec, list(equal))
        matchers = [f'job="${JOB_VAR}"']
        if "model" in spec.labels:
            matchers.append(f'model=~"${MODEL_VAR}"')
        matchers += [f'{k}="{v}"' for k, v in equal.items()]
        return f"{self.name(spec, suffix)}{{{', '.join(matchers)}}}"

    def by(self, spec: c.MetricSpec, *labels: str) -> str:
        self._check_labels(spec, labels)
        return f"by ({', '.join(labels)})"

    def sum(self, spec: c.MetricSpec, *by: str) -> str:
        """``sum by (labels)``, or ``sum`` without labels."""
        return f"sum {self.by(spec, *by)}" if by else "sum"

    def rate(self, spec: c.MetricSpec, suffix: str = "", **equal: str) -> str:
        return f"rate({self.sel(spec, suffix, **equal)}[{RATE_INTERVAL}])"

    def sum_rate(self, spec: c.MetricSpec, *by: str, suffix: str = "", **equal: str) -> str:
        return f"{self.sum(spec, *by)} ({self.rate(spec, suffix, **equal)})"

    def quantile(self, q: float, spec: c.MetricSpec, *by: str) -> str:
        return f"histogram_quantile({q}, {self.sum_rate(spec, 'le', *by, suffix='_bucket')})"

    def mean(self, spec: c.MetricSpec, *by: str) -> str:
        return (f"{self.sum_rate(spec, *by, suffix='_sum')} / "
                f"{self.sum_rate(spec, *by, suffix='_count')}")

    def error_ratio(self, *by: str) -> str:
        """Failed / all finished requests; 0 (not empty) where nothing failed."""
        errors = self.sum_rate(c.REQUESTS, *by, **{c.OUTCOME_LABEL: c.ERROR})
        everything = self.sum_rate(c.REQUESTS, *by)
        return f"({errors} or 0 * {everything}) / {everything}"

    def record(self, name: str, **equal: str) -> str:
        """A recording rule's series for the selected job (and ``equal`` labels); the rule must
        be one the rules generator makes."""
        if name not in self.recorded:
            raise ValueError(f"the rules generator records no {name!r}")
        matchers = [f'job="${JOB_VAR}"'] + [f'{k}="{v}"' for k, v in equal.items()]
        return f"{name}{{{', '.join(matchers)}}}"
