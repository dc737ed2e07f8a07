"""Reading a generated dashboard back: its queries as Grafana would run them, and Grafana's
variable interpolation, so tests and ``docs/render_demo.py`` run the panels' own PromQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PanelQuery:
    """One query of a generated dashboard, as Grafana would run it (before interpolation)."""

    dashboard: str  # uid
    panel: str  # title
    panel_type: str
    ref_id: str
    expr: str
    instant: bool


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    """Every target of every (non-row) panel of a dashboard dict, in order."""
    return [PanelQuery(dashboard["uid"], panel["title"], panel["type"], target["refId"],
                       target["expr"], bool(target.get("instant")))
            for panel in dashboard.get("panels", []) for target in panel.get("targets", [])]


_VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def interpolate(text: str, values: dict[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` as Grafana does; KeyError for a name not in ``values``."""
    return _VARIABLE_RE.sub(lambda m: values[m.group(1) or m.group(2)], text)
