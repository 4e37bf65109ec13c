package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
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

// Respond parses a DER OCSP request and returns a signed DER response
// (prepared and linted with the throwaway key first, then signed by the
// issuing CA and read back):
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
	if a.lint != nil {
		// Step 1: sign with the throwaway key and lint the response.
		pre, err := ocsp.CreateResponse(iss.lintParent, iss.lintParent, tmpl, a.lintKey)
		if err != nil {
			return ocsp.InternalErrorErrorResponse, fmt.Errorf("ca: preparing OCSP response: %w", err)
		}
		if err := lintOCSP(pre, iss.lintParent, q.SerialNumber, now); err != nil {
			return ocsp.InternalErrorErrorResponse, fmt.Errorf("OCSP response for %X: %w", q.SerialNumber, err)
		}
	}
	// Step 2: sign for real and read back.
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

// ocspLints are the rules a response must meet before the CA key signs it
// (RFC 6960 section 4.2 and our profile: ecdsa-with-SHA256 only).
var ocspLints = []struct {
	name  string
	check func(r *ocsp.Response, serial *big.Int, now time.Time) error
}{
	{"e_ocsp_signature_ecdsa_sha256", func(r *ocsp.Response, _ *big.Int, _ time.Time) error {
		if r.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			return fmt.Errorf("signature algorithm %v", r.SignatureAlgorithm)
		}
		return nil
	}},
	{"e_ocsp_serial_matches_request", func(r *ocsp.Response, serial *big.Int, _ time.Time) error {
		if r.SerialNumber == nil || r.SerialNumber.Cmp(serial) != 0 {
			return fmt.Errorf("serial %X, request %X", r.SerialNumber, serial)
		}
		return nil
	}},
	{"e_ocsp_status_defined", func(r *ocsp.Response, _ *big.Int, _ time.Time) error {
		if r.Status != ocsp.Good && r.Status != ocsp.Revoked && r.Status != ocsp.Unknown {
			return fmt.Errorf("status %d", r.Status)
		}
		return nil
	}},
	{"e_ocsp_validity", func(r *ocsp.Response, _ *big.Int, now time.Time) error {
		if r.ThisUpdate.After(now.Add(backdate)) || !r.NextUpdate.After(r.ThisUpdate) {
			return fmt.Errorf("thisUpdate %s, nextUpdate %s at %s", r.ThisUpdate, r.NextUpdate, now)
		}
		return nil
	}},
	{"e_ocsp_revocation_fields", func(r *ocsp.Response, _ *big.Int, _ time.Time) error {
		if r.Status != ocsp.Revoked {
			return nil
		}
		if r.RevokedAt.IsZero() || r.RevokedAt.After(r.ThisUpdate) || r.RevocationReason < 0 || r.RevocationReason > 10 || r.RevocationReason == 7 {
			return fmt.Errorf("revoked at %s, reason %d", r.RevokedAt, r.RevocationReason)
		}
		return nil
	}},
}

// lintOCSP reads a response signed with the throwaway key (its signature
// checked against lintIssuer) and applies ocspLints.
func lintOCSP(der []byte, lintIssuer *x509.Certificate, serial *big.Int, now time.Time) error {
	r, err := ocsp.ParseResponse(der, lintIssuer)
	if err != nil {
		return fmt.Errorf("%w: prepared OCSP response does not read: %v", ErrLint, err)
	}
	var failed []string
	for _, l := range ocspLints {
		if err := l.check(r, serial, now); err != nil {
			failed = append(failed, l.name+" ("+err.Error()+")")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", ErrLint, strings.Join(failed, "; "))
	}
	return nil
}
