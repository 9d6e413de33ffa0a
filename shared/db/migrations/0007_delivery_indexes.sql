-- The delivery worker looks for claims and sends left behind by a notifier that died (a partial
-- index: only the few rows in those states), and an email cites the earlier emails of its
-- conversation.
CREATE INDEX deliveries_in_hand ON deliveries (updated_at) WHERE status IN ('claimed', 'sending');
CREATE INDEX deliveries_conversation ON deliveries (conversation_id, channel) WHERE status = 'sent';
