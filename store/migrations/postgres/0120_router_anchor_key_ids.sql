-- Key rotation through the change desk (issue 12, decisions 014 and 016).
-- Keep in step with ../sqlite/0120_router_anchor_key_ids.sql.

-- The subject key identifier (hex) of the digital-signing anchor the device
-- holds for its supplier and for its network operator: the key the router
-- checks that party's signatures with. '' when unknown (the party's newest
-- certificate is used). Set when a change or rotation settles, and when the
-- device is registered with it.
ALTER TABLE router_devices ADD COLUMN supplier_ds_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE router_devices ADD COLUMN network_operator_ds_key_id TEXT NOT NULL DEFAULT '';

-- A change's target digital-signing key identifier (hex), the role whose
-- cells it replaces (supplier or networkOperator) and, for a future-dated
-- CS02b, when the meter is to execute it.
ALTER TABLE router_ownership_changes ADD COLUMN ds_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE router_ownership_changes ADD COLUMN anchor_role TEXT NOT NULL DEFAULT 'supplier';
ALTER TABLE router_ownership_changes ADD COLUMN execute_at TIMESTAMPTZ;
