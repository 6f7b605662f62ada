"""Tests: unit, integration (real processes) and end-to-end (real SDK clients)."""
