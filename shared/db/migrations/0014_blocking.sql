-- Blocked customers: each identity of a blocked conversation's customer (its thread on the
-- channel, the store visitor, the email address), per shop, with the reason. A message from a
-- blocked identity is refused (to the DLQ with the reason), never shown or notified.
CREATE TABLE blocked_identities (
    shop_id         text        NOT NULL,
    identity        text        NOT NULL,
    conversation_id uuid        NOT NULL,
    reason          text        NOT NULL,
    staff_id        text        NOT NULL,
    blocked_at      timestamptz NOT NULL,
    PRIMARY KEY (shop_id, identity)
);
CREATE INDEX blocked_identities_conversation ON blocked_identities (conversation_id);

ALTER TABLE conversations ADD COLUMN blocked_at timestamptz;
ALTER TABLE conversations ADD COLUMN blocked_reason text;
