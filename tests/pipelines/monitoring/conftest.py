"""One monitoring run on real data (three bundled symbols), shared by the monitoring tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from monitoring_helpers import feature_kinds, monitor


@pytest.fixture(scope="session")
def monitoring_run(small_features, small_prices) -> SimpleNamespace:
    """Team red's monitoring at the newest session (2023-12-29): built once, evidently is slow."""
    return monitor(small_features, small_prices, feature_kinds(), None)
