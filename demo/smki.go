package demo

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// reasonKeyCompromise is the RFC 5280 CRL reason code keyCompromise.
const reasonKeyCompromise = 1

// actRevocation revokes the last meter's DS certificate, publishes the
// batch CRL, asks the repository's OCSP responder about it and about a good
// certificate, and validates every party's and meter's certificate path
// against the store's roots, CAs and CRLs.
func (r *run) actRevocation(ctx context.Context) error {
	s := r.sys
	victim := s.Meters[len(s.Meters)-1]
	good := s.Meters[0]
	find := func(eui smki.EUI) (store.Certificate, error) {
		cs, err := s.DB.SMKI().FindCertificates(ctx, store.CertQuery{EUI: eui.String(), Kind: store.KindDevice, Usage: store.UsageDS})
		if err != nil {
			return store.Certificate{}, fmt.Errorf("finding the DS certificate of %s: %w", eui, err)
		}
		if len(cs) != 1 {
			return store.Certificate{}, fmt.Errorf("%w: %d DS certificates for meter %s, want 1", ErrAPI, len(cs), eui)
		}
		return cs[0], nil
	}
	vc, err := find(victim)
	if err != nil {
		return err
	}
	gc, err := find(good)
	if err != nil {
		return err
	}
	r.say("Meter %s reports its DS key compromised; batch %s revokes its certificate", victim, s.Batch)
	r.detail("serial %X, reason keyCompromise", vc.Serial)
	if _, err := s.CA.Revoke(ctx, s.Batch, vc.Serial, reasonKeyCompromise); err != nil {
		return fmt.Errorf("revoking %X: %w", vc.Serial, err)
	}
	r.sum.RevokedSerial = fmt.Sprintf("%X", vc.Serial)
	crl, err := s.CA.CRL(ctx, s.Batch)
	if err != nil {
		return fmt.Errorf("CRL of %s: %w", s.Batch, err)
	}
	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		return fmt.Errorf("reading the CRL of %s: %w", s.Batch, err)
	}
	r.sum.CRLNumber, r.sum.CRLEntries = crl.Number, len(rl.RevokedCertificateEntries)
	r.detail("CRL #%d of %s: %d entry, next update %s", crl.Number, s.Batch, r.sum.CRLEntries, crl.NextUpdate.UTC().Format(time.RFC3339))

	info, err := s.CA.CA(ctx, s.Batch)
	if err != nil {
		return err
	}
	issuer, err := x509.ParseCertificate(info.CertDER)
	if err != nil {
		return fmt.Errorf("reading the %s certificate: %w", s.Batch, err)
	}
	for _, probe := range []struct {
		rec store.Certificate
		dst *string
	}{{vc, &r.sum.OCSPRevoked}, {gc, &r.sum.OCSPGood}} {
		st, err := r.ocspStatus(ctx, probe.rec.DER, issuer)
		if err != nil {
			return err
		}
		*probe.dst = st
	}
	r.detail("OCSP through the repository (%s/ocsp): %s is %s, %s is %s", s.RepositoryURL, victim, r.sum.OCSPRevoked, good, r.sum.OCSPGood)

	opts, err := ca.VerifyOptions(ctx, s.DB.SMKI(), time.Now())
	if err != nil {
		return fmt.Errorf("verification options: %w", err)
	}
	opts.RequireRevocationInfo = true
	var ders [][]byte
	for _, p := range s.PartyList {
		for _, u := range p.Usages {
			ders = append(ders, p.Certificates[u])
		}
	}
	for after := int64(0); ; {
		cs, err := s.DB.SMKI().FindCertificates(ctx, store.CertQuery{CA: s.Batch, Kind: store.KindDevice, IncludeRevoked: true,
			AfterID: after, Limit: store.MaxLimit})
		if err != nil {
			return fmt.Errorf("listing the certificates of %s: %w", s.Batch, err)
		}
		for _, c := range cs {
			ders = append(ders, c.DER)
			after = c.ID
		}
		if len(cs) < store.MaxLimit {
			break
		}
	}
	for _, der := range ders {
		c, err := smki.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("reading a certificate back: %w", err)
		}
		switch _, err := smki.Verify(c, opts); {
		case err == nil:
			r.sum.Verified++
		case errors.Is(err, smki.ErrRevoked):
			r.sum.RefusedRevoked = true
			r.detail("path validation refuses the revoked one: %v", err)
		default:
			return fmt.Errorf("validating the certificate of %s: %w", c.EUI, err)
		}
	}
	r.detail("%d of %d certificate paths valid (root, OCA or device CA, CRLs)", r.sum.Verified, len(ders))
	return nil
}

// ocspStatus asks the repository's OCSP responder about a certificate.
func (r *run) ocspStatus(ctx context.Context, der []byte, issuer *x509.Certificate) (string, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("reading a device certificate: %w", err)
	}
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return "", fmt.Errorf("OCSP request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", r.sys.RepositoryURL+"/ocsp", bytes.NewReader(req))
	if err != nil {
		return "", err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	res, err := r.repo.Do(hr)
	if err != nil {
		return "", fmt.Errorf("OCSP: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return "", fmt.Errorf("OCSP: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: OCSP: %s", ErrAPI, res.Status)
	}
	resp, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		return "", fmt.Errorf("reading the OCSP response: %w", err)
	}
	switch resp.Status {
	case ocsp.Good:
		return "good", nil
	case ocsp.Revoked:
		return "revoked", nil
	}
	return "unknown", nil
}
