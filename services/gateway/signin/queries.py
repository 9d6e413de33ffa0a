"""SQL of staff sign-in: candidates by address, sessions, one-time links, attempts."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_STAFF = "s.shop_id, s.staff_id, s.name, s.email, s.permissions"


async def active_staff_by_email(pool: asyncpg.Pool, email_key: str) -> list[asyncpg.Record]:
    """Every active staff record with this address (one per shop they work for)."""
    return await pool.fetch(
        f"""SELECT {_STAFF}, s.password_hash, coalesce(sh.name, s.shop_id) AS shop_name
            FROM staff s LEFT JOIN shops sh USING (shop_id)
            WHERE lower(s.email) = $1 AND s.active ORDER BY s.shop_id""",
        email_key,
    )


async def failed_attempts(
    pool: asyncpg.Pool, email_key: str, client: str, since: datetime
) -> tuple[int, int]:
    row = await pool.fetchrow(
        """SELECT count(*) FILTER (WHERE email_key = $1) AS for_email,
                  count(*) FILTER (WHERE client = $2) AS from_client
           FROM sign_in_attempts
           WHERE (email_key = $1 OR client = $2) AND at >= $3 AND NOT succeeded""",
        email_key, client, since,
    )
    return row["for_email"], row["from_client"]


async def record_attempt(
    pool: asyncpg.Pool, email_key: str, client: str, at: datetime, succeeded: bool,
    forget_before: datetime,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO sign_in_attempts (email_key, client, at, succeeded) VALUES ($1,$2,$3,$4)",
            email_key, client, at, succeeded,
        )
        # Attempts older than the window count for nothing: kept no longer.
        await conn.execute("DELETE FROM sign_in_attempts WHERE at < $1", forget_before)


async def create_session(
    pool: asyncpg.Pool, session_sha256: str, shop_id: str, staff_id: str, now: datetime,
    expires_at: datetime,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # Ended sessions open nothing (the lookup checks the time): kept no longer.
        await conn.execute("DELETE FROM staff_sessions WHERE expires_at <= $1", now)
        await conn.execute(
            """INSERT INTO staff_sessions (session_sha256, shop_id, staff_id, created_at,
                   last_seen_at, expires_at)
               VALUES ($1, $2, $3, $4, $4, $5)""",
            session_sha256, shop_id, staff_id, now, expires_at,
        )


async def session_staff(pool: asyncpg.Pool, session_sha256: str, now: datetime
                        ) -> asyncpg.Record | None:
    """The active staff member of a live session, with the session's times."""
    return await pool.fetchrow(
        f"""SELECT {_STAFF}, ss.created_at, ss.last_seen_at, ss.expires_at
            FROM staff_sessions ss JOIN staff s USING (shop_id, staff_id)
            WHERE ss.session_sha256 = $1 AND ss.expires_at > $2 AND s.active""",
        session_sha256, now,
    )


async def touch_session(pool: asyncpg.Pool, session_sha256: str, now: datetime,
                        expires_at: datetime) -> None:
    await pool.execute(
        "UPDATE staff_sessions SET last_seen_at = $2, expires_at = $3 WHERE session_sha256 = $1",
        session_sha256, now, expires_at,
    )


async def end_session(pool: asyncpg.Pool, session_sha256: str) -> None:
    await pool.execute("DELETE FROM staff_sessions WHERE session_sha256 = $1", session_sha256)


async def create_links(
    pool: asyncpg.Pool, links: list[tuple[str, str, str]], now: datetime, expires_at: datetime
) -> None:
    """`links`: (link SHA-256, shop id, staff id) each."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM sign_in_links WHERE expires_at < $1", now)
        await conn.executemany(
            """INSERT INTO sign_in_links (link_sha256, shop_id, staff_id, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5)""",
            [(*link, now, expires_at) for link in links],
        )


async def use_link(pool: asyncpg.Pool, link_sha256: str, now: datetime) -> asyncpg.Record | None:
    """The staff member a live, unused link is for, marking it used (it opens only once)."""
    return await pool.fetchrow(
        """UPDATE sign_in_links l SET used_at = $2
           FROM staff s
           WHERE l.link_sha256 = $1 AND l.used_at IS NULL AND l.expires_at > $2
             AND s.shop_id = l.shop_id AND s.staff_id = l.staff_id AND s.active
           RETURNING l.shop_id, l.staff_id""",
        link_sha256, now,
    )
