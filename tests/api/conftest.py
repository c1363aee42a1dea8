"""Fixtures for API tests: the gateway app on a temp store, pointed at the live simulators."""

from __future__ import annotations

import pytest

from support.demo import Demo


@pytest.fixture
async def demo(new_demo) -> Demo:
    return await new_demo()
