-- Device alerts reaching their users (issue 12, decision 018). Keep in step
-- with ../sqlite/0140_router_device_alerts.sql.

-- The alert intake's cursor per device transport (alert source): the index
-- of the next alert to read from it. It moves in the transaction that
-- records what was read, so an alert is recorded before the cursor passes
-- it (at least once), and one read twice is dropped by its (device, counter).
CREATE TABLE router_alert_cursors (
	source     TEXT    PRIMARY KEY,
	next       BIGINT  NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

-- The verified device alerts: one per (device, counter), the device's own
-- counter, which must rise from one alert to the next (decision 018).
-- recipient is the header recipient; delivered_to the user it went to (''
-- when the router consumed it: an alert to the ACB or the TCoS party), with
-- rerouted set when that is not the recipient (the device changed
-- supplier) and delivery_seq its delivery in that user's sequence.
CREATE TABLE router_device_alerts (
	device       TEXT    NOT NULL,
	counter      BIGINT  NOT NULL,
	code         INTEGER NOT NULL,
	recipient    TEXT    NOT NULL,
	delivered_to TEXT    NOT NULL DEFAULT '',
	rerouted     BOOLEAN NOT NULL DEFAULT FALSE,
	delivery_seq BIGINT  NOT NULL DEFAULT 0,
	source       TEXT    NOT NULL,
	message      BYTEA   NOT NULL,
	raised_at    TIMESTAMPTZ NOT NULL,
	received_at  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (device, counter)
);
