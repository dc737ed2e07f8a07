"""A tracker: a catalog collector whose label values pass the registry's label caps.

Every tracker on a registry shares one ``LabelLimits`` (found there, or made on first use), so a
model or key is admitted or folded to ``__other__`` the same way everywhere.
"""

from __future__ import annotations

from typing import Any

from .collector import CatalogCollector, check_parts
from .limits import LabelLimits, limits_for


class Tracker(CatalogCollector):
    """Base class of the five FakeAI trackers and the goodput tracker."""

    def __init__(self, *, limits: LabelLimits | None = None, **kwargs: Any) -> None:
        check_parts(None, None, None, None, limits=limits)
        super().__init__(**kwargs)
        #: the label caps (``LabelLimits``) shared by the trackers on this registry
        self.limits = limits if limits is not None else limits_for(self.registry, self.namespace)
