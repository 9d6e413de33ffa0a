-- The router's copy of each visitor's presence (from presence.changes), so a conversation that
-- starts while its visitor is already online knows it from the first message.
CREATE TABLE visitor_presence (
    shop_id    text        NOT NULL,
    visitor_id text        NOT NULL,
    online     boolean     NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (shop_id, visitor_id)
);
