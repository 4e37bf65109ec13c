package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TrustSource is what VerifyOptions reads: the CAs and their latest CRLs
// (*store.SMKIStore satisfies it).
type TrustSource interface {
	CAs(ctx context.Context) ([]store.CA, error)
	LatestCRL(ctx context.Context, ca string) (store.CRL, error)
}

// VerifyOptions returns smki.VerifyOptions for validating at the given
// time against the store: the SMKI root(s) as trust anchors, the OCA and
// every Device CA (closed batches included: their certificates stay
// published) as intermediates, and the latest CRL of each SMKI CA.
func VerifyOptions(ctx context.Context, st TrustSource, at time.Time) (smki.VerifyOptions, error) {
	opts := smki.VerifyOptions{At: at}
	cas, err := st.CAs(ctx)
	if err != nil {
		return opts, fmt.Errorf("ca: listing CAs: %w", err)
	}
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
	return opts, nil
}
