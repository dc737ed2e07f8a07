"""Latency SLOs: which requests count (``match``) and which of them were good (``good_when``).

A ``LatencySLO`` says that a fraction ``objective`` of the finished requests it matches must
succeed *and* meet every latency bound that applies to them: ``ttft_seconds`` to streamed
requests, ``tpot_seconds`` to streams of two or more output tokens, ``duration_seconds`` to every
request. A value equal to its bound is good. Goodput is the rate of good requests (DistServe's
definition, as AIPerf and GenAI-Perf ``--goodput`` measure it from a client), here counted by the
server itself.

Specs usually come from a YAML file (``load_slos``)::

    slos:
      - name: chat-interactive
        objective: 0.99
        period: 30d                 # optional
        match: {model: gpt-4o, endpoint: /v1/chat/completions}   # optional
        good_when: {ttft_seconds: 0.5, tpot_seconds: 0.05, duration_seconds: 10}

Everything is checked here, once: a bad spec raises ``InvalidMetricInput`` naming the field, and
nothing downstream (counting, rules, dashboards) re-validates it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

from .durations import format_duration, parse_period
from .routes import normalize_endpoint
from .slo import longest_window_seconds
from .validation import InvalidMetricInput

NAME_RE = re.compile(r"[a-z0-9_-]+")
DEFAULT_PERIOD = "30d"

#: The keys of a spec entry and of its two sections, in the order the YAML shows them.
_KEYS = ("name", "objective", "period", "match", "good_when")
MATCH_KEYS = ("model", "endpoint")
BOUND_KEYS = ("ttft_seconds", "tpot_seconds", "duration_seconds")
_BOUND_NAMES = {"ttft_seconds": "TTFT", "tpot_seconds": "TPOT", "duration_seconds": "duration"}

#: What ``Telemetry(slos=...)`` accepts: the specs themselves, or the path of a spec file.
SLOSource = Union[Sequence["LatencySLO"], str, "os.PathLike[str]"]


@dataclass(frozen=True)
class LatencySLO:
    """One latency SLO. ``model`` / ``endpoint`` restrict it (None: any); bounds are seconds,
    None where the spec sets none; at least one bound is required. ``period`` is kept in
    canonical form (``720h`` -> ``30d``)."""

    name: str
    objective: float
    period: str = DEFAULT_PERIOD
    model: str | None = None
    endpoint: str | None = None
    ttft_seconds: float | None = None
    tpot_seconds: float | None = None
    duration_seconds: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise InvalidMetricInput(
                f"name must match [a-z0-9_-]+ (lower-case letters, digits, _ and -), "
                f"got {self.name!r}")
        objective = self.objective
        if isinstance(objective, bool) or not isinstance(objective, (int, float)) \
                or not math.isfinite(objective) or not 0 < objective < 1:
            raise InvalidMetricInput(
                f"objective must be a number strictly between 0 and 1 (0.99 for 99 %), "
                f"got {objective!r}")
        try:
            seconds = parse_period(self.period)
        except ValueError as e:
            raise InvalidMetricInput(str(e)) from None
        if seconds <= longest_window_seconds():
            raise InvalidMetricInput(
                f"period {self.period!r} must be longer than the longest alert window "
                f"({format_duration(longest_window_seconds())})")
        for key in MATCH_KEYS:
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidMetricInput(f"match.{key} must be a non-empty string, got {value!r}")
        for key in BOUND_KEYS:
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise InvalidMetricInput(
                    f"good_when.{key} must be a positive number of seconds, got {value!r}")
        if all(getattr(self, key) is None for key in BOUND_KEYS):
            raise InvalidMetricInput(
                f"good_when needs at least one of {', '.join(BOUND_KEYS)}")
        object.__setattr__(self, "objective", float(objective))
        object.__setattr__(self, "period", format_duration(seconds))
        for key in BOUND_KEYS:
            if getattr(self, key) is not None:
                object.__setattr__(self, key, float(getattr(self, key)))

    def bounds_text(self) -> str:
        """The bounds in prose, as alerts and dashboards print them: 'TTFT <= 0.5 s, ...'."""
        return ", ".join(f"{_BOUND_NAMES[k]} <= {_plain(getattr(self, k))} s" for k in BOUND_KEYS
                         if getattr(self, k) is not None)

    @property
    def period_seconds(self) -> int:
        return parse_period(self.period)

    def matches(self, model: str | None, endpoint: str) -> bool:
        """Whether a request to ``endpoint`` (a path; normalised) for ``model`` counts here."""
        return ((self.model is None or self.model == model)
                and (self.endpoint is None
                     or normalize_endpoint(self.endpoint) == normalize_endpoint(endpoint)))


def _plain(value: float) -> str:
    """A number as written, without exponent or trailing zeros: 10.0 -> '10', 0.05 -> '0.05'."""
    return format(Decimal(repr(value)).normalize(), "f")


def check_unique(slos: Iterable[LatencySLO]) -> tuple[LatencySLO, ...]:
    """The SLOs as a tuple; InvalidMetricInput when one is not a LatencySLO or a name repeats."""
    if isinstance(slos, (str, bytes)) or not isinstance(slos, Iterable):
        raise InvalidMetricInput(f"slos must be a sequence of LatencySLO or a spec file's path, "
                                 f"got {type(slos).__name__}")
    out = tuple(slos)
    seen: set[str] = set()
    for i, slo in enumerate(out):
        if not isinstance(slo, LatencySLO):
            raise InvalidMetricInput(f"slos[{i}] must be a LatencySLO, got {type(slo).__name__}")
        if slo.name in seen:
            raise InvalidMetricInput(f"slos[{i}].name {slo.name!r} is used twice")
        seen.add(slo.name)
    return out


def parse_slos(doc: Any, source: str = "spec") -> tuple[LatencySLO, ...]:
    """The SLOs of a parsed spec document (``{"slos": [...]}``); errors name the field."""
    if not isinstance(doc, Mapping) or set(doc) != {"slos"}:
        keys = sorted(map(str, doc)) if isinstance(doc, Mapping) else type(doc).__name__
        raise InvalidMetricInput(f"{source}: the top level must be a mapping with the one key "
                                 f"'slos', got {keys}")
    entries = doc["slos"]
    if not isinstance(entries, list):
        raise InvalidMetricInput(f"{source}: slos must be a list, got {type(entries).__name__}")
    slos = []
    for i, entry in enumerate(entries):
        where = f"{source}: slos[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidMetricInput(f"{where} must be a mapping, got {type(entry).__name__}")
        fields: dict[str, Any] = {}
        for key in entry:
            if key not in _KEYS:
                raise InvalidMetricInput(f"{where}: unknown key {key!r} (known: "
                                         f"{', '.join(_KEYS)})")
        for section, known in (("match", MATCH_KEYS), ("good_when", BOUND_KEYS)):
            body = entry.get(section, {})
            if not isinstance(body, Mapping):
                raise InvalidMetricInput(f"{where}.{section} must be a mapping, got "
                                         f"{type(body).__name__}")
            for key, value in body.items():
                if key not in known:
                    raise InvalidMetricInput(f"{where}.{section}: unknown key {key!r} (known: "
                                             f"{', '.join(known)})")
                fields[key] = value
        for key in ("name", "objective"):
            if key not in entry:
                raise InvalidMetricInput(f"{where}: missing {key}")
        fields.update((k, entry[k]) for k in ("name", "objective", "period") if k in entry)
        try:
            slos.append(LatencySLO(**fields))
        except InvalidMetricInput as e:
            raise InvalidMetricInput(f"{where}.{e}") from None
    try:
        return check_unique(slos)
    except InvalidMetricInput as e:
        raise InvalidMetricInput(f"{source}: {e}") from None


def load_slos(path: str | os.PathLike[str]) -> tuple[LatencySLO, ...]:
    """The latency SLOs of a YAML spec file (see the module docstring).

    InvalidMetricInput for a file that is not YAML or not a valid spec (naming the field);
    OSError when it cannot be read.
    """
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidMetricInput(f"{path}: not valid YAML: {e}") from None
    return parse_slos(doc, str(path))


def resolve(source: SLOSource | None) -> tuple[LatencySLO, ...]:
    """``Telemetry(slos=...)``'s argument as SLOs: a path is loaded, a sequence checked."""
    if source is None:
        return ()
    if isinstance(source, (str, os.PathLike)):
        return load_slos(source)
    return check_unique(source)
