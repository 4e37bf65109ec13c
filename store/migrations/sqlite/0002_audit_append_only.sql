-- The audit log refuses changes and deletions, and the chain head refuses
-- deletion, so that no code path (ours or a mistaken one) can rewrite
-- history through the store's connection. Someone with the file can still
-- drop these triggers: the hash chain and VerifyAudit catch that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
	SELECT RAISE(ABORT, 'audit_head cannot be deleted');
END;
