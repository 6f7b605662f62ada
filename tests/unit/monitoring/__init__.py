"""Tests of the monitoring assets (dashboards)."""
