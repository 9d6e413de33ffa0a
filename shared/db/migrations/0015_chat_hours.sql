-- When nobody is there: a shop's chat hours and away message, and its instant answers.
-- A shop without a chat_hours row is always available; without an instant_answers row for a
-- topic it answers nothing automatically for that topic.
CREATE TABLE chat_hours (
    shop_id      text        PRIMARY KEY,
    mode         text        NOT NULL DEFAULT 'always' CHECK (mode IN ('always', 'hours')),
    -- [{"day": "mon", "from": "09:00", "to": "17:30"}, ...], in the shop's time zone; checked
    -- by the gateway before it is saved (shared/hours.py).
    hours        jsonb       NOT NULL DEFAULT '[]',
    away_message text        NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE instant_answers (
    shop_id    text        NOT NULL,
    topic      text        NOT NULL,
    enabled    boolean     NOT NULL DEFAULT false,
    text       text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, topic)
);
