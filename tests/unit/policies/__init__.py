"""Unit tests of policies/: table-driven cases on pure functions."""
