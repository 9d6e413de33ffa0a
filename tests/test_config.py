"""The start-up checks of the configuration: a plain function of the settings, table-driven."""

from __future__ import annotations

import pytest

from shared.config import (
    DEVELOPMENT_SIGNING_SECRET,
    DatabaseSettings,
    KafkaSettings,
    MailSettings,
    MessengerSettings,
    Settings,
    start_up_problems,
)

SAFE = {"link_signing_secret": "a-long-random-secret-of-the-shop-owner"}


@pytest.mark.parametrize(("changes", "problem"), [
    ({}, None),
    ({"link_signing_secret": DEVELOPMENT_SIGNING_SECRET}, "LINK_SIGNING_SECRET is the development"),
    ({"link_signing_secret": ""}, "LINK_SIGNING_SECRET is the development"),
    ({"link_signing_secret": DEVELOPMENT_SIGNING_SECRET, "inbox_environment": "development"},
     None),
    ({"database": DatabaseSettings(pool_max=4), "kafka": KafkaSettings(consumer_concurrency=4)},
     "DATABASE_POOL_MAX (4) must exceed"),
    ({"database": DatabaseSettings(pool_max=5), "kafka": KafkaSettings(consumer_concurrency=4)},
     None),
    ({"database": DatabaseSettings(pool_min=6, pool_max=5),
      "kafka": KafkaSettings(consumer_concurrency=1)},
     "DATABASE_POOL_MIN (6) is above"),
    ({"kafka": KafkaSettings(heartbeat_interval_ms=3000, session_timeout_ms=6000)},
     "KAFKA_HEARTBEAT_INTERVAL_MS (3000) must be at most a third"),
    ({"kafka": KafkaSettings(heartbeat_interval_ms=2000, session_timeout_ms=6000)}, None),
])
def test_start_up_problems(changes: dict, problem: str | None) -> None:
    found = start_up_problems(Settings(**{**SAFE, **changes}))
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(problem), found


def test_secrets_are_not_printed() -> None:
    settings = Settings(link_signing_secret="s3cret-value",
                        messenger=MessengerSettings(app_secret="app-s3cret"))
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_the_environment_is_read_into_the_groups_by_the_same_names(monkeypatch) -> None:
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
        "KAFKA_SASL_PASSWORD": "kafka-s3cret",
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "KAFKA_CONSUMER_CONCURRENCY": "2",
        "DATABASE_URL": "postgresql://inbox@db/inbox",
        "DATABASE_POOL_MAX": "20",
        "SMTP_URL": "smtps://mail.example:465",
        "EMAIL_FROM_ADDRESS": "shop@mail.example",
        "SMTP_TIMEOUT_SECONDS": "5",
        "INBOUND_SMTP_PORT": "2525",
        "MESSENGER_APP_SECRET": "app-s3cret",
        "MESSENGER_SEND_RATE_PER_SECOND": "100",
        "HTTP_HOST": "0.0.0.0",
        "HTTP_PORT": "9000",
        "MAX_EVENT_BYTES": "1024",
        "LINK_SIGNING_SECRET": "link-s3cret",
        "PRESENCE_TIMEOUT_SECONDS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert settings.kafka.sasl_password.get_secret_value() == "kafka-s3cret"
    assert settings.kafka.enable_idempotence is False
    assert settings.kafka.consumer_concurrency == 2
    assert settings.database.url == "postgresql://inbox@db/inbox"
    assert settings.database.pool_max == 20
    assert settings.mail.smtp_url == "smtps://mail.example:465"
    assert settings.mail.from_address == "shop@mail.example"
    assert settings.mail.smtp_timeout_seconds == 5.0
    assert settings.mail.inbound_smtp_port == 2525
    assert settings.messenger.app_secret.get_secret_value() == "app-s3cret"
    assert settings.messenger.send_rate_per_second == 100.0
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9000)
    assert settings.max_event_bytes == 1024
    assert settings.link_signing_secret.get_secret_value() == "link-s3cret"
    assert settings.presence_timeout_seconds == 30.0


def test_a_group_given_in_code_still_reads_the_rest_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_LINGER_MS", "50")
    monkeypatch.setenv("DATABASE_POOL_MIN", "3")
    settings = Settings(kafka=KafkaSettings(bootstrap_servers="kafka-1:9093"))
    assert settings.kafka.bootstrap_servers == "kafka-1:9093"
    assert settings.kafka.linger_ms == 50
    assert settings.database.pool_min == 3
    assert MailSettings(from_address="a@b.example").from_address == "a@b.example"
