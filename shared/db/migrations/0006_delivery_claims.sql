-- A remote delivery is first claimed (picked by one notifier), and marked `sending` only right
-- before its own call: a notifier dying with a batch claimed leaves those deliveries safe to
-- retry; only the one in flight has an unknown outcome.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'claimed', 'sending', 'sent', 'failed'));
ALTER TABLE deliveries ADD COLUMN claimed_by text;
