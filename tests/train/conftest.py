"""Fixtures for ModelFactory tests (helpers live in trainkit.py)."""

from __future__ import annotations

from typing import Any

import pytest
from trainkit import make_records


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return make_records()
