package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OCSP certificate statuses (RFC 6960 section 4.2.1, CertStatus), as stored
// in OCSPResponse.Status; they equal golang.org/x/crypto/ocsp's Good,
// Revoked and Unknown.
const (
	OCSPGood    = 0
	OCSPRevoked = 1
	OCSPUnknown = 2
)

// OCSPResponse is a signed OCSP response (RFC 6960) about one certificate,
// signed ahead of time by its issuing CA and served as stored by the
// repository (decision record 010). A certificate has at most one: each
// signing replaces the last.
type OCSPResponse struct {
	CA         string    // issuing CA name
	Serial     []byte    // the certificate's serial, big-endian as stored with it
	Status     int       // OCSPGood, OCSPRevoked or OCSPUnknown, as signed in DER
	ThisUpdate time.Time // as signed; stored UTC, microsecond precision
	NextUpdate time.Time // as signed; the response is stale from then on
	DER        []byte
}

func (r *OCSPResponse) validate() error {
	id := fmt.Sprintf("OCSP response for %s/%X", r.CA, r.Serial)
	switch {
	case !caName.MatchString(r.CA):
		return fmt.Errorf("%w: %s: issuing CA name %q is malformed", ErrInvalid, id, r.CA)
	case len(r.Serial) == 0 || len(r.Serial) > 20:
		return fmt.Errorf("%w: %s: serial must be 1-20 bytes, got %d", ErrInvalid, id, len(r.Serial))
	case r.Status != OCSPGood && r.Status != OCSPRevoked && r.Status != OCSPUnknown:
		return fmt.Errorf("%w: %s: status %d is not good (0), revoked (1) or unknown (2)", ErrInvalid, id, r.Status)
	case r.ThisUpdate.IsZero() || r.NextUpdate.IsZero():
		return fmt.Errorf("%w: %s: thisUpdate and nextUpdate are required", ErrInvalid, id)
	case !r.NextUpdate.After(r.ThisUpdate):
		return fmt.Errorf("%w: %s: nextUpdate not after thisUpdate", ErrInvalid, id)
	case len(r.DER) == 0:
		return fmt.Errorf("%w: %s: no DER", ErrInvalid, id)
	}
	return nil
}

// ocspUpsertSet keeps the newer response: one signed earlier (a refresh that
// read the certificate before it was revoked) never replaces a later one,
// and a "good" never replaces a "revoked", whatever the times say.
const ocspUpsertSet = ` ON CONFLICT (ca, serial) DO UPDATE
	SET status = excluded.status, this_update = excluded.this_update,
		next_update = excluded.next_update, der = excluded.der
	WHERE excluded.this_update >= ocsp_responses.this_update
		AND (ocsp_responses.status <> 1 OR excluded.status = 1)`

const ocspUpsert = `INSERT INTO ocsp_responses (ca, serial, status, this_update, next_update, der)
	VALUES ($1, $2, $3, $4, $5, $6)` + ocspUpsertSet

const ocspUpsertPG = `INSERT INTO ocsp_responses (ca, serial, status, this_update, next_update, der)
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::int4[], $4::timestamptz[], $5::timestamptz[], $6::bytea[])` +
	ocspUpsertSet

// PutOCSPResponses stores the responses in one transaction, each replacing
// the certificate's stored response unless that one is newer (a later
// thisUpdate) or says revoked while the new one does not; those are kept
// silently. A response for a certificate that is not stored gives
// ErrNotFound and nothing is written; a certificate repeated in the call
// gives ErrInvalid. Batches of about a thousand suit bulk issuance.
func (s *SMKIStore) PutOCSPResponses(ctx context.Context, rs ...OCSPResponse) error {
	db := s.db
	if len(rs) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(rs))
	for i := range rs {
		if err := rs[i].validate(); err != nil {
			return err
		}
		k := rs[i].CA + "/" + string(rs[i].Serial)
		if seen[k] {
			return fmt.Errorf("%w: OCSP response for %s/%X given twice", ErrInvalid, rs[i].CA, rs[i].Serial)
		}
		seen[k] = true
	}
	var err error
	if db.pool != nil {
		n := len(rs)
		cas, serials, ders := make([]string, n), make([][]byte, n), make([][]byte, n)
		statuses := make([]int32, n)
		thisUpdate, nextUpdate := make([]time.Time, n), make([]time.Time, n)
		for i := range rs {
			r := &rs[i]
			cas[i], serials[i], ders[i], statuses[i] = r.CA, r.Serial, r.DER, int32(r.Status)
			thisUpdate[i], nextUpdate[i] = dbTime(r.ThisUpdate), dbTime(r.NextUpdate)
		}
		_, err = db.pool.Exec(ctx, ocspUpsertPG, cas, serials, statuses, thisUpdate, nextUpdate, ders)
	} else {
		err = db.inTx(ctx, func(tx dbtx) error {
			for i := range rs {
				r := &rs[i]
				if _, err := tx.exec(ctx, ocspUpsert, r.CA, r.Serial, r.Status, r.ThisUpdate, r.NextUpdate, r.DER); err != nil {
					return err
				}
			}
			return nil
		})
	}
	switch err = classify(err); {
	case errors.Is(err, errForeignKey):
		return fmt.Errorf("storing %d OCSP responses: a certificate is not stored: %w", len(rs), ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: storing %d OCSP responses: %w", len(rs), err)
	}
	return nil
}

const ocspColumns = `r.ca, r.serial, r.status, r.this_update, r.next_update, r.der`

func scanOCSP(row interface{ Scan(...any) error }) (OCSPResponse, error) {
	var r OCSPResponse
	var status int64
	var tu, nu timeCol
	err := row.Scan(&r.CA, &r.Serial, &status, &tu, &nu, &r.DER)
	r.Status, r.ThisUpdate, r.NextUpdate = int(status), tu.t, nu.t
	return r, err
}

// OCSPResponse returns the stored response about the certificate the CA
// issued with this serial, or an error wrapping ErrNotFound if there is
// none (a certificate issued by a root, or before responses were stored).
func (s *SMKIStore) OCSPResponse(ctx context.Context, ca string, serial []byte) (OCSPResponse, error) {
	r, err := scanOCSP(s.db.read().queryRow(ctx, `SELECT `+ocspColumns+` FROM ocsp_responses r
		WHERE r.ca = $1 AND r.serial = $2`, ca, serial))
	if errors.Is(err, errNoRows) {
		return OCSPResponse{}, fmt.Errorf("OCSP response for %s/%X: %w", ca, serial, ErrNotFound)
	}
	if err != nil {
		return OCSPResponse{}, fmt.Errorf("store: reading OCSP response for %s/%X: %w", ca, serial, err)
	}
	return r, nil
}

// OCSPResponsesDue returns, soonest first and at most limit of them (0 means
// DefaultLimit, capped at MaxLimit), the stored responses whose nextUpdate is
// before the given time and that a refresh can and should replace: their CA
// is active, or is a closed batch with a delegated OCSP responder (see
// OCSPResponder; a batch closed without one has no key left to sign with),
// and their certificate is still valid when the response expires (once a
// response covers the certificate's notAfter, no other is needed).
func (s *SMKIStore) OCSPResponsesDue(ctx context.Context, before time.Time, limit int) ([]OCSPResponse, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	if before.IsZero() {
		return nil, fmt.Errorf("%w: listing OCSP responses due: no time", ErrInvalid)
	}
	rs, err := s.db.read().query(ctx, `SELECT `+ocspColumns+` FROM ocsp_responses r
		JOIN cas ON cas.name = r.ca
		JOIN certificates c ON c.ca = r.ca AND c.serial = r.serial
		WHERE r.next_update < $1 AND c.not_after > r.next_update
			AND (cas.state = 'active' OR EXISTS (SELECT 1 FROM ocsp_responders o WHERE o.ca = r.ca))
		ORDER BY r.next_update LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing OCSP responses due: %w", err)
	}
	defer rs.Close()
	var out []OCSPResponse
	for rs.Next() {
		r, err := scanOCSP(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing OCSP responses due: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing OCSP responses due: %w", err)
	}
	return out, nil
}

// CertificatesWithoutOCSP returns, in ID order and at most limit of them (0
// means DefaultLimit, capped at MaxLimit), the certificates that have no
// stored OCSP response but could get one: issued by a CA that is not a root
// and is active or a closed batch with a delegated OCSP responder, not
// expired at the given time, and not themselves an OCSP responder's
// certificate (id-pkix-ocsp-nocheck: no status to give). They are certificates
// published by an operator, issued before responses were stored, or whose
// response failed to store; the refresher signs theirs.
func (s *SMKIStore) CertificatesWithoutOCSP(ctx context.Context, at time.Time, limit int) ([]Certificate, error) {
	db := s.db
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		return nil, fmt.Errorf("%w: listing certificates without OCSP response: no time", ErrInvalid)
	}
	return db.listCerts(ctx, db.read(), `SELECT c.`+strings.ReplaceAll(certColumns, ", ", ", c.")+` FROM certificates c
		JOIN cas ON cas.name = c.ca
		WHERE cas.kind NOT IN ('root', 'dccki-root') AND c.kind <> 'ocsp-responder' AND c.not_after > $1
			AND (cas.state = 'active' OR EXISTS (SELECT 1 FROM ocsp_responders o WHERE o.ca = c.ca))
			AND NOT EXISTS (SELECT 1 FROM ocsp_responses r WHERE r.ca = c.ca AND r.serial = c.serial)
		ORDER BY c.id LIMIT $2`, at, limit)
}
