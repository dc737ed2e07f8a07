"""prometheus_client's multiprocess mode: values also written to its per-process files.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn or uvicorn with several workers), each tracker's
instruments also write through to prometheus_client metrics, whose values live in memory-mapped
files that ``scrape_registry()`` merges at scrape time (prometheus_client's rules, each file key
parsed once per process: see ``multiprocess.merge``). Counters and histograms are exact across
workers. Gauges combine as the catalog's ``multiprocess_mode`` says: open streams and budget
spend are summed over live workers (``livesum``), budget limits and thresholds and the SLO
objective take the most recent value. The burn-rate gauge is per-process state and is not
exported in this mode; the generated recording rules compute it fleet-wide from
``fakeai_requests_total``. With the Redis budget store (``redis_store``) budget spend and, with
``shared_slo``, the burn rate are already the fleet's in every worker: those gauges then take the
most recent worker's value (``livemostrecent``) instead.

In this mode ``reset()``/``clear_history()`` reset the in-process views only: files never go back.
"""

from __future__ import annotations

import os

import prometheus_client


def enabled() -> bool:
    """True when prometheus_client runs in multiprocess mode in this process."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                or os.environ.get("prometheus_multiproc_dir"))


def scrape_registry() -> prometheus_client.CollectorRegistry:
    """A registry that reads every worker's files: serve this one in multiprocess mode."""
    from .merge import MergingCollector
    registry = prometheus_client.CollectorRegistry()
    MergingCollector(registry)
    return registry
