package ca

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/metertrust/metertrust/store"
)

// memStore is an in-memory fake of Store for benchmarks and tests that
// should not measure a database. It keeps the store's contract for the
// calls the CA makes (quota, closed CAs, duplicate serials, CRL numbers).
type memStore struct {
	mu     sync.Mutex
	cas    map[string]store.CA
	certs  map[string]store.Certificate // key: ca + "/" + serial
	crlNum map[string]int64
	crls   map[string]store.CRL
	ocsp   map[string]store.OCSPResponse  // key: as certs
	resp   map[string]store.OCSPResponder // key: CA name
	audit  int64
}

func newMemStore() *memStore {
	return &memStore{cas: map[string]store.CA{}, certs: map[string]store.Certificate{},
		crlNum: map[string]int64{}, crls: map[string]store.CRL{}, ocsp: map[string]store.OCSPResponse{},
		resp: map[string]store.OCSPResponder{}}
}

func certKey(ca string, serial []byte) string { return ca + "/" + string(serial) }

func (m *memStore) CreateCA(_ context.Context, c store.CA) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cas[c.Name]; ok {
		return fmt.Errorf("CA %s: %w", c.Name, store.ErrExists)
	}
	m.cas[c.Name] = c
	return nil
}

func (m *memStore) CA(_ context.Context, name string) (store.CA, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cas[name]
	if !ok {
		return c, fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
	}
	return c, nil
}

func (m *memStore) CAs(context.Context) ([]store.CA, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.CA
	for _, c := range m.cas {
		out = append(out, c)
	}
	return out, nil
}

func (m *memStore) ReserveDevices(_ context.Context, name string, n int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cas[name]
	switch {
	case !ok:
		return 0, store.ErrNotFound
	case c.State != store.CAStateActive:
		return 0, store.ErrClosed
	case c.Quota > 0 && c.Issued+n > c.Quota:
		return 0, store.ErrQuotaExhausted
	}
	c.Issued += n
	m.cas[name] = c
	return c.Issued, nil
}

func (m *memStore) CloseCA(_ context.Context, name string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cas[name]
	if !ok {
		return store.ErrNotFound
	}
	if c.State != store.CAStateActive {
		return store.ErrClosed
	}
	c.State, c.KeyURI, c.ClosedAt = store.CAStateClosed, "", at
	m.cas[name] = c
	return nil
}

func (m *memStore) PutCertificates(_ context.Context, certs ...store.Certificate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range certs {
		if _, ok := m.certs[certKey(c.CA, c.Serial)]; ok {
			return store.ErrExists
		}
	}
	for _, c := range certs {
		m.certs[certKey(c.CA, c.Serial)] = c
	}
	return nil
}

func (m *memStore) FindCertificates(_ context.Context, q store.CertQuery) ([]store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Certificate
	for _, c := range m.certs {
		if (q.CA == "" || c.CA == q.CA) && (q.Serial == nil || string(c.Serial) == string(q.Serial)) &&
			(q.Kind == "" || c.Kind == q.Kind) && (q.IncludeRevoked || c.RevokedAt.IsZero()) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) Certificate(_ context.Context, ca string, serial []byte) (store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[certKey(ca, serial)]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (m *memStore) Revoke(_ context.Context, ca string, serial []byte, reason int, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[certKey(ca, serial)]
	switch {
	case !ok:
		return store.ErrNotFound
	case !c.RevokedAt.IsZero():
		return store.ErrConflict
	}
	c.RevokedAt, c.Reason = at, reason
	m.certs[certKey(ca, serial)] = c
	return nil
}

func (m *memStore) Revoked(_ context.Context, ca string) ([]store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Certificate
	for _, c := range m.certs {
		if c.CA == ca && !c.RevokedAt.IsZero() {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) NextCRLNumber(_ context.Context, ca string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crlNum[ca]++
	return m.crlNum[ca], nil
}

func (m *memStore) PutCRL(_ context.Context, c store.CRL) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crls[c.CA] = c
	return nil
}

func (m *memStore) LatestCRL(_ context.Context, ca string) (store.CRL, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.crls[ca]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (m *memStore) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audit++
	e.Seq = m.audit
	return e, nil
}

func (m *memStore) PutOCSPResponses(_ context.Context, rs ...store.OCSPResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		if _, ok := m.certs[certKey(r.CA, r.Serial)]; !ok {
			return fmt.Errorf("OCSP response for %s/%X: %w", r.CA, r.Serial, store.ErrNotFound)
		}
	}
	for _, r := range rs {
		k := certKey(r.CA, r.Serial)
		if old, ok := m.ocsp[k]; ok && (old.ThisUpdate.After(r.ThisUpdate) || old.Status == store.OCSPRevoked && r.Status != store.OCSPRevoked) {
			continue
		}
		m.ocsp[k] = r
	}
	return nil
}

func (m *memStore) OCSPResponse(_ context.Context, ca string, serial []byte) (store.OCSPResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.ocsp[certKey(ca, serial)]
	if !ok {
		return store.OCSPResponse{}, fmt.Errorf("OCSP response for %s/%X: %w", ca, serial, store.ErrNotFound)
	}
	return r, nil
}

func (m *memStore) OCSPResponsesDue(_ context.Context, before time.Time, limit int) ([]store.OCSPResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.OCSPResponse
	for k, r := range m.ocsp {
		if r.NextUpdate.Before(before) && m.signs(r.CA) && m.certs[k].NotAfter.After(r.NextUpdate) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NextUpdate.Before(out[j].NextUpdate) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memStore) CertificatesWithoutOCSP(_ context.Context, at time.Time, limit int) ([]store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Certificate
	for k, c := range m.certs {
		ca := m.cas[c.CA]
		if _, ok := m.ocsp[k]; !ok && m.signs(c.CA) && ca.Kind != store.CAKindRoot &&
			ca.Kind != store.CAKindDCCKIRoot && c.Kind != store.KindOCSPResponder && c.NotAfter.After(at) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// signs reports whether OCSP responses about the CA's certificates can be
// signed: it is active, or closed with a delegated responder.
func (m *memStore) signs(ca string) bool {
	_, ok := m.resp[ca]
	return m.cas[ca].State == store.CAStateActive || ok
}

func (m *memStore) PutOCSPResponder(_ context.Context, r store.OCSPResponder) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.certs[certKey(r.CA, r.Serial)]; !ok {
		return fmt.Errorf("OCSP responder of %s: %w", r.CA, store.ErrNotFound)
	}
	if _, ok := m.resp[r.CA]; ok {
		return fmt.Errorf("OCSP responder of %s: %w", r.CA, store.ErrExists)
	}
	m.resp[r.CA] = r
	return nil
}

func (m *memStore) OCSPResponder(_ context.Context, ca string) (store.OCSPResponder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.resp[ca]
	if !ok {
		return r, fmt.Errorf("OCSP responder of %s: %w", ca, store.ErrNotFound)
	}
	return r, nil
}

func (m *memStore) OCSPResponders(context.Context) ([]store.OCSPResponder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.OCSPResponder
	for _, r := range m.resp {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CA < out[j].CA })
	return out, nil
}

func (m *memStore) RecordIssuances(ctx context.Context, is []*store.Issuance) error {
	for _, it := range is {
		it.Issued, it.Err = 0, it.Failed
		m.mu.Lock()
		m.audit += 2
		m.mu.Unlock()
		if it.Err != nil {
			continue
		}
		if it.Reserve != "" {
			if it.Issued, it.Err = m.ReserveDevices(ctx, it.Reserve, 1); it.Err != nil {
				continue
			}
		}
		if it.Err = m.PutCertificates(ctx, it.Cert); it.Err != nil {
			if it.Reserve != "" {
				m.mu.Lock()
				c := m.cas[it.Reserve]
				c.Issued--
				m.cas[it.Reserve] = c
				m.mu.Unlock()
			}
			it.Issued = 0
			continue
		}
		if len(it.OCSP.DER) > 0 {
			if err := m.PutOCSPResponses(ctx, it.OCSP); err != nil {
				return err
			}
		}
	}
	return nil
}
