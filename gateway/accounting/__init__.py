"""Accounting: token prices, usage and (later) spend ledgers."""
