package custody

// This file is the PKCS#11 backend for keys that must derive: it speaks
// PKCS#11 through github.com/miekg/pkcs11 (decision record 003), because
// go.step.sm/crypto/kms, over crypto11, signs but does not derive. Keys
// are named by full PKCS#11 URIs:
//
//	pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=dcc;id=%01;object=acb-ka?pin-value=1234
//
// The shared secret Z comes back to the caller (the router keeps it in its
// bounded per-device cache, as it does for file keys); the private key does
// not.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime"
	"sync"

	"github.com/miekg/pkcs11"
	"go.step.sm/crypto/kms/uri"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// oidP256 is the namedCurve of CKA_EC_PARAMS for P-256.
var oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}

// Token is a P-256 private key in a PKCS#11 token, for key agreement
// (CKM_ECDH1_DERIVE) and for signing its own certificate request. It is a
// crypto.Signer and an Agreement, and is safe for concurrent use: each call
// takes one of the key's sessions.
type Token struct {
	ctx      *pkcs11.Ctx
	owned    bool // this Token initialised the module, so finalises it
	slot     uint
	pin      string
	id       []byte
	label    string
	public   *ecdh.PublicKey
	sessions chan pkcs11.SessionHandle

	mu     sync.Mutex
	closed bool
}

// where identifies a token and a key within it.
type where struct {
	module, token, pin, label string
	id                        []byte
}

func parse(rawuri string) (where, error) {
	u, err := uri.ParseWithScheme("pkcs11", rawuri)
	if err != nil {
		// Not the parser's message: it may quote the URI, and with it a PIN.
		return where{}, fmt.Errorf("%w: not a pkcs11: URI", ErrConfig)
	}
	w := where{module: u.Get("module-path"), token: u.Get("token"), pin: u.Pin(), label: u.Get("object"), id: u.GetEncoded("id")}
	switch {
	case w.module == "":
		return where{}, fmt.Errorf("%w: the URI names no module-path", ErrConfig)
	case w.token == "":
		return where{}, fmt.Errorf("%w: the URI names no token", ErrConfig)
	case len(w.id) == 0 && w.label == "":
		return where{}, fmt.Errorf("%w: the URI names no key: give id= or object=", ErrConfig)
	}
	return w, nil
}

// open loads the module and finds the token's slot. owned reports whether
// this call initialised the module (another user in the process, such as
// the CAs' key manager, may have): only then may finish finalise it.
func open(w where) (p *pkcs11.Ctx, slot uint, owned bool, err error) {
	p = pkcs11.New(w.module)
	if p == nil {
		return nil, 0, false, fmt.Errorf("%w: cannot load PKCS#11 module %s", ErrConfig, w.module)
	}
	owned = true
	if err := p.Initialize(); err != nil {
		if !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			p.Destroy()
			return nil, 0, false, fmt.Errorf("custody: initialising %s: %w", w.module, err)
		}
		owned = false
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		finish(p, owned)
		return nil, 0, false, fmt.Errorf("custody: listing slots: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && ti.Label == w.token {
			return p, s, owned, nil
		}
	}
	finish(p, owned)
	return nil, 0, false, fmt.Errorf("%w: no token labelled %q in %s", ErrConfig, w.token, w.module)
}

func finish(p *pkcs11.Ctx, owned bool) {
	if owned {
		_ = p.Finalize()
	}
	p.Destroy()
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// newKey opens the token the URI names for the key it names, keeping up to
// idle sessions open.
func newKey(rawuri string, idle int) (*Token, error) {
	w, err := parse(rawuri)
	if err != nil {
		return nil, err
	}
	p, slot, owned, err := open(w)
	if err != nil {
		return nil, err
	}
	return &Token{ctx: p, owned: owned, slot: slot, pin: w.pin, id: w.id, label: w.label,
		sessions: make(chan pkcs11.SessionHandle, idle)}, nil
}

// OpenToken finds the key-agreement private key the URI names. The key must be a
// P-256 EC private key with CKA_DERIVE set, and its public key must be in the
// token too (same id or label), as GenerateToken leaves it.
func OpenToken(rawuri string) (*Token, error) {
	k, err := newKey(rawuri, max(2, runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, err
	}
	if err := k.load(); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// load checks the private key and reads the public key.
func (k *Token) load() error {
	s, err := k.session()
	if err != nil {
		return err
	}
	defer k.release(s)
	priv, err := k.find(s, pkcs11.CKO_PRIVATE_KEY)
	if err != nil {
		return err
	}
	attrs, err := k.ctx.GetAttributeValue(s, priv, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, nil)})
	if err != nil {
		return fmt.Errorf("custody: reading the key's attributes: %w", err)
	}
	if !bytes.Equal(attrs[0].Value, ulong(pkcs11.CKK_EC)) {
		return fmt.Errorf("%w: %s is not an EC key", ErrConfig, k.name())
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(attrs[1].Value, &curve); err != nil || !curve.Equal(oidP256) {
		return fmt.Errorf("%w: %s is not a P-256 key", ErrConfig, k.name())
	}
	if len(attrs[2].Value) != 1 || attrs[2].Value[0] == 0 {
		return fmt.Errorf("%w: %s may not derive (CKA_DERIVE is false): it is not a key-agreement key", ErrConfig, k.name())
	}
	pub, err := k.find(s, pkcs11.CKO_PUBLIC_KEY)
	if err != nil {
		return err
	}
	pa, err := k.ctx.GetAttributeValue(s, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return fmt.Errorf("custody: reading the public key of %s: %w", k.name(), err)
	}
	var point []byte
	if _, err := asn1.Unmarshal(pa[0].Value, &point); err != nil {
		point = pa[0].Value // some tokens store the bare point
	}
	if k.public, err = ecdh.P256().NewPublicKey(point); err != nil {
		return fmt.Errorf("custody: the public key of %s: %w", k.name(), err)
	}
	return nil
}

func (k *Token) name() string {
	if k.label != "" {
		return fmt.Sprintf("key %q", k.label)
	}
	return fmt.Sprintf("key id %X", k.id)
}

// ulong is a CK_ULONG attribute value as the module returns it.
func ulong(v uint) []byte { return pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, v).Value }

func (k *Token) template(class uint) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if len(k.id) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, k.id))
	}
	if k.label != "" {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.label))
	}
	return t
}

// absent checks that no key object in the token has the URI's id or its
// label, so that a new key pair can take both.
func (k *Token) absent(s pkcs11.SessionHandle) error {
	var attrs []*pkcs11.Attribute
	if len(k.id) > 0 {
		attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_ID, k.id))
	}
	if k.label != "" {
		attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.label))
	}
	for _, a := range attrs {
		if err := k.ctx.FindObjectsInit(s, []*pkcs11.Attribute{a}); err != nil {
			return fmt.Errorf("custody: searching the token: %w", err)
		}
		objs, _, err := k.ctx.FindObjects(s, 1)
		if ferr := k.ctx.FindObjectsFinal(s); err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("custody: searching the token: %w", err)
		}
		if len(objs) > 0 {
			return fmt.Errorf("%w: the token already holds a key with the id or label of %s", ErrExists, k.name())
		}
	}
	return nil
}

// find returns the one object of class the URI names.
func (k *Token) find(s pkcs11.SessionHandle, class uint) (pkcs11.ObjectHandle, error) {
	if err := k.ctx.FindObjectsInit(s, k.template(class)); err != nil {
		return 0, fmt.Errorf("custody: searching the token: %w", err)
	}
	objs, _, err := k.ctx.FindObjects(s, 2)
	if ferr := k.ctx.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, fmt.Errorf("custody: searching the token: %w", err)
	}
	what := "private"
	if class == pkcs11.CKO_PUBLIC_KEY {
		what = "public"
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("%w: no %s %s in the token", ErrConfig, what, k.name())
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("%w: more than one %s %s in the token", ErrConfig, what, k.name())
}

// session takes an idle session or opens a new one, logged in.
func (k *Token) session() (pkcs11.SessionHandle, error) {
	select {
	case s := <-k.sessions:
		return s, nil
	default:
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return 0, errors.New("custody: key closed")
	}
	s, err := k.ctx.OpenSession(k.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("custody: opening a session: %w", err)
	}
	// The login state is the token's, shared by all sessions of the process.
	if err := k.ctx.Login(s, pkcs11.CKU_USER, k.pin); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = k.ctx.CloseSession(s)
		return 0, fmt.Errorf("custody: logging in to the token: %w", err)
	}
	return s, nil
}

// release returns s to the idle sessions, or closes it when enough are idle.
func (k *Token) release(s pkcs11.SessionHandle) {
	select {
	case k.sessions <- s:
	default:
		_ = k.ctx.CloseSession(s)
	}
}

// PublicKey returns the key's public key in ECDH form (Agreement).
func (k *Token) PublicKey() *ecdh.PublicKey { return k.public }

// ECDH returns the raw shared secret Z (the x coordinate, 32 bytes) of the
// key and peer, derived in the token with CKM_ECDH1_DERIVE and no KDF.
func (k *Token) ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, errors.New("custody: key agreement needs a P-256 peer key")
	}
	s, err := k.session()
	if err != nil {
		return nil, err
	}
	z, err := k.derive(s, peer.Bytes())
	if err != nil {
		// A session that failed may be in any state: drop it.
		_ = k.ctx.CloseSession(s)
		return nil, err
	}
	k.release(s)
	return z, nil
}

func (k *Token) derive(s pkcs11.SessionHandle, point []byte) ([]byte, error) {
	priv, err := k.find(s, pkcs11.CKO_PRIVATE_KEY)
	if err != nil {
		return nil, err
	}
	mech := pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, point))
	h, err := k.ctx.DeriveKey(s, []*pkcs11.Mechanism{mech}, priv, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
	})
	if err != nil {
		return nil, fmt.Errorf("custody: ECDH with %s: %w", k.name(), err)
	}
	defer func() { _ = k.ctx.DestroyObject(s, h) }()
	attrs, err := k.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("custody: reading the shared secret: %w", err)
	}
	if len(attrs[0].Value) != 32 {
		return nil, fmt.Errorf("custody: the token returned a %d-byte shared secret, want 32", len(attrs[0].Value))
	}
	return attrs[0].Value, nil
}

// Close closes the key's sessions and unloads the module.
func (k *Token) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()
	for {
		select {
		case s := <-k.sessions:
			_ = k.ctx.CloseSession(s)
		default:
			finish(k.ctx, k.owned)
			return nil
		}
	}
}

// GenerateToken makes a new P-256 key pair in the token the URI names, with the
// URI's id and label, for key agreement: the private key may derive (and
// sign, for its certificate request), is sensitive and never extractable.
// It returns the key, open as OpenToken would; the caller closes it.
func GenerateToken(rawuri string) (_ *Token, err error) {
	k, err := newKey(rawuri, max(2, runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			k.Close()
		}
	}()
	s, err := k.session()
	if err != nil {
		return nil, err
	}
	defer k.release(s)
	if err := k.absent(s); err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(oidP256)
	if err != nil {
		return nil, err
	}
	common := func(class uint) []*pkcs11.Attribute {
		return append(k.template(class), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true))
	}
	pubT := append(common(pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true))
	privT := append(common(pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true),
		// Signing only for the key's own certificate request (proof of
		// possession, as for a file key); the router never signs with it.
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true))
	if _, _, err := k.ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pubT, privT); err != nil {
		return nil, fmt.Errorf("custody: generating a P-256 key pair: %w", err)
	}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// Public returns the key's *ecdsa.PublicKey (crypto.Signer).
func (k *Token) Public() crypto.PublicKey {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), k.public.Bytes())
	if err != nil {
		return nil
	}
	return pub
}

// Sign signs digest with CKM_ECDSA in the token and returns the signature
// in ASN.1 form, as crypto/ecdsa does (crypto.Signer). The router never
// signs with its key-agreement key; this is for the key's own certificate
// request.
func (k *Token) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	sess, err := k.session()
	if err != nil {
		return nil, err
	}
	defer k.release(sess)
	priv, err := k.find(sess, pkcs11.CKO_PRIVATE_KEY)
	if err != nil {
		return nil, err
	}
	if err := k.ctx.SignInit(sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, priv); err != nil {
		return nil, fmt.Errorf("custody: signing with %s: %w", k.name(), err)
	}
	raw, err := k.ctx.Sign(sess, digest)
	if err != nil {
		return nil, fmt.Errorf("custody: signing with %s: %w", k.name(), err)
	}
	if len(raw) != 64 {
		return nil, fmt.Errorf("custody: the token returned a %d-byte signature, want 64", len(raw))
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:32]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[32:]))
	})
	return b.Bytes()
}
