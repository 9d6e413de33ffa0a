"""The start-up checks of the configuration: a plain function of the settings, table-driven."""

from __future__ import annotations

import pytest

from shared.config import DEVELOPMENT_SIGNING_SECRET, Settings, start_up_problems

SAFE = {"link_signing_secret": "a-long-random-secret-of-the-shop-owner"}


@pytest.mark.parametrize(("changes", "problem"), [
    ({}, None),
    ({"link_signing_secret": DEVELOPMENT_SIGNING_SECRET}, "LINK_SIGNING_SECRET is the development"),
    ({"link_signing_secret": ""}, "LINK_SIGNING_SECRET is the development"),
    ({"link_signing_secret": DEVELOPMENT_SIGNING_SECRET, "inbox_environment": "development"},
     None),
    ({"database_pool_max": 4, "kafka_consumer_concurrency": 4},
     "DATABASE_POOL_MAX (4) must exceed"),
    ({"database_pool_max": 5, "kafka_consumer_concurrency": 4}, None),
    ({"database_pool_min": 6, "database_pool_max": 5, "kafka_consumer_concurrency": 1},
     "DATABASE_POOL_MIN (6) is above"),
    ({"kafka_heartbeat_interval_ms": 3000, "kafka_session_timeout_ms": 6000},
     "KAFKA_HEARTBEAT_INTERVAL_MS (3000) must be at most a third"),
    ({"kafka_heartbeat_interval_ms": 2000, "kafka_session_timeout_ms": 6000}, None),
])
def test_start_up_problems(changes: dict, problem: str | None) -> None:
    found = start_up_problems(Settings(**{**SAFE, **changes}))
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(problem), found


def test_secrets_are_not_printed() -> None:
    settings = Settings(link_signing_secret="s3cret-value", messenger_app_secret="app-s3cret")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
