-- Plumbing: the idempotent-consumer table and the transactional outbox.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    relay      text        NOT NULL,
    topic      text        NOT NULL,
    key        text,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_relay_order ON outbox (relay, id);

-- Shop data, kept from the shop.* topics (newest `at` wins). No foreign keys to shops: the
-- topics are independent, so a staff member may arrive before their shop.
CREATE TABLE shops (
    shop_id    text        PRIMARY KEY,
    name       text        NOT NULL,
    domain     text        NOT NULL,
    currency   text        NOT NULL,
    timezone   text        NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE staff (
    shop_id      text        NOT NULL,
    staff_id     text        NOT NULL,
    name         text        NOT NULL,
    email        text        NOT NULL,
    permissions  text[]      NOT NULL DEFAULT '{}',
    token_sha256 text        UNIQUE,
    active       boolean     NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (shop_id, staff_id)
);

CREATE TABLE products (
    shop_id      text          NOT NULL,
    product_id   text          NOT NULL,
    title        text          NOT NULL,
    price        numeric(14,2) NOT NULL,
    currency     text          NOT NULL,
    url          text,
    image_url    text,
    online_store boolean       NOT NULL,
    updated_at   timestamptz   NOT NULL,
    PRIMARY KEY (shop_id, product_id)
);

CREATE TABLE discount_codes (
    shop_id    text        NOT NULL,
    code       text        NOT NULL,
    status     text        NOT NULL,
    starts_at  timestamptz,
    ends_at    timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, code)
);
-- Shopify discount codes are case-insensitive.
CREATE UNIQUE INDEX discount_codes_folded ON discount_codes (shop_id, upper(code));

-- Conversations: one per (shop, channel, thread).
CREATE TABLE conversations (
    conversation_id          uuid        PRIMARY KEY,
    shop_id                  text        NOT NULL REFERENCES shops,
    channel                  text        NOT NULL,
    thread_ref               text        NOT NULL,
    status                   text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    unread                   boolean     NOT NULL DEFAULT true,
    subject                  text,
    assignee_staff_id        text,
    customer_name            text,
    customer_email           text,
    customer_id              text,
    customer_locale          text,
    customer_city            text,
    customer_country         text,
    customer_timezone        text,
    visitor_id               text,
    created_at               timestamptz NOT NULL,
    last_message_at          timestamptz,
    last_message_preview     text,
    last_customer_message_at timestamptz,
    timeline_seq             integer     NOT NULL DEFAULT 0,
    UNIQUE (shop_id, channel, thread_ref)
);
CREATE INDEX conversations_list ON conversations (shop_id, status, last_message_at DESC);

CREATE TABLE messages (
    message_id      uuid        PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations,
    shop_id         text        NOT NULL,
    direction       text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author          text        NOT NULL CHECK (author IN ('customer', 'staff', 'system')),
    staff_id        text,
    text            text,
    content         jsonb       NOT NULL DEFAULT '{}',
    channel         text        NOT NULL,
    source_id       text        NOT NULL,
    sent_at         timestamptz NOT NULL,
    delivery_status text CHECK (delivery_status IN ('pending', 'held', 'sent', 'failed')),
    delivery_reason text,
    delivered_at    timestamptz
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, sent_at);

CREATE TABLE timeline_items (
    item_id         uuid        PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations,
    seq             integer     NOT NULL,
    kind            text        NOT NULL,
    author          text        NOT NULL,
    staff_id        text,
    message_id      uuid,
    text            text,
    data            jsonb       NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL,
    UNIQUE (conversation_id, seq)
);

-- Notifier: one delivery per outbound message, every attempt recorded.
CREATE TABLE deliveries (
    message_id          text        PRIMARY KEY,
    shop_id             text        NOT NULL,
    conversation_id     text        NOT NULL,
    channel             text        NOT NULL,
    payload             jsonb       NOT NULL,
    status              text        NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts            integer     NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_error          text,
    provider_message_id text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    message_id  text        NOT NULL REFERENCES deliveries,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    result      text,
    error_code  text,
    reason      text,
    PRIMARY KEY (message_id, attempt)
);

-- What the storefront chat widget shows the customer (the online-store chat channel's mailbox).
CREATE TABLE storefront_chat_messages (
    message_id      text        PRIMARY KEY,
    shop_id         text        NOT NULL,
    thread_ref      text        NOT NULL,
    conversation_id text        NOT NULL,
    content         jsonb       NOT NULL,
    sent_at         timestamptz NOT NULL
);
CREATE INDEX storefront_chat_thread ON storefront_chat_messages (shop_id, thread_ref, sent_at);

-- Presence: last storefront signal per visitor.
CREATE TABLE visitors (
    shop_id      text        NOT NULL,
    visitor_id   text        NOT NULL,
    last_seen_at timestamptz NOT NULL,
    left_at      timestamptz,
    PRIMARY KEY (shop_id, visitor_id)
);
