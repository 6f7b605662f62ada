"""Locust load shapes: ``steady``, ``step``, ``spike`` and ``trace``, one ``LoadTestShape`` each.

Each shape file is a thin ``LoadTestShape`` over a plan in ``schedule`` (pure: user count and
spawn rate as a function of run time, read from ``TG_*`` environment variables), so the unit
tests check the plans without importing locust, whose import monkey-patches the process.
"""
