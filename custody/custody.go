package custody

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"
)

// Custody is a key manager: it creates P-256 keys by name, hands them out as
// crypto.Signer or Agreement values, and destroys them. Its keys are either
// PEM files under a data directory (the software key manager, "softkms") or
// objects in one PKCS#11 token. Keys are named by URI:
// "softkms:path=keys/NAME.key" (relative paths are resolved against the
// data directory) or "pkcs11:id=0x...;object=NAME" (in the Custody's
// token, so the URI carries no module or PIN).
//
// A Custody is safe for concurrent use once opened.
type Custody struct {
	km      *pkcs11.PKCS11 // PKCS#11 only: signing keys through go.step.sm/crypto/kms
	kmsURI  string         // PKCS#11 only: the token's URI, for agreement keys
	kind    apiv1.Type
	baseDir string    // softkms: directory relative key paths are resolved against
	rand    io.Reader // key generation, PKCS#11 identifiers, overwriting destroyed key files

	mu     sync.Mutex
	tokens []*Token // agreement keys opened in the token, closed with the Custody
}

// DirName is the directory, under the data directory, that holds the
// software key manager's key files.
const DirName = "keys"

var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Open opens the key manager named by kmsURI: empty or "softkms" for
// PEM key files under dataDir/keys (mode 0600), or a PKCS#11 URI such as
// "pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=smki?pin-source=/etc/pin".
// rand is used to generate software keys, for PKCS#11 object identifiers
// and to overwrite destroyed key files. Close releases the key manager.
func Open(ctx context.Context, kmsURI, dataDir string, rand io.Reader) (*Custody, error) {
	c := &Custody{rand: rand}
	switch {
	case kmsURI == "" || kmsURI == "softkms" || strings.HasPrefix(kmsURI, "softkms:"):
		if dataDir == "" {
			return nil, fmt.Errorf("%w: softkms needs a data directory", ErrKey)
		}
		c.kind, c.baseDir = apiv1.SoftKMS, dataDir
	case strings.HasPrefix(kmsURI, "pkcs11:"):
		km, err := pkcs11.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: kmsURI})
		if err != nil {
			// The URI may carry a PIN: never echo it.
			return nil, fmt.Errorf("%w: opening PKCS#11 module: %v", ErrKey, redactPIN(err.Error(), kmsURI))
		}
		c.km, c.kmsURI, c.kind = km, kmsURI, apiv1.PKCS11
	default:
		return nil, fmt.Errorf("%w: unsupported key manager %q (want softkms or pkcs11:...)", ErrKey, scheme(kmsURI))
	}
	return c, nil
}

func scheme(uri string) string {
	if i := strings.IndexByte(uri, ':'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// redactPIN removes a pin-value that an underlying library might have
// echoed in an error message.
func redactPIN(msg, uri string) string {
	if i := strings.Index(uri, "pin-value="); i >= 0 {
		pin := uri[i+len("pin-value="):]
		if j := strings.IndexAny(pin, "&;"); j >= 0 {
			pin = pin[:j]
		}
		if pin != "" {
			msg = strings.ReplaceAll(msg, pin, "REDACTED")
		}
	}
	return msg
}

// Kind returns the key manager type: "softkms" or "pkcs11".
func (c *Custody) Kind() string { return string(c.kind) }

// Close releases the key manager: the agreement keys it opened and the
// PKCS#11 sessions.
func (c *Custody) Close() error {
	c.mu.Lock()
	tokens := c.tokens
	c.tokens = nil
	c.mu.Unlock()
	var errs []error
	for _, t := range tokens {
		errs = append(errs, t.Close())
	}
	if c.km != nil {
		errs = append(errs, c.km.Close())
	}
	return errors.Join(errs...)
}

// CreateKey generates a new P-256 signing key named label and returns its
// URI and a signer for it. It refuses to overwrite an existing key of that
// name.
func (c *Custody) CreateKey(ctx context.Context, label string) (string, crypto.Signer, error) {
	if err := checkLabel(ctx, label); err != nil {
		return "", nil, err
	}
	if c.kind == apiv1.SoftKMS {
		return c.createSoft(label)
	}
	uri := c.newPKCS11Name(label)
	if uri == "" {
		return "", nil, fmt.Errorf("%w: key identifier: no randomness", ErrKey)
	}
	resp, err := c.km.CreateKey(&apiv1.CreateKeyRequest{Name: uri, SignatureAlgorithm: apiv1.ECDSAWithSHA256})
	if err != nil {
		if errors.As(err, &apiv1.AlreadyExistsError{}) {
			return "", nil, fmt.Errorf("%w: key %s on the token", ErrExists, label)
		}
		return "", nil, fmt.Errorf("%w: generating key %s on the token: %v", ErrKey, label, err)
	}
	s, err := c.km.CreateSigner(&resp.CreateSignerRequest)
	if err != nil {
		return "", nil, fmt.Errorf("%w: loading new key %s: %v", ErrKey, label, err)
	}
	if err := checkP256(s.Public()); err != nil {
		return "", nil, err
	}
	return uri, s, nil
}

// CreateAgreement generates a new P-256 key-agreement key named label and
// returns its URI and the key, which also signs (for its own certificate
// request). In a token the key is made with CKA_DERIVE, sensitive and not
// extractable. It refuses to overwrite an existing key of that name.
func (c *Custody) CreateAgreement(ctx context.Context, label string) (string, Key, error) {
	if err := checkLabel(ctx, label); err != nil {
		return "", nil, err
	}
	if c.kind == apiv1.SoftKMS {
		uri, k, err := c.createSoft(label)
		return uri, k, err
	}
	uri := c.newPKCS11Name(label)
	if uri == "" {
		return "", nil, fmt.Errorf("%w: key identifier: no randomness", ErrKey)
	}
	t, err := GenerateToken(c.inToken(uri))
	if err != nil {
		return "", nil, fmt.Errorf("%w: generating key-agreement key %s on the token: %w", ErrKey, label, err)
	}
	c.track(t)
	return uri, t, nil
}

func checkLabel(ctx context.Context, label string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !labelRE.MatchString(label) {
		return fmt.Errorf("%w: key label %q: want 1-64 letters, digits, '.', '_' or '-'", ErrKey, label)
	}
	return nil
}

func (c *Custody) createSoft(label string) (string, *Software, error) {
	rel := filepath.Join(DirName, label+".key")
	path := filepath.Join(c.baseDir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", nil, fmt.Errorf("%w: creating key directory: %v", ErrKey, err)
	}
	k, err := Generate(c.rand)
	if err != nil {
		return "", nil, fmt.Errorf("key %s: %w", label, err)
	}
	if err := WriteFile(path, k); err != nil {
		return "", nil, fmt.Errorf("key %s: %w", label, err)
	}
	return "softkms:path=" + filepath.ToSlash(rel), k, nil
}

// newPKCS11Name returns the URI of a new key in the token: a random
// identifier and the label. It returns "" when rand fails.
func (c *Custody) newPKCS11Name(label string) string {
	var id [8]byte
	if _, err := io.ReadFull(c.rand, id[:]); err != nil {
		return ""
	}
	return "pkcs11:id=0x" + hex.EncodeToString(id[:]) + ";object=" + label
}

// inToken returns the full URI of the key keyURI (pkcs11:id=...;object=...)
// in the Custody's token: the token's module, label and PIN, the key's
// identifier and label.
func (c *Custody) inToken(keyURI string) string {
	base, query, _ := strings.Cut(c.kmsURI, "?")
	full := strings.TrimSuffix(base, ";") + ";" + strings.TrimPrefix(keyURI, "pkcs11:")
	if query != "" {
		full += "?" + query
	}
	return full
}

func (c *Custody) track(t *Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = append(c.tokens, t)
}

// Signer loads the key named by keyURI for signing. It fails with ErrKey if
// the key does not exist (for instance because it was destroyed).
func (c *Custody) Signer(ctx context.Context, keyURI string) (crypto.Signer, error) {
	name, err := c.resolve(ctx, keyURI)
	if err != nil {
		return nil, err
	}
	if c.kind == apiv1.SoftKMS {
		return c.readSoft(name, keyURI)
	}
	s, err := c.km.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: name})
	if err != nil {
		return nil, fmt.Errorf("%w: loading key %s: %v", ErrKey, keyURI, err)
	}
	if err := checkP256(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// Agreement loads the key-agreement key named by keyURI (made by
// CreateAgreement). A key in the token stays open until the Custody closes.
func (c *Custody) Agreement(ctx context.Context, keyURI string) (Agreement, error) {
	name, err := c.resolve(ctx, keyURI)
	if err != nil {
		return nil, err
	}
	if c.kind == apiv1.SoftKMS {
		return c.readSoft(name, keyURI)
	}
	t, err := OpenToken(c.inToken(name))
	if err != nil {
		return nil, fmt.Errorf("%w: loading key-agreement key %s: %w", ErrKey, keyURI, err)
	}
	c.track(t)
	return t, nil
}

func (c *Custody) readSoft(path, keyURI string) (*Software, error) {
	k, err := ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: loading key %s: no such key", ErrKey, keyURI)
		}
		return nil, fmt.Errorf("loading key %s: %w", keyURI, err)
	}
	return k, nil
}

func (c *Custody) resolve(ctx context.Context, keyURI string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if keyURI == "" {
		return "", fmt.Errorf("%w: no key (destroyed or never created)", ErrKey)
	}
	if c.kind == apiv1.SoftKMS {
		rel, ok := strings.CutPrefix(keyURI, "softkms:path=")
		if !ok {
			return "", fmt.Errorf("%w: key %q is not a softkms:path= URI", ErrKey, keyURI)
		}
		if filepath.IsAbs(rel) {
			return rel, nil
		}
		return filepath.Join(c.baseDir, filepath.FromSlash(rel)), nil
	}
	if !strings.HasPrefix(keyURI, "pkcs11:") || strings.Contains(keyURI, "?") {
		return "", fmt.Errorf("%w: key %q is not a pkcs11: URI of a key in the token", ErrKey, scheme(keyURI))
	}
	return keyURI, nil
}

// Destroy destroys the key named by keyURI: a key file is overwritten with
// random bytes, synced and removed; a PKCS#11 key pair is deleted from the
// token. It then checks that the key can no longer be loaded.
func (c *Custody) Destroy(ctx context.Context, keyURI string) error {
	name, err := c.resolve(ctx, keyURI)
	if err != nil {
		return err
	}
	if c.kind == apiv1.SoftKMS {
		if err := c.shred(name); err != nil {
			return fmt.Errorf("%w: destroying %s: %v", ErrKey, keyURI, err)
		}
	} else if err := c.km.DeleteKey(name); err != nil {
		return fmt.Errorf("%w: destroying %s: %v", ErrKey, keyURI, err)
	}
	if _, err := c.Signer(ctx, keyURI); err == nil {
		return fmt.Errorf("%w: key %s still loads after destruction", ErrKey, keyURI)
	}
	return nil
}

func (c *Custody) shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		_, err = io.CopyN(f, c.rand, st.Size())
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Remove(path)
}

func checkP256(pub crypto.PublicKey) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("%w: key is %T, want ECDSA P-256", ErrKey, pub)
	}
	return nil
}
