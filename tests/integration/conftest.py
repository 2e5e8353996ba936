"""Fixtures of the integration tests that start real processes: a Redis database of their own (emptied and
released at teardown) and the processes they start (ended with their process groups at teardown)."""

from __future__ import annotations

import pytest

from tests.support.celery_procs import Procs, free_redis_url, release_redis_db


@pytest.fixture
def redis_url():
    url = free_redis_url()  # a database no other client uses: a leftover worker cannot take these tasks
    yield url
    release_redis_db(url)


@pytest.fixture
def procs(tmp_path):
    started = Procs(tmp_path)  # every process it starts is ended with its process group at teardown
    yield started
    started.stop_all()
