"""Prometheus-style durations (``30d``, ``4w``, ``1d12h``): parsing and canonical printing.

Both the rules generator and the latency-SLO spec read SLO periods, so the grammar lives here once.
"""

from __future__ import annotations

import re

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PERIOD_RE = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_period(period: str) -> int:
    """Seconds in a Prometheus-style duration such as ``30d``, ``4w`` or ``1d12h``.

    Units w, d, h, m, s, each at most once and largest first; the total must be positive.
    """
    if not isinstance(period, str):
        raise ValueError(f"period must be a string such as '30d', got {period!r}")
    m = _PERIOD_RE.fullmatch(period.strip())
    if not period.strip() or m is None:
        raise ValueError(
            f"period {period!r} is not a duration: use whole units w, d, h, m, s, largest first, "
            "for example '30d', '4w' or '1d12h'")
    seconds = sum(int(n) * _UNITS[u] for n, u in zip(m.groups(), "wdhms") if n)
    if seconds <= 0:
        raise ValueError(f"period {period!r} must be longer than zero")
    return seconds


def format_duration(seconds: int) -> str:
    """A duration as Prometheus writes it, in days at most: 2592000 -> '30d', 180000 -> '2d2h'."""
    parts = []
    for unit in "dhms":
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"
