package repository

import (
	"bytes"
	"context"
	"crypto"
	_ "crypto/sha1" // OCSP CertIDs hash with SHA-1 (RFC 5019 section 2.2.1) or SHA-2
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/store"
)

// ErrOCSPNotAnswered is returned by StoredOCSP.Respond, together with the
// unsigned OCSP error response to send, for a request it does not answer
// with a signed response: malformed, about an unknown issuer or a
// certificate with no stored response ("unauthorized"), or whose stored
// response has expired ("tryLater").
var ErrOCSPNotAnswered = errors.New("repository: OCSP request not answered")

// OCSPSource is what StoredOCSP reads: the CA certificates and the
// responses the CAs signed ahead of time; *store.SMKIStore satisfies it.
type OCSPSource interface {
	CAs(ctx context.Context) ([]store.CA, error)
	OCSPResponse(ctx context.Context, ca string, serial []byte) (store.OCSPResponse, error)
}

// StoredOCSP answers OCSP requests (RFC 6960) with the responses the CAs
// signed ahead of time into the store (decision record 010): it holds no
// key and signs nothing. It finds the issuer a request names among the
// store's CA certificates by its name and key hashes and returns the stored
// response for (CA, serial) as it is. As RFC 5019 section 2.2.3 allows and
// Boulder does, a request it has no response for (an unknown issuer, a
// certificate issued by a root, a serial never issued) gets the unsigned
// "unauthorized" error response, and a stored response past its nextUpdate
// (the CA's refresher has stopped) gets "tryLater" and a warning in the log,
// never the stale response.
type StoredOCSP struct {
	src OCSPSource
	log *slog.Logger
	now func() time.Time
}

// NewStoredOCSP returns the answerer over src. log receives a warning per
// stale response (nil discards it); now is the clock (nil: time.Now).
func NewStoredOCSP(src OCSPSource, log *slog.Logger, now func() time.Time) *StoredOCSP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &StoredOCSP{src: src, log: log.With("component", "ocsp"), now: now}
}

// Respond parses a DER OCSP request and returns the stored DER response
// about the certificate it names. A request it does not answer gets an OCSP
// error response together with an error wrapping ErrOCSPNotAnswered; a store
// failure gets internalError and the store's error.
func (o *StoredOCSP) Respond(ctx context.Context, der []byte) ([]byte, error) {
	q, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: malformed request: %v", ErrOCSPNotAnswered, err)
	}
	caName, err := o.issuer(ctx, q)
	if err != nil {
		if errors.Is(err, ErrOCSPNotAnswered) {
			return ocsp.UnauthorizedErrorResponse, err
		}
		return ocsp.InternalErrorErrorResponse, err
	}
	serial := q.SerialNumber.Bytes()
	r, err := o.src.OCSPResponse(ctx, caName, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ocsp.UnauthorizedErrorResponse, fmt.Errorf("%w: no response stored for %s/%X", ErrOCSPNotAnswered, caName, serial)
	case err != nil:
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("repository: OCSP look-up of %s/%X: %w", caName, serial, err)
	}
	if now := o.now(); !now.Before(r.NextUpdate) {
		o.log.WarnContext(ctx, "stored OCSP response expired: is the CA's OCSP refresher running?",
			"ca", caName, "serial", fmt.Sprintf("%X", serial), "next_update", r.NextUpdate.Format(time.RFC3339))
		return ocsp.TryLaterErrorResponse, fmt.Errorf("%w: response for %s/%X expired at %s", ErrOCSPNotAnswered, caName, serial, r.NextUpdate.Format(time.RFC3339))
	}
	return r.DER, nil
}

// issuer returns the name of the CA whose certificate the request's name
// and key hashes match.
func (o *StoredOCSP) issuer(ctx context.Context, q *ocsp.Request) (string, error) {
	if !supportedCertIDHash(q.HashAlgorithm) {
		return "", fmt.Errorf("%w: CertID hash %v not supported", ErrOCSPNotAnswered, q.HashAlgorithm)
	}
	cas, err := o.src.CAs(ctx)
	if err != nil {
		return "", fmt.Errorf("repository: OCSP: listing CAs: %w", err)
	}
	for _, rec := range cas {
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil {
			continue
		}
		if matchesIssuer(q, c) {
			return rec.Name, nil
		}
	}
	return "", fmt.Errorf("%w: unknown issuer", ErrOCSPNotAnswered)
}

func supportedCertIDHash(h crypto.Hash) bool {
	return h == crypto.SHA1 || h == crypto.SHA256 || h == crypto.SHA384 || h == crypto.SHA512
}

// matchesIssuer reports whether the request's CertID names c: the hash of
// its subject DN and of its subjectPublicKey BIT STRING (RFC 6960 section
// 4.1.1).
func matchesIssuer(q *ocsp.Request, c *x509.Certificate) bool {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) != 0 {
		return false
	}
	h := q.HashAlgorithm.New()
	h.Write(spki.PublicKey.RightAlign())
	if !bytes.Equal(h.Sum(nil), q.IssuerKeyHash) {
		return false
	}
	h.Reset()
	h.Write(c.RawSubject)
	return bytes.Equal(h.Sum(nil), q.IssuerNameHash)
}
