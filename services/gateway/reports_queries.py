"""SQL of the conversation reports: one pass over the period's conversations, grouped."""

from __future__ import annotations

from datetime import datetime

import asyncpg

#: What each grouping groups by (`day` in the shop's time zone; `topic` counts a conversation
#: under each of its topics, `none` without one).
GROUPS = {
    "total": "'total'",
    "day": "to_char(conv.created_at AT TIME ZONE conv.tz, 'YYYY-MM-DD')",
    "staff": "coalesce(conv.assignee_staff_id, '(unassigned)')",
    "channel": "conv.channel",
    "topic": "topic",
}

_REPORT = """
WITH conv AS (
    SELECT c.conversation_id, c.channel, c.assignee_staff_id, c.topics, c.created_at,
           c.customer_id, lower(c.customer_email) AS email, coalesce(s.timezone, 'UTC') AS tz,
           first_customer.at AS first_customer_at,
           (SELECT min(m.sent_at) FROM messages m
             WHERE m.conversation_id = c.conversation_id AND m.author = 'staff'
               AND m.sent_at >= first_customer.at) AS first_staff_at,
           (SELECT count(*) FROM timeline_items t
             WHERE t.conversation_id = c.conversation_id AND t.kind = 'merchant_reply'
               AND t.author = 'system' AND t.data->>'automated' = 'true') AS automated,
           EXISTS (SELECT 1 FROM orders o
                    WHERE o.shop_id = c.shop_id
                      AND (o.customer_id = c.customer_id
                           OR lower(o.customer_email) = lower(c.customer_email))
                      AND o.placed_at >= c.created_at
                      AND o.placed_at < c.created_at + interval '7 days') AS ordered
    FROM conversations c
    LEFT JOIN shops s ON s.shop_id = c.shop_id
    CROSS JOIN LATERAL (SELECT coalesce(min(m.sent_at), c.created_at) AS at FROM messages m
                        WHERE m.conversation_id = c.conversation_id
                          AND m.author = 'customer') first_customer
    WHERE c.shop_id = $1 AND c.created_at >= $2 AND c.created_at < $3
)
SELECT {group} AS "group",
       count(*) AS new_conversations,
       count(conv.first_staff_at) AS with_staff_reply,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
           conv.first_staff_at - conv.first_customer_at)) AS first_response_median_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM
           conv.first_staff_at - conv.first_customer_at)) AS first_response_p90_seconds,
       coalesce(sum(conv.automated), 0) AS automated_replies,
       count(*) FILTER (WHERE conv.ordered) AS followed_by_order
FROM conv {join}
GROUP BY 1 ORDER BY 1
"""


async def report(pool: asyncpg.Pool, shop_id: str, start: datetime, end: datetime,
                 group_by: str) -> list[asyncpg.Record]:
    join = ("CROSS JOIN LATERAL unnest(CASE WHEN cardinality(conv.topics) = 0 "
            "THEN ARRAY['none'] ELSE conv.topics END) AS topic") if group_by == "topic" else ""
    return await pool.fetch(_REPORT.format(group=GROUPS[group_by], join=join),
                            shop_id, start, end)
