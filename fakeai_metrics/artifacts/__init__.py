"""Files generated from the catalog for the operators' tools: Prometheus rule files (``rules``)
and Grafana dashboards (``dashboards``), written under ``grafana/`` by ``fakeai-metrics generate``."""
