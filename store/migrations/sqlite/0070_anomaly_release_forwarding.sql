-- The forwarding of a released command becomes durable (decision record
-- 011): a release records the decision and leaves the record "pending"; the
-- router's release sweeper claims pending records that are due (a lease in
-- forward_next, one attempt counted in forward_attempts), carries each
-- through the rest of the pipeline and records the outcome: forwarded (with
-- the router's command ID), a retry due at forward_next, or failed with why.
-- A keyless operator process can then release without the access control
-- broker's key. Releases made before this migration were forwarded, or
-- refused, at the time; their outcome was not recorded, so they are marked
-- 'unknown' and never swept. A partial index holds only pending records.
-- Keep in step with ../postgres/0070_anomaly_release_forwarding.sql.

ALTER TABLE anomaly_quarantine ADD COLUMN forward_state TEXT NOT NULL DEFAULT ''
	CHECK (forward_state IN ('', 'pending', 'forwarded', 'failed', 'unknown'));
ALTER TABLE anomaly_quarantine ADD COLUMN forward_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE anomaly_quarantine ADD COLUMN forward_next INTEGER;
ALTER TABLE anomaly_quarantine ADD COLUMN forwarded_at INTEGER;
ALTER TABLE anomaly_quarantine ADD COLUMN forward_error TEXT NOT NULL DEFAULT '';
ALTER TABLE anomaly_quarantine ADD COLUMN forwarded_command TEXT NOT NULL DEFAULT '';

UPDATE anomaly_quarantine SET forward_state = 'unknown' WHERE state = 'released';

CREATE INDEX anomaly_quarantine_forward_due ON anomaly_quarantine (forward_next, ref) WHERE forward_state = 'pending';
