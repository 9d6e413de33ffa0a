"""The asyncpg pool, with JSON codecs and errors sorted into transient and permanent."""

from __future__ import annotations

import json
import logging

import asyncpg

from shared.config import Settings
from shared.metrics import DB_POOL_SIZE

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset query when a connection goes back to the pool: the services keep no session
    state (advisory locks are transaction-scoped or released explicitly, no LISTEN, no SET), and
    asyncpg still rolls back a transaction left open. Saves a round trip per use."""


async def create_pool(settings: Settings, **overrides: object) -> asyncpg.Pool:
    options: dict[str, object] = {
        "min_size": settings.database.pool_min,
        "max_size": settings.database.pool_max,
        "init": _init_connection,
        "reset": _keep_session,
        "command_timeout": 30,
    }
    options.update(overrides)
    pool = await asyncpg.create_pool(settings.database.url, **options)
    assert pool is not None
    return pool


def record_pool_usage(pool: asyncpg.Pool) -> None:
    size, idle = pool.get_size(), pool.get_idle_size()
    DB_POOL_SIZE.labels("in_use").set(size - idle)
    DB_POOL_SIZE.labels("idle").set(idle)
    DB_POOL_SIZE.labels("max").set(pool.get_max_size())


#: Errors after which the same work may succeed later: the database is unreachable, restarting,
#: overloaded, or the transaction lost a race.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,
)
