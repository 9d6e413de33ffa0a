"""Migrations apply once, in order, and refuse an edited history."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db.migrate import MigrationError, load_migrations, migrate


async def test_migrations_are_idempotent_and_guarded(prepared):
    conn = await asyncpg.connect(prepared.database.url)
    try:
        assert await migrate(conn) == []  # the session fixture applied them already
        versions = [r["version"] for r in await conn.fetch(
            "SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [m.version for m in load_migrations()]
        first = versions[0]
        await conn.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = $1", first
        )
        try:
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await migrate(conn)
        finally:
            await conn.execute(
                "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                first, load_migrations()[0].checksum,
            )
    finally:
        await conn.close()
