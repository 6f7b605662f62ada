"""Monitoring for token-gateway: Grafana dashboards, Prometheus rules and their tools."""
