-- Privacy requests (Shopify's compliance webhooks, or staff through the merchant API): each is
-- recorded with its state and times, without the personal data it named.
CREATE TABLE privacy_requests (
    request_id            text        PRIMARY KEY,
    kind                  text        NOT NULL CHECK (kind IN ('customer_data_request',
                                                               'customer_redact', 'shop_redact')),
    source                text        NOT NULL CHECK (source IN ('shopify', 'merchant')),
    shop_id               text,
    shop_domain           text,
    data_request_id       text,
    requested_by_staff_id text,
    -- completed: done; no_shop / no_customer: nothing known to act on (answered all the same).
    state                 text        NOT NULL CHECK (state IN ('completed', 'no_shop',
                                                                'no_customer')),
    conversations         integer     NOT NULL DEFAULT 0,
    received_at           timestamptz NOT NULL,
    completed_at          timestamptz NOT NULL
);
CREATE INDEX privacy_requests_shop ON privacy_requests (shop_id, received_at DESC);

-- A data request's export, for staff to download. It holds the customer's data, so their
-- erasure (or the shop's) removes it too.
CREATE TABLE privacy_exports (
    request_id       text        PRIMARY KEY REFERENCES privacy_requests ON DELETE CASCADE,
    shop_id          text        NOT NULL,
    data_request_id  text,
    conversation_ids uuid[]      NOT NULL,
    customer_keys    text[]      NOT NULL,
    export           jsonb       NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX privacy_exports_data_request ON privacy_exports (shop_id, data_request_id);

-- An erased customer's conversation keeps its shell (ids, channel, times, topics, counts).
ALTER TABLE conversations ADD COLUMN redacted_at timestamptz;

-- A shop's erasure writes tombstones (records without a value) for its keys on the compacted
-- shop-data topics.
ALTER TABLE outbox ALTER COLUMN value DROP NOT NULL;
