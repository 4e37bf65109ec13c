-- Two-person control (issue 13, decision 023). Keep in step with
-- ../sqlite/0180_proposals.sql.

-- One row per proposal of an action needing a second operator: kind
-- (bulk-release, bulk-delete, threshold-loosen, threshold-delete,
-- batch-open), the exact action (payload, JSON), who proposed it and why,
-- when it lapses, and its decision. Approval is one conditional UPDATE
-- (state pending and expires_at after now, to approved), so one approval
-- wins; the execution then moves it to executed or failed, with result.
CREATE TABLE proposals (
	id              TEXT    PRIMARY KEY,
	kind            TEXT    NOT NULL,
	payload         TEXT    NOT NULL,
	summary         TEXT    NOT NULL,
	proposer        TEXT    NOT NULL,
	reason          TEXT    NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL,
	expires_at      TIMESTAMPTZ NOT NULL,
	state           TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'executed', 'failed', 'rejected', 'expired')),
	decided_by      TEXT    NOT NULL DEFAULT '',
	decided_at      TIMESTAMPTZ,
	decision_reason TEXT    NOT NULL DEFAULT '',
	result          TEXT    NOT NULL DEFAULT '',
	finished_at     TIMESTAMPTZ,
	CHECK (state = 'pending' OR state = 'expired' OR decided_by <> '')
);
CREATE INDEX proposals_created ON proposals (created_at, id);
CREATE INDEX proposals_pending ON proposals (expires_at) WHERE state = 'pending';
