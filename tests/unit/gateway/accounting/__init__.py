"""Unit tests of gateway/accounting/."""
