-- Change of supplier (issue 12, decision 014). Keep in step with
-- ../sqlite/0110_router_change_of_supplier.sql.

-- The registration data: from effective_from on, incoming_supplier is the
-- supplier registered for the device, the only one whose change of supplier
-- (DUIS 6.23) the router accepts. Set by operators (metertrust router
-- supply-register), audited.
CREATE TABLE router_supply_registrations (
	device            TEXT    NOT NULL,
	incoming_supplier TEXT    NOT NULL,
	effective_from    TIMESTAMPTZ NOT NULL,
	created_by        TEXT    NOT NULL,
	created_at        TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (device, effective_from)
);

-- The per-device ownership changes of decision 014: at most one is open
-- (pending or unsettled) per device, which the partial unique index
-- enforces beside the conditional update of router_devices.change_state.
-- command_id and counter name the CS02b (its router command and originator
-- counter, the transaction id its answer is matched by); tcos_seq is its
-- authorising sequence number [3]. read_command_id names the latest CS02a
-- read of an unsettled change (only its answer settles it), reads counts
-- them and read_at is when the latest was recorded.
CREATE TABLE router_ownership_changes (
	id          TEXT    PRIMARY KEY,
	device      TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	requester   TEXT    NOT NULL,
	old_owner   TEXT    NOT NULL,
	new_owner   TEXT    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('pending', 'unsettled', 'settled')),
	outcome     TEXT    NOT NULL DEFAULT '' CHECK (outcome IN ('', 'applied', 'refused', 'not-applied', 'diverged')),
	command_id  TEXT    NOT NULL,
	counter     BIGINT  NOT NULL,
	tcos_seq    BIGINT  NOT NULL,
	read_command_id TEXT NOT NULL DEFAULT '',
	reads       INTEGER NOT NULL DEFAULT 0,
	read_at     TIMESTAMPTZ,
	detail      TEXT    NOT NULL DEFAULT '',
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX router_ownership_changes_open ON router_ownership_changes (device) WHERE state IN ('pending', 'unsettled');
CREATE UNIQUE INDEX router_ownership_changes_command ON router_ownership_changes (command_id);
CREATE INDEX router_ownership_changes_read ON router_ownership_changes (read_command_id);

-- The open change's state rides along the registry row the ownership stage
-- reads for every command: '' when settled, else pending or unsettled.
ALTER TABLE router_devices ADD COLUMN change_state TEXT NOT NULL DEFAULT '';
