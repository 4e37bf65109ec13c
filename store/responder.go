package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// OCSPResponder is the delegated OCSP responder of a batch Device CA
// (RFC 6960 section 4.2.2.2; decision record 013): certified by the batch
// before its key is destroyed, it signs the OCSP responses about the batch's
// certificates once the batch is closed. Its certificate is also stored as
// a Certificate of kind KindOCSPResponder issued by the batch.
type OCSPResponder struct {
	CA        string    // the batch (issuing CA) name
	KeyURI    string    // kms URI of the responder's private key; the key stays in the key custody
	Serial    []byte    // the responder certificate's serial, as stored with it
	CertDER   []byte    // the responder certificate
	CreatedAt time.Time // stored UTC, microsecond precision
}

func (r *OCSPResponder) validate() error {
	switch {
	case !caName.MatchString(r.CA):
		return fmt.Errorf("%w: OCSP responder: CA name %q is malformed", ErrInvalid, r.CA)
	case r.KeyURI == "":
		return fmt.Errorf("%w: OCSP responder of %s: no key URI", ErrInvalid, r.CA)
	case len(r.Serial) == 0 || len(r.Serial) > 20:
		return fmt.Errorf("%w: OCSP responder of %s: serial must be 1-20 bytes, got %d", ErrInvalid, r.CA, len(r.Serial))
	case len(r.CertDER) == 0:
		return fmt.Errorf("%w: OCSP responder of %s: no certificate", ErrInvalid, r.CA)
	case r.CreatedAt.IsZero():
		return fmt.Errorf("%w: OCSP responder of %s: no creation time", ErrInvalid, r.CA)
	}
	return nil
}

// PutOCSPResponder records the OCSP responder of a CA. Its certificate must
// be stored first (PutCertificates) under the same CA and serial, or the
// error wraps ErrNotFound; a CA has at most one responder, and a second
// gives ErrExists.
func (s *SMKIStore) PutOCSPResponder(ctx context.Context, r OCSPResponder) error {
	if err := r.validate(); err != nil {
		return err
	}
	_, err := s.db.write().exec(ctx, `INSERT INTO ocsp_responders (ca, key_uri, serial, cert_der, created_at)
		VALUES ($1, $2, $3, $4, $5)`, r.CA, r.KeyURI, r.Serial, r.CertDER, r.CreatedAt)
	switch err = classify(err); {
	case errors.Is(err, errUnique):
		return fmt.Errorf("recording OCSP responder of %s: %w", r.CA, ErrExists)
	case errors.Is(err, errForeignKey):
		return fmt.Errorf("recording OCSP responder of %s: its CA or certificate %X is not stored: %w", r.CA, r.Serial, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: recording OCSP responder of %s: %w", r.CA, err)
	}
	return nil
}

const responderColumns = `ca, key_uri, serial, cert_der, created_at`

func scanResponder(row interface{ Scan(...any) error }) (OCSPResponder, error) {
	var r OCSPResponder
	var created timeCol
	err := row.Scan(&r.CA, &r.KeyURI, &r.Serial, &r.CertDER, &created)
	r.CreatedAt = created.t
	return r, err
}

// OCSPResponder returns the OCSP responder of the named CA, or an error
// wrapping ErrNotFound if it has none (an open batch, or one closed before
// responders were certified).
func (s *SMKIStore) OCSPResponder(ctx context.Context, ca string) (OCSPResponder, error) {
	r, err := scanResponder(s.db.read().queryRow(ctx, `SELECT `+responderColumns+` FROM ocsp_responders WHERE ca = $1`, ca))
	if errors.Is(err, errNoRows) {
		return OCSPResponder{}, fmt.Errorf("OCSP responder of %s: %w", ca, ErrNotFound)
	}
	if err != nil {
		return OCSPResponder{}, fmt.Errorf("store: reading OCSP responder of %s: %w", ca, err)
	}
	return r, nil
}

// OCSPResponders returns every recorded OCSP responder, by CA name.
func (s *SMKIStore) OCSPResponders(ctx context.Context) ([]OCSPResponder, error) {
	rs, err := s.db.read().query(ctx, `SELECT `+responderColumns+` FROM ocsp_responders ORDER BY ca`)
	if err != nil {
		return nil, fmt.Errorf("store: listing OCSP responders: %w", err)
	}
	defer rs.Close()
	var out []OCSPResponder
	for rs.Next() {
		r, err := scanResponder(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing OCSP responders: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing OCSP responders: %w", err)
	}
	return out, nil
}
