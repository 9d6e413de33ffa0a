"""Configuration from the environment, in one typed place.

Every variable is documented in the README ("Configuration"). Knobs that differ between the
development broker and production Kafka are explicit settings, never inferred from the broker.

Settings that belong together form groups (`settings.kafka`, `.database`, `.mail`, `.messenger`,
`.http`), each a `BaseSettings` of its own that reads its variables (by prefix, or by alias where
they share none) when `Settings` is built. In code a group is given whole, and still reads from
the environment what it is not given: `Settings(kafka=KafkaSettings(bootstrap_servers=...))`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The signing secret a development stack runs with; a service outside development refuses it.
DEVELOPMENT_SIGNING_SECRET = "development-only-secret"


def _reading(prefix: str, **options: Any) -> SettingsConfigDict:
    """How a group reads the environment: its variables by prefix, in any case; others ignored."""
    return SettingsConfigDict(env_prefix=prefix, case_sensitive=False, extra="ignore", **options)


class KafkaSettings(BaseSettings):
    """The brokers, the clients' security and the topics' shape (KAFKA_*)."""

    model_config = _reading("KAFKA_")

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id_prefix: str = "inbox"
    #: PLAINTEXT on loopback; SASL_SSL for a managed Kafka (Confluent Cloud, MSK, Aiven).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    #: CA bundle that signed the brokers' certificates (the system's CAs when empty).
    ssl_cafile: str = ""
    #: Client certificate and key, for brokers that authenticate clients by TLS (mTLS).
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_key_password: SecretStr = SecretStr("")
    ssl_check_hostname: bool = True
    enable_idempotence: bool = Field(
        default=True,
        description="Idempotent producer (acks=all). Off only for a broker without it (Tansu).",
    )
    exactly_once: bool = Field(
        default=True,
        description="The classifier's tags and the offsets they answer commit in one Kafka "
        "transaction (a read_committed reader sees each tag once). Needs the idempotent "
        "producer and a broker with transactions (not Tansu).",
    )
    #: How long a transaction left open by a process that died may hold back read_committed
    #: readers of what it wrote, at most (the partition's next owner aborts it sooner).
    transaction_timeout_ms: int = Field(default=15_000, ge=1000)
    topic_partitions: int = 8
    #: Partitions of the topics marked quiet in shared/topics.py (and every .dlq): their order
    #: per key needs no more, and each partition a consumer reads costs it in every fetch.
    #: Existing topics keep theirs (Kafka never removes partitions).
    quiet_topic_partitions: int = Field(default=1, ge=1)
    replication_factor: int = 1
    #: min.insync.replicas of the topics created at start (the broker's default when 0).
    min_insync_replicas: int = 0
    create_topics: bool = True
    #: How long the customer-data topics (every topic but the compacted shop.* ones; DLQs too)
    #: keep a record (retention.ms), 7 days by default: personal data leaves the log well within
    #: Shopify's 30 days. Topics created before are brought to it at start. The idempotency
    #: records (processed_events) are kept longer than this, derived from it.
    customer_data_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    #: How long the broker may hold a fetch while no record arrives (Apache Kafka answers as
    #: soon as one does): a long poll, not a poll loop. Tansu needs a short one (20).
    fetch_max_wait_ms: int = 500
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_records: int = 500
    #: Groups of partitions a consumer applies at the same time, each in its own transaction
    #: (keep below DATABASE_POOL_MAX).
    consumer_concurrency: int = 4
    linger_ms: int = 5
    #: How long a consumer waits, once records arrived, for more to join the same batch (one
    #: transaction and one offset commit for all); 0 applies each fetch as it comes.
    consumer_linger_ms: int = Field(default=10, ge=0, le=1000)
    max_message_bytes: int = 1_000_000

    @property
    def transactions(self) -> bool:
        """Whether the exactly-once consumers (the classifier) use Kafka transactions."""
        return self.exactly_once and self.enable_idempotence


class DatabaseSettings(BaseSettings):
    """PostgreSQL (DATABASE_*)."""

    model_config = _reading("DATABASE_")

    url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    pool_min: int = 1
    pool_max: int = 10
    migrate_on_start: bool = True


class MailSettings(BaseSettings):
    """Email out (SMTP) and in (the notifier's own SMTP endpoint)."""

    # The variables share no prefix; EMAIL_FROM_ADDRESS is named by its alias.
    model_config = _reading("", populate_by_name=True)

    smtp_url: str = "smtp://127.0.0.1:1025"
    from_address: str = Field(default="inbox@localhost", validation_alias="EMAIL_FROM_ADDRESS")
    smtp_timeout_seconds: float = 30.0
    #: Port of the notifier's SMTP endpoint for customers' email answers (0: off).
    inbound_smtp_port: int = 0


class MessengerSettings(BaseSettings):
    """Meta's Graph API (MESSENGER_*). Webhooks are refused while the app secret is empty."""

    model_config = _reading("MESSENGER_")

    graph_url: str = "https://graph.facebook.com"
    graph_version: str = "v25.0"
    #: Signs every webhook POST (X-Hub-Signature-256); global to the app, not per shop.
    app_secret: SecretStr = SecretStr("")
    #: Answers Meta's GET hub.challenge handshake when hub.verify_token equals it.
    verify_token: SecretStr = SecretStr("")
    #: Largest webhook body accepted (413 above it).
    webhook_max_bytes: int = 1_000_000
    #: Send API calls per second per Page, per notifier instance (Meta allows 300/s for text).
    send_rate_per_second: float = 250.0
    #: How long a Page's sends wait after Meta's rate limit (codes 4, 613) or a restriction.
    rate_limit_pause_seconds: float = 30.0
    timeout_seconds: float = 10.0


class StorefrontSettings(BaseSettings):
    """The storefront chat's limits per client address (STOREFRONT_*), per gateway instance."""

    model_config = _reading("STOREFRONT_")

    #: New chats one client address may start in a minute (a sanity limit, not a quota).
    chat_starts_per_minute: int = Field(30, ge=1)


class ShopifySettings(BaseSettings):
    """The Shopify app (SHOPIFY_*)."""

    model_config = _reading("SHOPIFY_")

    #: Signs Shopify's webhooks (`X-Shopify-Hmac-Sha256`); empty refuses every one.
    api_secret: SecretStr = SecretStr("")


class HttpSettings(BaseSettings):
    """The HTTP side door of every service (and the gateway's API) (HTTP_*)."""

    model_config = _reading("HTTP_")

    host: str = "127.0.0.1"
    port: int = 0  # 0: the service's own default port (see SERVICE_PORTS)


class SignInSettings(BaseSettings):
    """Limits on staff sign-in attempts (SIGN_IN_*): failed passwords and links asked for, per
    email address and per client address, within a window. The client is the connection's
    address (behind a proxy, the one it forwards: see uvicorn's `--forwarded-allow-ips`)."""

    model_config = _reading("SIGN_IN_")

    window_seconds: float = 900.0
    attempts_per_email: int = 5
    attempts_per_client: int = 30


class Settings(BaseSettings):
    """All settings; each group reads its own variables when it is built (default factory)."""

    model_config = _reading("")

    #: `development` (what `inbox dev` and the tests set) allows the development signing secret.
    inbox_environment: Literal["development", "production"] = "production"

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    messenger: MessengerSettings = Field(default_factory=MessengerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    sign_in: SignInSettings = Field(default_factory=SignInSettings)
    shopify: ShopifySettings = Field(default_factory=ShopifySettings)
    storefront: StorefrontSettings = Field(default_factory=StorefrontSettings)

    #: A consumed event larger than this goes to the DLQ unread (no contract needs more).
    max_event_bytes: int = 262_144

    # Links that bring a customer back into their conversation (sent by email and Messenger)
    public_base_url: str = "http://127.0.0.1:8080"
    #: Signs those links. Set it in production.
    link_signing_secret: SecretStr = SecretStr(DEVELOPMENT_SIGNING_SECRET)

    #: A send still in flight after this long belongs to a notifier that died mid-send: it is
    #: reported failed ("outcome unknown"), never sent again. Longer than any send can take.
    delivery_stale_send_seconds: float = 120.0
    #: Development and tests only: the notifier serves PUT /dev/clock to shift the clock the
    #: Messenger send planner reads (Meta's stand-in is shifted the same way). Never in production.
    dev_clock_control: bool = False

    # Presence: online while a storefront signal arrived within this many seconds
    presence_timeout_seconds: float = 60.0

    # Classifier: a topic is attached only at this probability or above
    classifier_threshold: float = Field(default=0.90, ge=0.5, le=1.0)

    # Consume loop
    handler_max_attempts: int = 3
    shutdown_grace_seconds: float = 10.0

    log_level: str = "INFO"
    log_format: str = Field(default="text", description="text or json")


#: Default side-door port of each service when HTTP_PORT is not set.
SERVICE_PORTS: dict[str, int] = {
    "gateway": 8080,
    "router": 9101,
    "classifier": 9102,
    "presence": 9103,
    "notifier": 9104,
}


def variable_names(model: type[BaseSettings] = Settings) -> set[str]:
    """Every environment variable the settings read, the groups' included."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            names |= variable_names(group)
        elif isinstance(field.validation_alias, str):
            names.add(field.validation_alias.upper())
        else:
            names.add(f"{model.model_config.get('env_prefix', '')}{name}".upper())
    return names


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def http_port_for(service: str, settings: Settings) -> int:
    return settings.http.port or SERVICE_PORTS[service]


def start_up_problems(settings: Settings) -> list[str]:
    """What in the configuration would make a service unsafe or stuck, one sentence each; a
    service refuses to start while there is any."""
    problems = []
    secret = settings.link_signing_secret.get_secret_value()
    if settings.inbox_environment != "development" and secret in ("", DEVELOPMENT_SIGNING_SECRET):
        problems.append(
            "LINK_SIGNING_SECRET is the development one (anyone could sign a customer's chat "
            "token): set a long random secret of your own, or INBOX_ENVIRONMENT=development")
    database, kafka = settings.database, settings.kafka
    if database.pool_max <= kafka.consumer_concurrency:
        problems.append(
            f"DATABASE_POOL_MAX ({database.pool_max}) must exceed "
            f"KAFKA_CONSUMER_CONCURRENCY ({kafka.consumer_concurrency}): each group of "
            "partitions applied at once holds a connection for its transaction, and the "
            "readiness probe and the outbox relay need one more")
    if database.pool_min > database.pool_max:
        problems.append(f"DATABASE_POOL_MIN ({database.pool_min}) is above "
                        f"DATABASE_POOL_MAX ({database.pool_max})")
    if kafka.heartbeat_interval_ms * 3 > kafka.session_timeout_ms:
        problems.append(
            f"KAFKA_HEARTBEAT_INTERVAL_MS ({kafka.heartbeat_interval_ms}) must be at "
            f"most a third of KAFKA_SESSION_TIMEOUT_MS ({kafka.session_timeout_ms}), "
            "or a consumer that is alive can be taken for dead")
    return problems
