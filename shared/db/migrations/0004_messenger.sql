-- Messenger: the shop's channel, the people Meta told us about, per-order consents and their
-- audit trail.

-- One Messenger channel per shop (shop configuration, written by the gateway's API; the notifier
-- marks it `needs_reconnection` when Meta refuses its token). A removed channel keeps its Page
-- and token: opted-in customers keep receiving order updates, and re-adding the same Page
-- resumes the same conversations (their thread refs carry the Page id).
CREATE TABLE messenger_channels (
    shop_id              text        PRIMARY KEY,
    page_id              text        NOT NULL,
    page_access_token    text        NOT NULL,
    human_agent_approved boolean     NOT NULL DEFAULT false,
    state                text        NOT NULL
                                     CHECK (state IN ('connected', 'removed', 'needs_reconnection')),
    state_reason         text,
    connected_at         timestamptz NOT NULL,
    removed_at           timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- A Page serves one shop at a time.
CREATE UNIQUE INDEX messenger_channels_live_page ON messenger_channels (page_id)
    WHERE state <> 'removed';
CREATE INDEX messenger_channels_page ON messenger_channels (page_id);

-- The messaging window: the last action of each person that opens it (a message is on the
-- conversation; postbacks, quick replies and opt-ins are here), and whether they blocked the
-- Page (Meta's 551). contact: 'psid:<psid>' or 'user_ref:<user_ref>'.
CREATE TABLE messenger_contacts (
    page_id        text        NOT NULL,
    contact        text        NOT NULL,
    last_action_at timestamptz,
    blocked_at     timestamptz,
    blocked_reason text,
    PRIMARY KEY (page_id, contact)
);

-- Which PSID answered after a checkbox opt-in (Meta's prior_message).
CREATE TABLE messenger_identities (
    page_id   text        NOT NULL,
    user_ref  text        NOT NULL,
    psid      text        NOT NULL,
    linked_at timestamptz NOT NULL,
    PRIMARY KEY (page_id, user_ref)
);
CREATE INDEX messenger_identities_psid ON messenger_identities (page_id, psid);

-- Consent to order updates on Messenger: one per order, from the checkout opt-in.
CREATE TABLE messenger_order_consents (
    consent_id      uuid        PRIMARY KEY,
    shop_id         text        NOT NULL,
    order_id        text        NOT NULL,
    page_id         text        NOT NULL,
    user_ref        text        NOT NULL,
    conversation_id uuid,
    state           text        NOT NULL
                                CHECK (state IN ('active', 'off_by_customer', 'off_by_merchant',
                                                 'refused')),
    state_reason    text,
    opted_in_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (shop_id, order_id)
);
CREATE INDEX messenger_order_consents_person ON messenger_order_consents (page_id, user_ref);

-- Every consent change, never updated: opted in, refused, turned off (by whom), kept.
CREATE TABLE messenger_consent_changes (
    change_id       uuid        PRIMARY KEY,
    consent_id      uuid        NOT NULL REFERENCES messenger_order_consents,
    shop_id         text        NOT NULL,
    order_id        text        NOT NULL,
    change          text        NOT NULL
                                CHECK (change IN ('opted_in', 'refused', 'turned_off', 'kept')),
    actor           text        NOT NULL CHECK (actor IN ('customer', 'staff', 'system')),
    staff_id        text,
    reason          text,
    source_event_id text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX messenger_consent_changes_order ON messenger_consent_changes (shop_id, order_id, at);
