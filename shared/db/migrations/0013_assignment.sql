-- Automatic assignment: per shop a mode and a capacity (most open conversations per staff
-- member); per staff member whether they take conversations now, and when they were last
-- given one automatically (round robin's order). The router decides assignments holding the
-- shop's settings row, so two router instances never exceed a capacity.
CREATE TABLE assignment_settings (
    shop_id    text        PRIMARY KEY,
    mode       text        NOT NULL DEFAULT 'off' CHECK (mode IN ('off', 'round_robin', 'balanced')),
    capacity   integer     NOT NULL DEFAULT 10 CHECK (capacity BETWEEN 1 AND 1000),
    updated_at timestamptz NOT NULL
);

CREATE TABLE staff_availability (
    shop_id          text        NOT NULL,
    staff_id         text        NOT NULL,
    available        boolean     NOT NULL DEFAULT false,
    last_assigned_at timestamptz,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (shop_id, staff_id)
);

-- The waiting conversations of a shop, in arrival order.
CREATE INDEX conversations_waiting ON conversations (shop_id, created_at)
    WHERE status = 'open' AND assignee_staff_id IS NULL;
