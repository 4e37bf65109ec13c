-- Device re-key (issue 12, decision 017). Keep in step with
-- ../sqlite/0130_device_rekey.sql.

-- A batch Device CA's purpose: '' (new devices, from manufacturers and
-- provisioning imports) or 'rekey' (CS02c re-key certificates for devices
-- already in the inventory, from their supplier). Each issues only its own.
ALTER TABLE cas ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
