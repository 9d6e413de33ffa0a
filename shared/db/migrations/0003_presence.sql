-- Presence: whether each visitor is online now, kept by the presence service; and the router's
-- copy on the conversation (from presence.changes) that decides where a reply goes.
ALTER TABLE visitors ADD COLUMN online boolean NOT NULL DEFAULT false;
ALTER TABLE visitors ADD COLUMN changed_at timestamptz;
CREATE INDEX visitors_online_since ON visitors (last_seen_at) WHERE online;

ALTER TABLE conversations ADD COLUMN customer_online boolean;
ALTER TABLE conversations ADD COLUMN customer_presence_at timestamptz;
