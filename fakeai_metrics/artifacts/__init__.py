"""Files generated from the catalog for the operators' tools, written under ``grafana/`` by
``fakeai-metrics rules`` and ``fakeai-metrics dashboards``: Prometheus rule files (``rules``: the
options checked in ``rule_spec``, the rules built in ``slo_rules`` and ``budget_rules``, written
by ``rules_yaml``) and Grafana dashboards (the ``dashboards`` package)."""
