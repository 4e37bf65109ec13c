-- The outbox becomes the commands still in state 'accepted' (decision record
-- 007): a command's attempts, next attempt, lease and last error move onto
-- its row in router_commands, and router_outbox goes. Admission then inserts
-- one row per command instead of two, and "forwarded" updates that row
-- instead of deleting the other: per command four fewer B-tree changes and
-- two fewer statements on the single writer. Two partial indexes hold only
-- the commands in the outbox: by due time (the forwarder's claim) and by
-- pair (a pair's head of queue, and the admission's "pair busy" check).
-- Keep in step with ../postgres/0050_router_outbox_in_commands.sql.

ALTER TABLE router_commands ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE router_commands ADD COLUMN next_attempt INTEGER;
ALTER TABLE router_commands ADD COLUMN lease_until INTEGER;
ALTER TABLE router_commands ADD COLUMN last_error TEXT NOT NULL DEFAULT '';

UPDATE router_commands SET attempts = o.attempts, next_attempt = o.next_attempt, lease_until = o.lease_until,
	last_error = o.last_error
	FROM router_outbox o WHERE o.command_id = router_commands.id;
-- An accepted command always had its outbox row; should one not, it is due now.
UPDATE router_commands SET next_attempt = accepted_at WHERE state = 'accepted' AND next_attempt IS NULL;

DROP TABLE router_outbox;

CREATE INDEX router_commands_due ON router_commands (next_attempt) WHERE state = 'accepted';
CREATE INDEX router_commands_pending ON router_commands (target, originator, counter) WHERE state = 'accepted';
