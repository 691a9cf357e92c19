from __future__ import annotations

import pytest

from connector_helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cassettes(shared_data):
    """../shared/data/cassettes, read in place (skips with a reason when the shared data is absent)."""
    return shared_data / "cassettes"
