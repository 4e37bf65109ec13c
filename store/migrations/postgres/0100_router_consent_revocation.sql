-- Consent records keep who revoked them and why (issue 12, spec section 11:
-- a consent is revoked by the other user holding it, through the router's
-- API, or by an operator acting on the consumer's request), beside the
-- audit entry of the revocation; and an other user lists its own consents.
-- Keep in step with ../sqlite/0100_router_consent_revocation.sql.
ALTER TABLE router_consents ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';
ALTER TABLE router_consents ADD COLUMN revoke_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX router_consents_user ON router_consents (user_eui, created_at);
