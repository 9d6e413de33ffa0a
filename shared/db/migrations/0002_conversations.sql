-- Conversations in full: topics, carts, orders and the customer profile, notes, saved replies.

-- Topic tags shown on a conversation, newest first (at most two are shown).
ALTER TABLE conversations ADD COLUMN topics text[] NOT NULL DEFAULT '{}';
CREATE INDEX conversations_assignee ON conversations (shop_id, assignee_staff_id);
CREATE INDEX conversations_visitor ON conversations (shop_id, visitor_id);

-- The latest cart of each storefront visitor (a conversation shows it through its visitor_id).
CREATE TABLE carts (
    shop_id    text          NOT NULL,
    visitor_id text          NOT NULL,
    currency   text          NOT NULL,
    subtotal   numeric(14,2) NOT NULL,
    items      jsonb         NOT NULL,
    updated_at timestamptz   NOT NULL,
    PRIMARY KEY (shop_id, visitor_id)
);

-- Orders, from orders.events (newest `at` wins).
CREATE TABLE orders (
    shop_id          text          NOT NULL,
    order_id         text          NOT NULL,
    order_number     text          NOT NULL,
    status           text          NOT NULL,
    customer_id      text,
    customer_email   text,
    customer_name    text,
    total_price      numeric(14,2),
    currency         text,
    messenger_optin  jsonb,
    tracking         jsonb,
    updates_enabled  boolean       NOT NULL DEFAULT true,
    placed_at        timestamptz   NOT NULL,
    updated_at       timestamptz   NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
CREATE INDEX orders_by_customer_id ON orders (shop_id, customer_id);
CREATE INDEX orders_by_customer_email ON orders (shop_id, lower(customer_email));

-- Staff notes on a customer: visible to every staff member of the shop, never to the customer.
-- customer_key: the platform's customer id when known, else the lower-cased email, else the
-- conversation id (a customer we know nothing about).
CREATE TABLE customer_notes (
    note_id      uuid        PRIMARY KEY,
    shop_id      text        NOT NULL,
    customer_key text        NOT NULL,
    staff_id     text        NOT NULL,
    text         text        NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX customer_notes_by_customer ON customer_notes (shop_id, customer_key, created_at);

-- Saved replies: per-shop snippets with a shortcut and placeholders.
CREATE TABLE saved_replies (
    reply_id   uuid        PRIMARY KEY,
    shop_id    text        NOT NULL,
    shortcut   text        NOT NULL,
    body       text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX saved_replies_shortcut ON saved_replies (shop_id, lower(shortcut));
