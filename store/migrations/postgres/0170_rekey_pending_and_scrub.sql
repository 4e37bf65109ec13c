-- Issue 12's key journeys, their loose ends (decisions 015 and 017). Keep in
-- step with ../sqlite/0170_rekey_pending_and_scrub.sql.

-- The key-agreement key a device was sent in a CS02d whose outcome the
-- router has not yet seen settled (an uncompressed P-256 point), NULL when
-- no key-agreement re-key is unsettled. The forwarder MACs a CS02e
-- read-back with it when the meter refuses the registry's key, and the
-- meter's signed answer settles the registry (decision 017).
ALTER TABLE router_devices ADD COLUMN ka_pending BYTEA;

-- 1 once a command's stored message has been cut to its header at its
-- outcome: the router's own SR 9.1 command carrying a consumer's CIN is
-- kept whole only while it waits in the outbox (decision 015).
ALTER TABLE router_commands ADD COLUMN message_scrubbed INTEGER NOT NULL DEFAULT 0;
