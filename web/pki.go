package web

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/store"
)

// PKI is the SMKI repository as the PKI page reads it; *store.SMKIStore
// implements it. Nothing here returns a private key; a CA's key URI is
// read only to say whether the key is present, and never shown.
type PKI interface {
	CAs(ctx context.Context) ([]store.CA, error)
	LatestCRL(ctx context.Context, ca string) (store.CRL, error)
	OCSPStates(ctx context.Context, now time.Time) ([]store.OCSPState, error)
	OCSPResponders(ctx context.Context) ([]store.OCSPResponder, error)
	RecentCertificates(ctx context.Context, limit int) ([]store.Certificate, error)
	RecentRevocations(ctx context.Context, limit int) ([]store.Certificate, error)
}

// pkiRecent is how many recent issuances and revocations the PKI page
// lists.
const pkiRecent = 50

// actionKeyDestroy is the audit action of a batch key's destruction
// (package ca's CloseBatch).
const actionKeyDestroy = "ca.batch.key-destroy"

// caRow is one CA or batch of the PKI page.
type caRow struct {
	Name, Kind, Parent, Subject string
	NotBefore, NotAfter         time.Time
	// KeyPresent says whether the CA still has a key (its URI is not
	// shown); KeyDestroyed is the time of the audit entry recording its
	// destruction, when found.
	KeyPresent   bool
	KeyDestroyed time.Time
	DestroySeq   int64
	Quota        int64
	Issued       int64
	Open         bool
	ClosedAt     time.Time
	Purpose      string
	// Responder is the serial of a closed batch's delegated OCSP
	// responder certificate, "" when it has none.
	Responder      string
	ResponderSince time.Time
	CRL            *store.CRL
	CRLStale       bool
	ParseError     string
}

// certRow is a recent issuance or revocation.
type certRow struct {
	CA, Serial, Kind, Usage, EUI string
	NotBefore, RevokedAt         time.Time
	Reason                       string
}

// pkiData is what the PKI page shows.
type pkiData struct {
	CAs, Batches []caRow
	OCSP         []store.OCSPState
	OCSPTotal    store.OCSPState
	Issued       []certRow
	Revoked      []certRow
	Problems     []string
}

// pki shows the CAs and batches, CRL freshness, the OCSP responses'
// state, and the latest issuances and revocations, from the store.
func (s *Server) pki(c echo.Context) error {
	if s.deps.PKI == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no SMKI repository."}
	}
	d, err := s.pkiData(c.Request().Context())
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "pki", d)
}

func (s *Server) pkiData(ctx context.Context) (pkiData, error) {
	now := s.now()
	var d pkiData
	cas, err := s.deps.PKI.CAs(ctx)
	if err != nil {
		return d, fmt.Errorf("reading CAs: %w", err)
	}
	responders := map[string]store.OCSPResponder{}
	if rs, err := s.deps.PKI.OCSPResponders(ctx); err != nil {
		d.Problems = append(d.Problems, "OCSP responders: "+err.Error())
	} else {
		for _, r := range rs {
			responders[r.CA] = r
		}
	}
	destroyed := s.keyDestructions(ctx, cas, &d.Problems)
	for _, a := range cas {
		r := caRow{Name: a.Name, Kind: a.Kind, Parent: a.Parent, KeyPresent: a.KeyURI != "", Quota: a.Quota, Issued: a.Issued,
			Open: a.State != store.CAStateClosed, ClosedAt: a.ClosedAt, Purpose: a.Purpose}
		if cert, err := x509.ParseCertificate(a.CertDER); err != nil {
			r.ParseError = err.Error()
		} else {
			r.Subject, r.NotBefore, r.NotAfter = cert.Subject.String(), cert.NotBefore, cert.NotAfter
		}
		if e, ok := destroyed[a.Name]; ok && !r.KeyPresent {
			r.KeyDestroyed, r.DestroySeq = e.Time, e.Seq
		}
		if rp, ok := responders[a.Name]; ok {
			r.Responder, r.ResponderSince = fmt.Sprintf("%X", rp.Serial), rp.CreatedAt
		}
		crl, err := s.deps.PKI.LatestCRL(ctx, a.Name)
		switch {
		case err == nil:
			r.CRL = &crl
			r.CRLStale = !crl.NextUpdate.IsZero() && !now.Before(crl.NextUpdate)
		case !errors.Is(err, store.ErrNotFound):
			d.Problems = append(d.Problems, fmt.Sprintf("CRL of %s: %v", a.Name, err))
		}
		if a.Kind == store.CAKindDCA {
			d.Batches = append(d.Batches, r)
		} else {
			d.CAs = append(d.CAs, r)
		}
	}
	if d.OCSP, err = s.deps.PKI.OCSPStates(ctx, now); err != nil {
		d.Problems = append(d.Problems, "OCSP responses: "+err.Error())
	}
	for _, o := range d.OCSP {
		t := &d.OCSPTotal
		t.Responses += o.Responses
		t.Stale += o.Stale
		if t.Oldest.IsZero() || o.Oldest.Before(t.Oldest) {
			t.Oldest = o.Oldest
		}
		if t.NextExpiry.IsZero() || o.NextExpiry.Before(t.NextExpiry) {
			t.NextExpiry = o.NextExpiry
		}
	}
	if cs, err := s.deps.PKI.RecentCertificates(ctx, pkiRecent); err != nil {
		d.Problems = append(d.Problems, "recent certificates: "+err.Error())
	} else {
		d.Issued = certRows(cs)
	}
	if cs, err := s.deps.PKI.RecentRevocations(ctx, pkiRecent); err != nil {
		d.Problems = append(d.Problems, "recent revocations: "+err.Error())
	} else {
		d.Revoked = certRows(cs)
	}
	return d, nil
}

// keyDestructions finds the audit entries recording the destruction of
// the closed batches' keys: one search of the audit log from its newest
// entry, which stops once it has as many as there are closed batches.
func (s *Server) keyDestructions(ctx context.Context, cas []store.CA, problems *[]string) map[string]store.AuditEvent {
	out := map[string]store.AuditEvent{}
	var closed []string
	for _, a := range cas {
		if a.KeyURI == "" && a.Kind == store.CAKindDCA {
			closed = append(closed, a.Name)
		}
	}
	if len(closed) == 0 || s.deps.Audit == nil {
		return out
	}
	es, err := s.deps.Audit.SearchAudit(ctx, store.AuditQuery{Action: actionKeyDestroy, Limit: min(2*len(closed), store.MaxLimit)})
	if err != nil {
		*problems = append(*problems, "key destruction audit entries: "+err.Error())
		return out
	}
	for _, e := range es { // newest first: the first success per batch is its last
		if e.Outcome != store.OutcomeSuccess || !slices.Contains(closed, e.Object) {
			continue
		}
		if _, ok := out[e.Object]; !ok {
			out[e.Object] = store.AuditEvent{Seq: e.Seq, Time: e.Time}
		}
	}
	return out
}

func certRows(cs []store.Certificate) []certRow {
	out := make([]certRow, len(cs))
	for i, c := range cs {
		out[i] = certRow{CA: c.CA, Serial: fmt.Sprintf("%X", c.Serial), Kind: c.Kind, Usage: c.Usage, EUI: c.EUI,
			NotBefore: c.NotBefore, RevokedAt: c.RevokedAt}
		if !c.RevokedAt.IsZero() {
			out[i].Reason = ca.ReasonName(c.Reason)
		}
	}
	return out
}

func init() {
	// ahead says how long until t, or how long since, for the PKI page.
	funcs["ahead"] = func(now, t time.Time) string {
		if d := t.Sub(now).Round(time.Minute); d < 0 {
			return (-d).String() + " ago"
		}
		return "in " + t.Sub(now).Round(time.Minute).String()
	}
}
