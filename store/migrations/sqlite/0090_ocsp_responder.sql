-- Delegated OCSP responders of closed batches (decision record 013): before
-- a batch Device CA's key is destroyed, the batch certifies one OCSP
-- responder (RFC 6960 section 4.2.2.2: id-kp-OCSPSigning, id-pkix-ocsp-nocheck)
-- whose key signs the OCSP responses about the batch's certificates from
-- then on, so that they can still be revoked and their responses refreshed.
-- One row per batch: the kms URI of the responder's key (the key itself is in
-- the key custody, never here) and its certificate, which is also published
-- in certificates with kind 'ocsp-responder'. Batches closed before this
-- migration have no row: their certificates' status is their final CRL.
-- Keep in step with ../postgres/0090_ocsp_responder.sql.

CREATE TABLE ocsp_responders (
	ca         TEXT    NOT NULL PRIMARY KEY REFERENCES cas (name),
	key_uri    TEXT    NOT NULL CHECK (key_uri <> ''),
	serial     BLOB    NOT NULL,
	cert_der   BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	FOREIGN KEY (ca, serial) REFERENCES certificates (ca, serial)
);
