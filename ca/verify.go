package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"golang.org/x/crypto/ocsp"
)

// TrustSource is what VerifyOptions reads: the CAs, their latest CRLs and
// the stored OCSP responses (*store.SMKIStore satisfies it).
type TrustSource interface {
	CAs(ctx context.Context) ([]store.CA, error)
	LatestCRL(ctx context.Context, ca string) (store.CRL, error)
	OCSPResponse(ctx context.Context, ca string, serial []byte) (store.OCSPResponse, error)
}

// VerifyOptions returns smki.VerifyOptions for validating at the given
// time against the store: the SMKI root(s) as trust anchors, the OCA and
// every Device CA (closed batches included: their certificates stay
// published) as intermediates, the latest CRL of each SMKI CA, and for the
// certificates of closed batches their stored OCSP response, which a
// closed batch's delegated responder signs and which is authoritative for
// them (decision record 013): their final CRL does not list revocations
// made after closing. ctx is kept by the returned options' OCSP source for
// its look-ups.
func VerifyOptions(ctx context.Context, st TrustSource, at time.Time) (smki.VerifyOptions, error) {
	opts := smki.VerifyOptions{At: at}
	cas, err := st.CAs(ctx)
	if err != nil {
		return opts, fmt.Errorf("ca: listing CAs: %w", err)
	}
	closed := map[string]string{} // closed batch certificate DER -> CA name
	for _, rec := range cas {
		if !isSMKI(rec.Kind) {
			continue
		}
		c, err := smki.ParseCertificate(rec.CertDER)
		if err != nil {
			return opts, fmt.Errorf("ca: certificate of CA %s: %w", rec.Name, err)
		}
		if rec.Kind == store.CAKindRoot {
			opts.Roots = append(opts.Roots, c)
		} else {
			opts.Intermediates = append(opts.Intermediates, c)
		}
		if rec.Kind == store.CAKindDCA && rec.State == store.CAStateClosed {
			closed[string(rec.CertDER)] = rec.Name
		}
		crl, err := st.LatestCRL(ctx, rec.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return opts, fmt.Errorf("ca: CRL of %s: %w", rec.Name, err)
		}
		rl, err := x509.ParseRevocationList(crl.DER)
		if err != nil {
			return opts, fmt.Errorf("ca: CRL %d of %s: %w", crl.Number, rec.Name, err)
		}
		opts.CRLs = append(opts.CRLs, rl)
	}
	if len(opts.Roots) == 0 {
		return opts, fmt.Errorf("%w: no SMKI root in the store (run ca init)", ErrNotFound)
	}
	if len(closed) > 0 {
		opts.OCSP = func(c, issuer *smki.Certificate) ([]byte, error) {
			name, ok := closed[string(issuer.Raw)]
			if !ok {
				return nil, nil
			}
			return closedBatchOCSP(ctx, st, name, c, at)
		}
	}
	return opts, nil
}

// closedBatchOCSP returns the stored OCSP response about c, issued by the
// closed batch name, for validation at: nil when there is none (a batch
// closed before responders, whose responses ran out) or when at precedes it
// and it says nothing against c then (validation in the past: revocation is
// final, so a later "good", or a revocation after at, means c was good at
// at). Otherwise the response, which smki checks, refusing it when it is no
// longer current (the refresher has stopped: status unknown).
func closedBatchOCSP(ctx context.Context, st TrustSource, name string, c *smki.Certificate, at time.Time) ([]byte, error) {
	r, err := st.OCSPResponse(ctx, name, c.SerialNumber.Bytes())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ca: OCSP response for %s/%X: %w", name, c.SerialNumber, err)
	}
	if at.Before(r.ThisUpdate) {
		resp, err := ocsp.ParseResponse(r.DER, nil)
		if err != nil {
			return nil, fmt.Errorf("ca: stored OCSP response for %s/%X: %w", name, c.SerialNumber, err)
		}
		if resp.Status == ocsp.Good || (resp.Status == ocsp.Revoked && resp.RevokedAt.After(at)) {
			return nil, nil
		}
	}
	return r.DER, nil
}
