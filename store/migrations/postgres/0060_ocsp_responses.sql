-- OCSP responses signed ahead of time (decision record 010): the CA signs one
-- per certificate at issuance, at revocation and before the last expires;
-- the repository serves them and loads no key. One row per certificate,
-- replaced on each signing. status is the OCSP CertStatus (0 good, 1 revoked,
-- 2 unknown), kept so that a stale "good" never replaces a "revoked". The
-- index on next_update is the refresher's look-up of responses about to
-- expire.
-- Keep in step with ../sqlite/0060_ocsp_responses.sql.

CREATE TABLE ocsp_responses (
	ca          TEXT        NOT NULL,
	serial      BYTEA       NOT NULL,
	status      INTEGER     NOT NULL,
	this_update TIMESTAMPTZ NOT NULL,
	next_update TIMESTAMPTZ NOT NULL,
	der         BYTEA       NOT NULL,
	PRIMARY KEY (ca, serial),
	FOREIGN KEY (ca, serial) REFERENCES certificates (ca, serial)
);
CREATE INDEX ocsp_responses_next_update ON ocsp_responses (next_update);
