"""Accounting: virtual keys and teams, budgets and rate limits, prices and the spend ledger."""
