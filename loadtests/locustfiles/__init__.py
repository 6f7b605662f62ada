"""Locust user classes: simulated clients of the gateway, run only by ``python -m locust -f``.

``chat``, ``cache_heavy``, ``budget`` and ``mixed`` each hold one user class, built on
``common`` (the streaming-aware request helper, locust); ``traffic`` is the pure part (settings
from ``TG_*`` environment variables, request sizes drawn from a real trace, request bodies,
SSE reading), which the unit tests import. Locust runs as its own gevent process: nothing
outside this folder imports it, and only ``common`` and the user files import locust.
"""
