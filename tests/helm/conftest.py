"""The chart, loaded once, and its render for every ci/*-values.yaml, rendered once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helm_python import Chart

from tests.helm.rendering import CHART_DIR, CI_VALUES, Rendered, load_values, render


@pytest.fixture(scope="session")
def chart() -> Iterator[Chart]:
    with Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def ci_renders(chart: Chart) -> dict[str, Rendered]:
    """ci file stem (``default-values``) -> what the chart renders for it."""
    return {path.stem: render(chart, load_values(path)) for path in CI_VALUES}
