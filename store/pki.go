package store

import (
	"context"
	"fmt"
	"time"
)

// The operator dashboard's views of the SMKI repository (decision 020):
// read-only, and never a key: certificates, CRLs and OCSP responses are
// public, and a CA's key URI is not read here.

// RecentCertificates returns the limit certificates stored last (of every
// kind, revoked or not), newest first: the primary key's order, which is
// the order of issuance.
func (s *SMKIStore) RecentCertificates(ctx context.Context, limit int) ([]Certificate, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	return s.db.listCerts(ctx, s.db.read(), `SELECT `+certColumns+` FROM certificates ORDER BY id DESC LIMIT $1`, limit)
}

// RecentRevocations returns the limit certificates revoked last, newest
// revocation first (read through the index of revoked certificates).
func (s *SMKIStore) RecentRevocations(ctx context.Context, limit int) ([]Certificate, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	return s.db.listCerts(ctx, s.db.read(), `SELECT `+certColumns+` FROM certificates WHERE revoked_at IS NOT NULL
		ORDER BY revoked_at DESC, id DESC LIMIT $1`, limit)
}

// OCSPState is the state of one CA's pre-signed OCSP responses at a time.
type OCSPState struct {
	CA         string
	Responses  int64     // responses stored, one per certificate
	Stale      int64     // of which NextUpdate is not after the time asked
	Oldest     time.Time // the earliest ThisUpdate
	NextExpiry time.Time // the earliest NextUpdate
}

// OCSPStates returns, for each CA with OCSP responses, how many there are,
// how many are stale at now, the oldest and the next to expire; by CA
// name.
func (s *SMKIStore) OCSPStates(ctx context.Context, now time.Time) ([]OCSPState, error) {
	rs, err := s.db.read().query(ctx, `SELECT ca, COUNT(*), SUM(CASE WHEN next_update <= $1 THEN 1 ELSE 0 END),
		MIN(this_update), MIN(next_update) FROM ocsp_responses GROUP BY ca ORDER BY ca`, dbTime(now))
	if err != nil {
		return nil, fmt.Errorf("store: summing OCSP responses: %w", err)
	}
	defer rs.Close()
	var out []OCSPState
	for rs.Next() {
		var o OCSPState
		var oldest, next timeCol
		if err := rs.Scan(&o.CA, &o.Responses, &o.Stale, &oldest, &next); err != nil {
			return nil, fmt.Errorf("store: summing OCSP responses: %w", err)
		}
		o.Oldest, o.NextExpiry = oldest.t, next.t
		out = append(out, o)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: summing OCSP responses: %w", err)
	}
	return out, nil
}
