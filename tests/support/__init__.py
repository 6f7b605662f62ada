"""Test support: helpers that start and bound real processes (no test cases here)."""
