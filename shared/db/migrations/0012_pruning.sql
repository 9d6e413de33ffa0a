-- Bookkeeping tables are pruned by age (shared/db/pruning.py): each rule finds its oldest rows
-- through an index, a few hundred at a time, instead of reading the whole table.
CREATE INDEX processed_events_age ON processed_events (processed_at);
CREATE INDEX deliveries_finished_age ON deliveries (updated_at) WHERE status IN ('sent', 'failed');
CREATE INDEX visitors_offline_age ON visitors (last_seen_at) WHERE NOT online;
CREATE INDEX visitor_presence_offline_age ON visitor_presence (at) WHERE NOT online;
