-- Per-target barriers in the outbox (issue 12, decision 014 step 2). Keep in
-- step with ../postgres/0150_router_outbox_barrier.sql.

-- A barrier command (the change of supplier's CS02b, its CS02a reads) is
-- claimed only when no command for its target admitted before it is still in
-- the outbox, and no command for its target admitted after it is claimed
-- while it is. "Before" is admission order: the rowid, which SQLite's one
-- writer assigns in commit order (PostgreSQL numbers rows with an identity
-- column instead).
ALTER TABLE router_commands ADD COLUMN barrier INTEGER NOT NULL DEFAULT 0;

-- The barriers waiting in the outbox, per target: what every claim checks,
-- an index that is empty but for the few commands waiting to change a
-- meter's supplier, so ordinary claims pay one probe of it.
CREATE INDEX router_commands_barriers ON router_commands (target) WHERE state = 'accepted' AND barrier = 1;
