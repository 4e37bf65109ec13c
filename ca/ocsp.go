package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/store"
)

// ErrOCSP is returned by OCSPResponder.Respond for a request it answers
// with an OCSP error status (malformed request, unknown or offline issuer);
// the returned bytes are then that error response, ready to send.
var ErrOCSP = errors.New("ca: OCSP request not answered")

// OCSPResponder answers RFC 6960 OCSP requests for the online CAs (the OCA,
// open batch Device CAs and the DCCKI TLS CA) from the store. Responses are
// signed directly by the issuing CA (no delegated responder certificate), so
// a relying party needs nothing beyond the path it already has. Roots are
// offline and closed batches have no key: requests about their
// certificates get "unauthorized"; their status is in the CRLs.
type OCSPResponder struct {
	a *Authority
}

// OCSPResponder returns the responder backed by this Authority.
func (a *Authority) OCSPResponder() *OCSPResponder { return &OCSPResponder{a: a} }

// Respond parses a DER OCSP request and returns a signed DER response:
// good, revoked (with time and reason) or unknown. For requests it cannot
// answer it returns an OCSP error response together with an error wrapping
// ErrOCSP; other errors (the store failing) come with an internalError
// response.
func (r *OCSPResponder) Respond(ctx context.Context, req []byte) ([]byte, error) {
	q, err := ocsp.ParseRequest(req)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: malformed request: %v", ErrOCSP, err)
	}
	a := r.a
	iss, err := r.findIssuer(ctx, q)
	if err != nil {
		if errors.Is(err, ErrOCSP) {
			return ocsp.UnauthorizedErrorResponse, err
		}
		return ocsp.InternalErrorErrorResponse, err
	}
	tmpl := ocsp.Response{
		SerialNumber: q.SerialNumber,
		IssuerHash:   q.HashAlgorithm,
		Status:       ocsp.Unknown,
	}
	now := a.now().UTC().Truncate(time.Second)
	tmpl.ThisUpdate, tmpl.NextUpdate = now, now.Add(a.ocspTT)
	c, err := a.st.Certificate(ctx, iss.rec.Name, q.SerialNumber.Bytes())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("ca: OCSP look-up of %X: %w", q.SerialNumber, err)
	case !c.RevokedAt.IsZero():
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, c.RevokedAt.UTC().Truncate(time.Second), c.Reason
	default:
		tmpl.Status = ocsp.Good
	}
	resp, err := ocsp.CreateResponse(iss.cert, iss.cert, tmpl, iss.key)
	if err != nil {
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("ca: signing OCSP response: %w", err)
	}
	back, err := ocsp.ParseResponse(resp, iss.cert)
	if err != nil {
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("%w: OCSP response: %v", ErrReadBack, err)
	}
	if back.Status != tmpl.Status || back.SerialNumber.Cmp(q.SerialNumber) != 0 {
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("%w: OCSP response reads back as status %d for %X", ErrReadBack, back.Status, back.SerialNumber)
	}
	return resp, nil
}

// findIssuer finds the online CA a request names by its key and name hashes.
func (r *OCSPResponder) findIssuer(ctx context.Context, q *ocsp.Request) (*issuer, error) {
	cas, err := r.a.st.CAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: OCSP: listing CAs: %w", err)
	}
	for _, rec := range cas {
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil {
			continue
		}
		if !matchesIssuer(q, c) {
			continue
		}
		iss, err := r.a.onlineIssuer(ctx, rec.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: issuer %s cannot sign: %v", ErrOCSP, rec.Name, err)
		}
		return iss, nil
	}
	return nil, fmt.Errorf("%w: unknown issuer", ErrOCSP)
}

func matchesIssuer(q *ocsp.Request, c *x509.Certificate) bool {
	if q.HashAlgorithm != crypto.SHA1 && q.HashAlgorithm != crypto.SHA256 && q.HashAlgorithm != crypto.SHA384 && q.HashAlgorithm != crypto.SHA512 {
		return false
	}
	spk, err := subjectPublicKeyBits(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return false
	}
	h := q.HashAlgorithm.New()
	h.Write(spk)
	if !bytes.Equal(h.Sum(nil), q.IssuerKeyHash) {
		return false
	}
	h.Reset()
	h.Write(c.RawSubject)
	return bytes.Equal(h.Sum(nil), q.IssuerNameHash)
}
