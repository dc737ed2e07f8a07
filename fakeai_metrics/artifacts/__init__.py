"""Files generated from the catalog for the operators' tools, written under ``grafana/`` by
``fakeai-metrics rules`` and ``fakeai-metrics dashboards``: Prometheus rule files (``rules``,
written as YAML by ``rules_yaml``) and Grafana dashboards (the ``dashboards`` package)."""
