package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/store"
)

// online reports whether rec is an online CA: one whose key signs outside
// ceremonies (the OCA, open device CA batches, the DCCKI TLS CA).
func online(rec store.CA) bool {
	return rec.Kind != store.CAKindRoot && rec.Kind != store.CAKindDCCKIRoot &&
		rec.State == store.CAStateActive && rec.KeyURI != ""
}

// Purposes of a LoadedKey.
const (
	// PurposeOnlineCA is an online CA's own key.
	PurposeOnlineCA = "online-ca"
	// PurposeOCSPResponder is a closed batch's delegated OCSP responder key
	// (decision record 013).
	PurposeOCSPResponder = "ocsp-responder"
)

// LoadedKey is a key LoadOnlineKeys loaded.
type LoadedKey struct {
	// CA is the CA's name.
	CA string
	// KeyURI is where its key is, as the store records it.
	KeyURI string
	// Purpose is PurposeOnlineCA or PurposeOCSPResponder.
	Purpose string
}

// LoadOnlineKeys loads the key of every online CA (never a root's) and the
// delegated OCSP responder key of every closed batch that has one, so that
// a service holding them finds a missing key at start rather than at its
// first request, and returns those loaded. A key that cannot be loaded is
// reported in the error, wrapping ErrKey, and the others are still loaded:
// requests to that CA are answered "no key" until it can be.
func (a *Authority) LoadOnlineKeys(ctx context.Context) ([]LoadedKey, error) {
	cas, err := a.st.CAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: listing CAs: %w", err)
	}
	var loaded []LoadedKey
	var errs []error
	for _, rec := range cas {
		if rec.Kind == store.CAKindDCA && rec.State == store.CAStateClosed {
			s, err := a.responder(ctx, rec.Name)
			switch {
			case errors.Is(err, ErrBatchClosed):
				// Closed without a responder: nothing to load.
			case err != nil:
				errs = append(errs, err)
			default:
				loaded = append(loaded, LoadedKey{CA: rec.Name, KeyURI: s.keyURI, Purpose: PurposeOCSPResponder})
			}
			continue
		}
		if !online(rec) {
			continue
		}
		if _, err := a.onlineIssuer(ctx, rec.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		loaded = append(loaded, LoadedKey{CA: rec.Name, KeyURI: rec.KeyURI, Purpose: PurposeOnlineCA})
	}
	return loaded, errors.Join(errs...)
}

// RefreshCRLs signs a new CRL for every online CA whose latest CRL's
// nextUpdate is within margin of now, or which has none, and returns how
// many it signed. margin must be positive and shorter than the CRL
// validity. Roots' CRLs are ceremonies and closed batches signed their
// final CRL as they closed: both are left alone. A CRL that cannot be
// signed does not stop the others; the errors are returned joined.
func (a *Authority) RefreshCRLs(ctx context.Context, margin time.Duration) (int, error) {
	if margin <= 0 || margin >= a.crlTTL {
		return 0, fmt.Errorf("%w: CRL refresh margin %s must be positive and shorter than the CRL validity %s", ErrRequest, margin, a.crlTTL)
	}
	cas, err := a.st.CAs(ctx)
	if err != nil {
		return 0, fmt.Errorf("ca: listing CAs: %w", err)
	}
	done := 0
	var errs []error
	for _, rec := range cas {
		if !online(rec) {
			continue
		}
		latest, err := a.st.LatestCRL(ctx, rec.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			errs = append(errs, fmt.Errorf("ca: latest CRL of %s: %w", rec.Name, err))
			continue
		case latest.NextUpdate.After(a.now().Add(margin)):
			continue
		}
		if _, err := a.CRL(ctx, rec.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		done++
	}
	if done > 0 {
		a.log.InfoContext(ctx, "CRLs signed ahead", "count", done, "margin", margin.String())
	}
	return done, errors.Join(errs...)
}

// Refresh re-signs what the repository serves before it goes stale: OCSP
// responses within half their validity of expiry (RefreshOCSP) and CRLs
// within half theirs (RefreshCRLs). It returns how many of each it signed.
func (a *Authority) Refresh(ctx context.Context) (ocsp, crls int, err error) {
	ocsp, oerr := a.RefreshOCSP(ctx, a.ocspTT/2)
	crls, cerr := a.RefreshCRLs(ctx, a.crlTTL/2)
	err = errors.Join(oerr, cerr)
	a.metrics.refreshDone(ocsp, crls, err, a.now())
	return ocsp, crls, err
}

// RunRefresher calls Refresh now and then every interval until ctx ends,
// logging failures and carrying on (the next run retries); it returns nil
// when ctx ends. every must be positive and shorter than half the OCSP
// response validity, so that a missed run leaves no response to expire.
func (a *Authority) RunRefresher(ctx context.Context, every time.Duration) error {
	if every <= 0 || every >= a.ocspTT/2 {
		return fmt.Errorf("%w: refresh interval %s must be positive and shorter than half the OCSP validity %s", ErrRequest, every, a.ocspTT)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, _, err := a.Refresh(ctx); err != nil && ctx.Err() == nil {
			a.log.ErrorContext(ctx, "refreshing OCSP responses and CRLs failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
