"""Choosing a budget store: ``open_store`` turns ``budget_store=`` (an object, a URL, or None and
the environment) into a store.

Its own module so that ``budgets`` (the interface and the in-process store) never imports the
Redis backend, which imports the optional ``redis`` package: ``redis_store`` builds on
``budgets``, and this module sits above both.
"""

from __future__ import annotations

import os

from . import validation as v
from .budgets import REDIS_URL_ENV, BudgetStore, InProcessBudgetStore


def open_store(spec: BudgetStore | str | None) -> BudgetStore:
    """The store ``spec`` names: a store object as is, a ``redis://``/``rediss://``/``unix://``
    URL, or None for ``$FAKEAI_METRICS_REDIS_URL`` if set, else a new in-process store."""
    if spec is None:
        spec = os.environ.get(REDIS_URL_ENV) or None
        if spec is None:
            return InProcessBudgetStore()
    if isinstance(spec, str):
        if not spec.startswith(("redis://", "rediss://", "unix://")):
            raise v.InvalidMetricInput(
                "budget_store must be a redis://, rediss:// or unix:// URL or a BudgetStore, "
                f"got a string starting {spec.split(':', 1)[0]!r}")
        from .redis_store import RedisBudgetStore
        return RedisBudgetStore(spec)
    if not isinstance(spec, BudgetStore):
        raise v.InvalidMetricInput(
            f"budget_store must be a URL or a BudgetStore, got {type(spec).__name__}")
    return spec
