-- Commands per minute by stage and refusal reason, for the operator
-- dashboard's overview (issue 13, decision 020). Keep in step with
-- ../sqlite/0190_command_rates.sql.

-- A rollup of the router's audit entries (router.command.accepted,
-- .refused, .quarantined), written by the dashboard, not by the router:
-- the router's admission path is unchanged. minute is the start of the
-- minute (UTC); outcome is accepted, refused or quarantined; stage the
-- pipeline stage that decided; reason the refusal kind's code ('' when
-- accepted); n the count. Rows older than a day are deleted as new ones
-- are rolled up.
CREATE TABLE command_rates (
	minute  TIMESTAMPTZ NOT NULL,
	outcome TEXT    NOT NULL,
	stage   TEXT    NOT NULL,
	reason  TEXT    NOT NULL,
	n       BIGINT NOT NULL,
	PRIMARY KEY (minute, outcome, stage, reason)
);

-- The rollup's cursor: the last audit sequence number counted. Replicas
-- advance it by compare-and-set, so that no entry is counted twice.
CREATE TABLE command_rates_cursor (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL
);
INSERT INTO command_rates_cursor (id, seq) VALUES (1, 0);
