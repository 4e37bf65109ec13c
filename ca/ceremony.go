package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/store"
)

// InitRequest names the CAs the init ceremony creates. Empty names get the
// defaults shown.
// It is also the content of the ceremony's config file (JSON, see
// ReadInitRequest).
type InitRequest struct {
	RootName      string `json:"root_name"`       // CN of the SMKI Root CA (default "ZA")
	OCAName       string `json:"oca_name"`        // CN of the Organisation CA (default "Z1")
	DCCKIRootName string `json:"dccki_root_name"` // CN of the DCCKI root (default "metertrust DCCKI root")
	DCCKITLSName  string `json:"dccki_tls_name"`  // CN of the DCCKI TLS issuing CA (default "metertrust DCCKI TLS CA")
}

// ReadInitRequest decodes a ceremony config file strictly: unknown fields,
// trailing data and names that are empty after trimming or longer than 64
// characters are errors (Boulder's ceremony tool decodes its configs the
// same way).
func ReadInitRequest(r io.Reader) (InitRequest, error) {
	var req InitRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: ceremony config: %v", ErrRequest, err)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: ceremony config: trailing data", ErrRequest)
	}
	for name, v := range map[string]string{"root_name": req.RootName, "oca_name": req.OCAName,
		"dccki_root_name": req.DCCKIRootName, "dccki_tls_name": req.DCCKITLSName} {
		if v != "" && (strings.TrimSpace(v) == "" || len(v) > 64) {
			return req, fmt.Errorf("%w: ceremony config: %s %q: want 1-64 characters", ErrRequest, name, v)
		}
	}
	return req, nil
}

// CAInfo describes one CA, as ceremonies and "batch show" report it.
type CAInfo struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Parent    string    `json:"parent,omitempty"`
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotAfter  time.Time `json:"not_after"`
	Quota     int64     `json:"quota,omitempty"`
	Issued    int64     `json:"issued"`
	State     string    `json:"state"`
	Key       string    `json:"key"` // "present" or "destroyed"
	CreatedAt time.Time `json:"created_at"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	// Responder is a closed batch's delegated OCSP responder (decision
	// 013): its certificate's serial and whether its key is present.
	Responder *ResponderInfo `json:"ocsp_responder,omitempty"`
	// Purpose is a batch's purpose: "" for new devices, "rekey" for
	// device re-keys (decision 017).
	Purpose string `json:"purpose,omitempty"`
	CertDER []byte `json:"-"`
}

var batchNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// Init runs the init ceremony: the SMKI Root CA (self-signed, OU=00), the
// Organisation CA (OU=07, pathLen 0, signed by the root), the DCCKI root and
// its TLS issuing CA, and a first (empty) CRL for each root, which signs
// nothing else outside ceremonies. It refuses to run if any of these CAs
// exists. Every step is audited before and after.
func (a *Authority) Init(ctx context.Context, req InitRequest) ([]CAInfo, error) {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&req.RootName, "ZA")
	def(&req.OCAName, "Z1")
	def(&req.DCCKIRootName, "metertrust DCCKI root")
	def(&req.DCCKITLSName, "metertrust DCCKI TLS CA")
	for _, n := range []string{NameRoot, NameOCA, NameDCCKIRoot, NameDCCKITLS} {
		_, err := a.st.CA(ctx, n)
		switch {
		case err == nil:
			return nil, fmt.Errorf("%w: CA %s: the init ceremony has already run", ErrExists, n)
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("ca: init: %w", err)
		}
	}
	var out []CAInfo
	err := a.step(ctx, "ca.init", "smki+dccki", map[string]any{"root": req.RootName, "oca": req.OCAName,
		"dccki_root": req.DCCKIRootName, "dccki_tls": req.DCCKITLSName}, func() (map[string]any, error) {
		now := a.now()
		// SMKI root and OCA.
		root, rootKey, err := a.createRoot(ctx, NameRoot, store.CAKindRoot, func(pub crypto.PublicKey) (*template, error) {
			return rootTemplate(pub, req.RootName, now)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, root)
		oca, err := a.createSubCA(ctx, NameOCA, store.CAKindOCA, "", 0, NameRoot, rootKey, func(pub crypto.PublicKey) (*template, error) {
			return ocaTemplate(pub, req.OCAName, now)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, oca)
		// DCCKI root and TLS CA.
		troot, trootKey, err := a.createRoot(ctx, NameDCCKIRoot, store.CAKindDCCKIRoot, func(pub crypto.PublicKey) (*template, error) {
			return tlsCATemplate(KindTLSRoot, pub, req.DCCKIRootName, now)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, troot)
		tca, err := a.createSubCA(ctx, NameDCCKITLS, store.CAKindDCCKITLS, "", 0, NameDCCKIRoot, trootKey, func(pub crypto.PublicKey) (*template, error) {
			return tlsCATemplate(KindTLSCA, pub, req.DCCKITLSName, now)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, tca)
		for _, r := range []struct {
			name string
			key  crypto.Signer
		}{{NameRoot, rootKey}, {NameDCCKIRoot, trootKey}} {
			rec, err := a.st.CA(ctx, r.name)
			if err != nil {
				return nil, fmt.Errorf("ca: init: %w", err)
			}
			iss, err := a.newIssuer(rec, r.key)
			if err != nil {
				return nil, err
			}
			if _, err := a.signCRL(ctx, iss, rootCRLValidity); err != nil {
				return nil, err
			}
		}
		return map[string]any{"cas": len(out)}, nil
	})
	return out, err
}

// rootCRLValidity is the nextUpdate of a root's CRL: roots sign only in
// ceremonies, so their CRLs are long-lived (our rule).
const rootCRLValidity = 365 * 24 * time.Hour

func (a *Authority) createRoot(ctx context.Context, name, kind string, mk func(crypto.PublicKey) (*template, error)) (CAInfo, crypto.Signer, error) {
	var info CAInfo
	var key crypto.Signer
	err := a.step(ctx, "ca.ceremony."+kind, name, nil, func() (map[string]any, error) {
		uri, k, err := a.createKey(ctx, name)
		if err != nil {
			return nil, err
		}
		t, err := mk(k.Public())
		if err != nil {
			return nil, err
		}
		is, err := a.sign(ctx, nil, k, t)
		if err != nil {
			return nil, err
		}
		is.record.CA = name
		rec := store.CA{Name: name, Kind: kind, CertDER: is.der, KeyURI: uri, State: store.CAStateActive, CreatedAt: a.now().UTC()}
		if err := a.st.CreateCA(ctx, rec); err != nil {
			return nil, fmt.Errorf("ca: recording CA %s: %w", name, err)
		}
		if err := a.st.PutCertificates(ctx, is.record); err != nil {
			return nil, fmt.Errorf("ca: recording certificate of CA %s: %w", name, err)
		}
		key = k
		info = caInfo(rec, is.cert, "present")
		return map[string]any{"serial": info.Serial, "key_uri": uri, "subject": info.Subject}, nil
	})
	return info, key, err
}

func (a *Authority) createSubCA(ctx context.Context, name, kind, purpose string, quota int64, parent string, parentKey crypto.Signer, mk func(crypto.PublicKey) (*template, error)) (CAInfo, error) {
	var info CAInfo
	err := a.step(ctx, "ca.ceremony."+kind, name, map[string]any{"parent": parent, "quota": quota, "purpose": purpose}, func() (map[string]any, error) {
		prec, err := a.st.CA(ctx, parent)
		if err != nil {
			return nil, fmt.Errorf("ca: loading parent %s: %w", parent, err)
		}
		piss, err := a.newIssuer(prec, parentKey)
		if err != nil {
			return nil, err
		}
		label := name
		if kind == store.CAKindDCA {
			label = "dca-" + name
		}
		uri, k, err := a.createKey(ctx, label)
		if err != nil {
			return nil, err
		}
		t, err := mk(k.Public())
		if err != nil {
			return nil, err
		}
		is, err := a.sign(ctx, piss, nil, t)
		if err != nil {
			return nil, err
		}
		rec := store.CA{Name: name, Kind: kind, Parent: parent, CertDER: is.der, KeyURI: uri, Quota: quota,
			Purpose: purpose, State: store.CAStateActive, CreatedAt: a.now().UTC()}
		if err := a.st.CreateCA(ctx, rec); err != nil {
			if errors.Is(err, store.ErrExists) {
				return nil, fmt.Errorf("%w: CA %s", ErrExists, name)
			}
			return nil, fmt.Errorf("ca: recording CA %s: %w", name, err)
		}
		if err := a.st.PutCertificates(ctx, is.record); err != nil {
			return nil, fmt.Errorf("ca: recording certificate of CA %s: %w", name, err)
		}
		// A first, empty CRL, so relying parties find revocation information
		// for the new CA from the start.
		niss, err := a.newIssuer(rec, k)
		if err != nil {
			return nil, err
		}
		if _, err := a.signCRL(ctx, niss, a.crlTTL); err != nil {
			return nil, err
		}
		info = caInfo(rec, is.cert, "present")
		return map[string]any{"serial": info.Serial, "key_uri": uri, "subject": info.Subject}, nil
	})
	return info, err
}

func caInfo(rec store.CA, c *x509.Certificate, key string) CAInfo {
	info := CAInfo{Name: rec.Name, Kind: rec.Kind, Parent: rec.Parent, Quota: rec.Quota, Issued: rec.Issued,
		State: rec.State, Key: key, CreatedAt: rec.CreatedAt, ClosedAt: rec.ClosedAt, CertDER: rec.CertDER, Purpose: rec.Purpose}
	if c == nil {
		c, _ = x509.ParseCertificate(rec.CertDER)
	}
	if c != nil {
		info.Subject = c.Subject.String()
		info.Serial = fmt.Sprintf("%X", c.SerialNumber.Bytes())
		info.NotAfter = c.NotAfter
	}
	return info
}

// OpenBatch runs the batch ceremony: a new Device CA named name (CN=name),
// signed by the root, allowed to issue quota device certificates for new
// devices. It loads the root key for this ceremony only.
func (a *Authority) OpenBatch(ctx context.Context, name string, quota int64) (CAInfo, error) {
	return a.OpenBatchFor(ctx, name, quota, "")
}

// Batch purposes, as OpenBatchFor takes them.
const (
	PurposeNew   = ""
	PurposeRekey = store.CAPurposeRekey
)

// OpenBatchFor is OpenBatch for a purpose: PurposeNew (new devices: the
// manufacturers' requests and provisioning imports) or PurposeRekey (the
// re-key certificates of devices already in the inventory, IssueRekey).
// A batch issues for its own purpose only (decision 017).
func (a *Authority) OpenBatchFor(ctx context.Context, name string, quota int64, purpose string) (CAInfo, error) {
	if err := checkBatch(name, quota, purpose); err != nil {
		return CAInfo{}, err
	}
	if _, err := a.st.CA(ctx, name); err == nil {
		return CAInfo{}, fmt.Errorf("%w: CA %s", ErrExists, name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return CAInfo{}, fmt.Errorf("ca: opening batch %s: %w", name, err)
	}
	root, err := a.st.CA(ctx, NameRoot)
	if err != nil {
		return CAInfo{}, fmt.Errorf("%w: root CA (run ca init first): %v", ErrNotFound, err)
	}
	rootKey, err := a.keys.Signer(ctx, root.KeyURI)
	if err != nil {
		return CAInfo{}, fmt.Errorf("ca: loading the root key for the batch ceremony: %w", err)
	}
	now := a.now()
	return a.createSubCA(ctx, name, store.CAKindDCA, purpose, quota, NameRoot, rootKey, func(pub crypto.PublicKey) (*template, error) {
		return dcaTemplate(pub, name, now)
	})
}

func checkBatch(name string, quota int64, purpose string) error {
	switch {
	case purpose != PurposeNew && purpose != PurposeRekey:
		return fmt.Errorf("%w: batch purpose %q: want %q or none", ErrRequest, purpose, PurposeRekey)
	case !batchNameRE.MatchString(name):
		return fmt.Errorf("%w: batch name %q: want 1-32 letters, digits, '_' or '-'", ErrRequest, name)
	case name == NameRoot || name == NameOCA || name == NameDCCKIRoot || name == NameDCCKITLS:
		return fmt.Errorf("%w: batch name %q is reserved", ErrRequest, name)
	case quota <= 0:
		return fmt.Errorf("%w: batch quota %d: must be positive", ErrRequest, quota)
	}
	return nil
}

// BatchProposal is the action of a batch-open proposal (two-person
// control, decision 023): the batch the offline ceremony (ca batch open
// --proposal) opens once a second operator approved it in the CA service.
type BatchProposal struct {
	// Name is the batch name, also the Device CA's CN.
	Name string `json:"name"`
	// Quota is the device certificates the batch may issue.
	Quota int64 `json:"quota"`
	// Purpose is "new" (new devices) or "rekey" (device re-keys), as the
	// CLI's --purpose takes it.
	Purpose string `json:"purpose"`
}

// BatchPurpose maps a purpose as the CLI and BatchProposal write it ("new"
// or "rekey"; "" for new) to OpenBatchFor's.
func BatchPurpose(s string) (string, error) {
	switch s {
	case "", "new":
		return PurposeNew, nil
	case PurposeRekey:
		return PurposeRekey, nil
	}
	return "", fmt.Errorf("%w: batch purpose %q: want new or rekey", ErrRequest, s)
}

// Check validates b as OpenBatchFor would, without opening anything.
func (b BatchProposal) Check() error {
	purpose, err := BatchPurpose(b.Purpose)
	if err != nil {
		return err
	}
	return checkBatch(b.Name, b.Quota, purpose)
}

// Batch reports a batch Device CA: quota, issued, state and whether its key
// is present in the key store or destroyed.
func (a *Authority) Batch(ctx context.Context, name string) (CAInfo, error) {
	rec, err := a.st.CA(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return CAInfo{}, fmt.Errorf("%w: batch %q", ErrNotFound, name)
		}
		return CAInfo{}, fmt.Errorf("ca: batch %s: %w", name, err)
	}
	if rec.Kind != store.CAKindDCA {
		return CAInfo{}, fmt.Errorf("%w: %s is a %s CA, not a batch", ErrRequest, name, rec.Kind)
	}
	key := "destroyed"
	if rec.KeyURI != "" {
		if _, err := a.keys.Signer(ctx, rec.KeyURI); err == nil {
			key = "present"
		} else {
			key = "missing"
		}
	}
	info := caInfo(rec, nil, key)
	if r, err := a.st.OCSPResponder(ctx, name); err == nil {
		ri := &ResponderInfo{Serial: fmt.Sprintf("%X", r.Serial), Key: "present"}
		if _, err := a.keys.Signer(ctx, r.KeyURI); err != nil {
			ri.Key = "missing"
		}
		info.Responder = ri
	}
	return info, nil
}

// ResponderInfo describes a closed batch's delegated OCSP responder.
type ResponderInfo struct {
	Serial string `json:"serial"`
	Key    string `json:"key"` // "present" or "missing"
}

// CA returns the record of the named CA.
func (a *Authority) CA(ctx context.Context, name string) (CAInfo, error) {
	rec, err := a.st.CA(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return CAInfo{}, fmt.Errorf("%w: CA %q", ErrNotFound, name)
		}
		return CAInfo{}, fmt.Errorf("ca: CA %s: %w", name, err)
	}
	key := "destroyed"
	if rec.KeyURI != "" {
		key = "present"
	}
	return caInfo(rec, nil, key), nil
}

// CloseBatch closes a batch Device CA: its key certifies the batch's
// delegated OCSP responder (decision record 013: a new key in the key
// custody, labelled "<batch>-ocsp-responder", which signs the OCSP responses
// about the batch's certificates from then on), signs a final CRL
// (nextUpdate 99991231235959Z) and is then destroyed in the key store (and
// checked to no longer load), each step audited, and the CA marked closed.
// Its certificate stays published. Closing a closed batch fails with
// ErrBatchClosed.
func (a *Authority) CloseBatch(ctx context.Context, name, reason string) error {
	if reason == "" {
		reason = "closed by operator"
	}
	rec, err := a.st.CA(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: batch %q", ErrNotFound, name)
		}
		return fmt.Errorf("ca: closing batch %s: %w", name, err)
	}
	if rec.Kind != store.CAKindDCA {
		return fmt.Errorf("%w: %s is a %s CA, not a batch", ErrRequest, name, rec.Kind)
	}
	if rec.State != store.CAStateActive {
		return fmt.Errorf("%w: %s already closed", ErrBatchClosed, name)
	}
	if iss := a.forget(name); iss != nil {
		// Wait for signers that reserved quota; later ones find the batch
		// closed when they reserve.
		iss.inflight.Lock()
		defer iss.inflight.Unlock()
	}
	return a.step(ctx, "ca.batch.close", name, map[string]any{"reason": reason, "issued": rec.Issued, "quota": rec.Quota}, func() (map[string]any, error) {
		if err := a.certifyResponder(ctx, rec); err != nil {
			return nil, err
		}
		var final int64
		err := a.step(ctx, "ca.batch.key-destroy", name, map[string]any{"key_uri": rec.KeyURI}, func() (map[string]any, error) {
			key, err := a.keys.Signer(ctx, rec.KeyURI)
			if err != nil {
				// Already gone (an earlier close destroyed it, then failed
				// to record): nothing left to destroy.
				return map[string]any{"verified": "key does not load", "already_absent": true}, nil
			}
			// The last thing the key signs: a final CRL, valid until
			// 99991231235959Z, so the revocation state of the batch's
			// certificates stays published.
			iss, err := a.newIssuer(rec, key)
			if err != nil {
				return nil, err
			}
			crl, err := a.signCRL(ctx, iss, finalCRL)
			if err != nil {
				return nil, fmt.Errorf("ca: final CRL of %s: %w", name, err)
			}
			final = crl.Number
			if err := a.keys.Destroy(ctx, rec.KeyURI); err != nil {
				return nil, err
			}
			return map[string]any{"verified": "key does not load", "final_crl": final}, nil
		})
		if err != nil {
			return nil, err
		}
		if err := a.st.CloseCA(ctx, name, a.now().UTC()); err != nil {
			if errors.Is(err, store.ErrClosed) {
				return nil, fmt.Errorf("%w: %s: %v", ErrBatchClosed, name, err)
			}
			return nil, fmt.Errorf("ca: recording close of %s: %w", name, err)
		}
		return map[string]any{"state": store.CAStateClosed}, nil
	})
}

// createKey creates a CA key in the custody. A key that already exists
// (custody.ErrExists) is a ceremony that would overwrite: ErrExists.
func (a *Authority) createKey(ctx context.Context, label string) (string, crypto.Signer, error) {
	uri, k, err := a.keys.CreateKey(ctx, label)
	if errors.Is(err, custody.ErrExists) {
		return "", nil, fmt.Errorf("%w: %w", ErrExists, err)
	}
	return uri, k, err
}
