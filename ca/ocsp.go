package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/store"
)

// OCSP responses are signed ahead of time (decision record 010, Boulder's
// model): the CA signs one per certificate of an online CA (the OCA, open
// batch Device CAs and the DCCKI TLS CA) when it issues the certificate,
// when it revokes it, and on a schedule before the last one expires
// (RefreshOCSP); the store keeps them and the repository serves them as
// stored, with no key. Online CAs sign their responses directly, so a
// relying party needs nothing beyond the path it already has. A batch that
// closes certifies a delegated OCSP responder first (decision record 013,
// responder.go): from then on that responder signs the responses about the
// batch's certificates, revoked ones included, and each response carries
// the responder's certificate. A batch closed before responders existed has
// no key left: the responses of its certificates run out, and from then on
// its final CRL is the only source of their status. Certificates issued by
// the roots (the CA certificates) get none: roots sign only in ceremonies,
// and those certificates' status is in the roots' CRLs.

// OCSPValidity reports the nextUpdate - thisUpdate of the OCSP responses
// this Authority signs (Config.OCSPValidity, default one day).
func (a *Authority) OCSPValidity() time.Duration { return a.ocspTT }

// signOCSP builds the OCSP response about c (good, or revoked with its time
// and reason), valid from now for the configured validity; prepares and
// lints it with the throwaway key; signs it with the CA's key, or with a
// closed batch's delegated responder (the response then carries the
// responder's certificate, RFC 6960 section 4.2.2.2), and reads it back.
// The CertID names the issuer with SHA-1 hashes (RFC 5019 section 2.2.1),
// as every pre-signed response does.
func (a *Authority) signOCSPUntimed(s *ocspSigner, c store.Certificate) (store.OCSPResponse, error) {
	serial := new(big.Int).SetBytes(c.Serial)
	now := a.now().UTC().Truncate(time.Second)
	tmpl := ocsp.Response{SerialNumber: serial, Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(a.ocspTT)}
	if !c.RevokedAt.IsZero() {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, c.RevokedAt.UTC().Truncate(time.Second), c.Reason
	}
	if a.lint != nil && (tmpl.Status != ocsp.Good || !s.goodLinted.Load()) {
		// Step 1: sign with the throwaway key and lint the response. A
		// "good" response differs from the signer's first only in its
		// serial and times, which step 2 lints on the read-back.
		pre, err := ocsp.CreateResponse(s.lintIssuer, s.lintIssuer, tmpl, a.lintKey)
		if err != nil {
			return store.OCSPResponse{}, fmt.Errorf("ca: preparing OCSP response for %s/%X: %w", s.ca, serial, err)
		}
		if err := lintOCSP(pre, s.lintIssuer, serial, now); err != nil {
			return store.OCSPResponse{}, fmt.Errorf("OCSP response for %s/%X: %w", s.ca, serial, err)
		}
		if tmpl.Status == ocsp.Good {
			s.goodLinted.Store(true)
		}
	}
	// Step 2: sign for real and read back.
	signer := s.issuer
	if s.responder != nil {
		signer, tmpl.Certificate = s.responder, s.responder
	}
	der, err := ocsp.CreateResponse(s.issuer, signer, tmpl, s.key)
	if err != nil {
		return store.OCSPResponse{}, fmt.Errorf("ca: signing OCSP response for %s/%X: %w", s.ca, serial, err)
	}
	back, err := ocsp.ParseResponse(der, s.issuer)
	if err != nil {
		return store.OCSPResponse{}, fmt.Errorf("%w: OCSP response for %s/%X: %v", ErrReadBack, s.ca, serial, err)
	}
	if back.Status != tmpl.Status || back.SerialNumber.Cmp(serial) != 0 || !back.ThisUpdate.Equal(tmpl.ThisUpdate) || !back.NextUpdate.Equal(tmpl.NextUpdate) {
		return store.OCSPResponse{}, fmt.Errorf("%w: OCSP response for %s/%X reads back as status %d for %X, %s to %s",
			ErrReadBack, s.ca, serial, back.Status, back.SerialNumber, back.ThisUpdate, back.NextUpdate)
	}
	if s.responder != nil && (back.Certificate == nil || !back.Certificate.Equal(s.responder)) {
		return store.OCSPResponse{}, fmt.Errorf("%w: OCSP response for %s/%X does not carry its responder's certificate", ErrReadBack, s.ca, serial)
	}
	if a.lint != nil {
		if err := checkOCSPLints(back, serial, now); err != nil {
			return store.OCSPResponse{}, fmt.Errorf("OCSP response for %s/%X: %w", s.ca, serial, err)
		}
	}
	return store.OCSPResponse{CA: s.ca, Serial: c.Serial, Status: tmpl.Status, ThisUpdate: tmpl.ThisUpdate,
		NextUpdate: tmpl.NextUpdate, DER: der}, nil
}

// refreshBatch is how many responses RefreshOCSP signs and stores together,
// and refreshPasses how many batches one run does at most of each kind (the
// rest wait for the next run, should a response refuse to leave the due
// list).
const (
	refreshBatch  = 500
	refreshPasses = 1000
)

// RefreshOCSP re-signs the stored OCSP responses that expire within margin
// of now, then signs one for each certificate that has none but could (see
// store.SMKIStore.CertificatesWithoutOCSP: published by an operator, issued
// before responses were stored, or whose response failed to store), in
// batches, and returns how many it stored. It is meant to run on a schedule
// more often than margin (every hour with margin half the response
// validity, say), so that no response served goes stale. A closed batch's
// responses are re-signed by its delegated responder; those of batches
// closed without one and those already covering their certificate's
// notAfter are left alone (see store.SMKIStore.OCSPResponsesDue). margin must be
// positive and shorter than the response validity. A response that cannot
// be signed stops the run after its batch, with an error naming it.
func (a *Authority) RefreshOCSP(ctx context.Context, margin time.Duration) (int, error) {
	if margin <= 0 || margin >= a.ocspTT {
		return 0, fmt.Errorf("%w: OCSP refresh margin %s must be positive and shorter than the response validity %s", ErrRequest, margin, a.ocspTT)
	}
	due := func() ([]store.Certificate, error) {
		rs, err := a.st.OCSPResponsesDue(ctx, a.now().Add(margin), refreshBatch)
		if err != nil {
			return nil, fmt.Errorf("ca: OCSP responses due: %w", err)
		}
		certs := make([]store.Certificate, 0, len(rs))
		for _, r := range rs {
			c, err := a.st.Certificate(ctx, r.CA, r.Serial)
			if err != nil {
				return nil, fmt.Errorf("ca: certificate %s/%X: %w", r.CA, r.Serial, err)
			}
			certs = append(certs, c)
		}
		return certs, nil
	}
	missing := func() ([]store.Certificate, error) {
		certs, err := a.st.CertificatesWithoutOCSP(ctx, a.now(), refreshBatch)
		if err != nil {
			return nil, fmt.Errorf("ca: certificates without OCSP response: %w", err)
		}
		return certs, nil
	}
	done := 0
	for _, list := range []func() ([]store.Certificate, error){due, missing} {
		n, err := a.signOCSPBatches(ctx, list)
		done += n
		if err != nil {
			a.log.WarnContext(ctx, "OCSP refresh incomplete", "signed", done, "err", err)
			return done, err
		}
	}
	if done > 0 {
		a.log.InfoContext(ctx, "OCSP responses signed ahead", "count", done, "margin", margin.String())
	}
	return done, nil
}

// signOCSPBatches signs and stores a response for each certificate list
// returns, until it returns fewer than a batch.
func (a *Authority) signOCSPBatches(ctx context.Context, list func() ([]store.Certificate, error)) (int, error) {
	done := 0
	for range refreshPasses {
		certs, err := list()
		if err != nil {
			return done, err
		}
		out := make([]store.OCSPResponse, 0, len(certs))
		var errs []error
		for _, c := range certs {
			s, err := a.ocspSignerFor(ctx, c.CA)
			if errors.Is(err, ErrBatchClosed) {
				continue // closed without a responder since the listing: its responses run out
			}
			if err == nil {
				var resp store.OCSPResponse
				if resp, err = a.signOCSP(s, c); err == nil {
					out = append(out, resp)
					continue
				}
			}
			errs = append(errs, err)
		}
		if err := a.st.PutOCSPResponses(ctx, out...); err != nil {
			return done, fmt.Errorf("ca: storing %d OCSP responses: %w", len(out), err)
		}
		done += len(out)
		if len(errs) > 0 {
			return done, fmt.Errorf("ca: signing OCSP responses: %d of %d failed, first: %w", len(errs), len(certs), errs[0])
		}
		if len(certs) < refreshBatch || len(out) == 0 {
			return done, nil
		}
	}
	a.log.WarnContext(ctx, "OCSP refresh stopped after its last pass", "signed", done, "passes", refreshPasses)
	return done, nil
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
	return checkOCSPLints(r, serial, now)
}

// checkOCSPLints applies ocspLints to a response read.
func checkOCSPLints(r *ocsp.Response, serial *big.Int, now time.Time) error {
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
