"""Which registry /metrics exposes: this process's, or all workers' when there are several.

``python -m gateway serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start, so each writes its samples to files there and any worker's /metrics sums them: the
totals are right whichever worker answers the scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, multiprocess


def metrics_registry() -> CollectorRegistry | None:
    """A registry collecting from every worker, or None for the default single-process one."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
