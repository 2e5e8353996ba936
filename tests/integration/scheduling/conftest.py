"""Fixtures of the scheduling tests (the Redis database and the processes they start come from
``tests/integration/conftest.py``): a fake OpenAI-compatible model."""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server
