package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/metertrust/metertrust/store"
)

// A batch Device CA certifies a delegated OCSP responder (RFC 6960 section
// 4.2.2.2) as it closes, just before its key is destroyed (decision record
// 013). The responder's key, made and kept by the key custody, signs the
// OCSP responses about the batch's certificates from then on: revocations
// after closing (the batch's final CRL does not change: OCSP is
// authoritative for closed batches) and the refresher's re-signing. It
// signs nothing else, and nothing but those responses verifies under it.

// ocspSigner signs the OCSP responses about one CA's certificates: the CA
// itself, or for a closed batch its delegated responder.
type ocspSigner struct {
	ca         string            // the issuing CA's name
	issuer     *x509.Certificate // its certificate, which the responses' CertID names
	lintIssuer *x509.Certificate // issuer with the throwaway key as its public key
	responder  *x509.Certificate // the delegated responder; nil when the CA signs
	key        crypto.Signer     // the CA's key, or the responder's
	keyURI     string            // the responder key's URI ("" when the CA signs)
	// goodLinted is set once a "good" response of this signer passed the
	// full lints (see signOCSP); shared by every ocspSigner of one issuer.
	goodLinted *atomic.Bool
}

func (iss *issuer) ocspSigner() *ocspSigner {
	return &ocspSigner{ca: iss.rec.Name, issuer: iss.cert, lintIssuer: iss.lintParent, key: iss.key, goodLinted: &iss.goodOCSPLinted}
}

// ocspSignerFor returns the signer of the OCSP responses about the named
// CA's certificates: the online CA, or the delegated responder of a closed
// batch. A batch closed without a responder gives ErrBatchClosed.
func (a *Authority) ocspSignerFor(ctx context.Context, name string) (*ocspSigner, error) {
	iss, err := a.onlineIssuer(ctx, name)
	if err == nil {
		return iss.ocspSigner(), nil
	}
	if !errors.Is(err, ErrBatchClosed) {
		return nil, err
	}
	return a.responder(ctx, name)
}

// responderLabel is the key custody label of batch name's responder key.
func responderLabel(name string) string { return name + "-ocsp-responder" }

// responder returns the delegated OCSP responder of the closed batch name,
// loading its key on first use. A batch closed without one (before
// responders were certified, or whose key was gone when it closed) gives
// ErrBatchClosed saying so.
func (a *Authority) responder(ctx context.Context, name string) (*ocspSigner, error) {
	a.mu.Lock()
	s, ok := a.responders[name]
	a.mu.Unlock()
	if ok {
		return s, nil
	}
	r, err := a.st.OCSPResponder(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s was closed without a delegated OCSP responder (closed before decision record 013, "+
			"or its key was already gone): no key can sign the status of its certificates, and its final CRL cannot change; "+
			"revoke the batch's own certificate at the root instead (ca revoke --ca %s --serial <DCA serial>, then ca crl --ca %s)",
			ErrBatchClosed, name, NameRoot, NameRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: OCSP responder of %s: %w", name, err)
	}
	rec, err := a.st.CA(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("ca: loading CA %s: %w", name, err)
	}
	caCert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: reading certificate of CA %s: %w", name, err)
	}
	rc, err := x509.ParseCertificate(r.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: reading the OCSP responder certificate of %s: %w", name, err)
	}
	key, err := a.keys.Signer(ctx, r.KeyURI)
	if err != nil {
		return nil, fmt.Errorf("ca: loading the OCSP responder key of %s: %w", name, err)
	}
	if !publicKeysEqual(rc.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: OCSP responder key of %s does not match its certificate", ErrKey, name)
	}
	lp := *caCert
	lp.PublicKey = a.lintKey.Public()
	s = &ocspSigner{ca: name, issuer: caCert, lintIssuer: &lp, responder: rc, key: key, keyURI: r.KeyURI, goodLinted: new(atomic.Bool)}
	a.mu.Lock()
	a.responders[name] = s
	a.mu.Unlock()
	return s, nil
}

// certifyResponder has the batch rec, about to close, certify its delegated
// OCSP responder: a new P-256 key in the key custody and a certificate
// issued by the batch (responderTemplate), published with the batch's
// certificates and recorded as its responder. A batch that already has one
// (an earlier close that failed later) keeps it. A batch whose key is
// already gone cannot certify one and closes without it.
func (a *Authority) certifyResponder(ctx context.Context, rec store.CA) error {
	if _, err := a.st.OCSPResponder(ctx, rec.Name); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("ca: OCSP responder of %s: %w", rec.Name, err)
	}
	batchKey, err := a.keys.Signer(ctx, rec.KeyURI)
	if err != nil {
		a.log.WarnContext(ctx, "batch key already gone: no OCSP responder can be certified", "batch", rec.Name, "err", err)
		return nil
	}
	iss, err := a.newIssuer(rec, batchKey)
	if err != nil {
		return err
	}
	label := responderLabel(rec.Name)
	return a.step(ctx, "ca.batch.ocsp-responder", rec.Name, map[string]any{"label": label}, func() (map[string]any, error) {
		uri, key, err := a.createKey(ctx, label)
		if err != nil {
			return nil, err
		}
		recorded := false
		defer func() {
			if !recorded {
				// Not certified: the key must not outlive the failure.
				if err := a.keys.Destroy(context.WithoutCancel(ctx), uri); err != nil {
					a.log.ErrorContext(ctx, "destroying an uncertified OCSP responder key failed", "batch", rec.Name, "err", err)
				}
			}
		}()
		t, err := responderTemplate(key.Public(), rec.Name, a.now())
		if err != nil {
			return nil, err
		}
		is, err := a.sign(ctx, iss, nil, t)
		if err != nil {
			return nil, err
		}
		if err := a.st.PutCertificates(ctx, is.record); err != nil {
			return nil, fmt.Errorf("ca: publishing the OCSP responder certificate of %s: %w", rec.Name, err)
		}
		r := store.OCSPResponder{CA: rec.Name, KeyURI: uri, Serial: is.record.Serial, CertDER: is.der, CreatedAt: a.now().UTC()}
		if err := a.st.PutOCSPResponder(ctx, r); err != nil {
			return nil, fmt.Errorf("ca: recording the OCSP responder of %s: %w", rec.Name, err)
		}
		recorded = true
		return map[string]any{"serial": fmt.Sprintf("%X", is.record.Serial), "key_uri": uri,
			"subject": is.cert.Subject.String(), "not_after": is.cert.NotAfter.Format("20060102150405Z")}, nil
	})
}
