package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"
	"go.step.sm/crypto/kms/softkms"
)

// Custody is the only code in metertrust that touches private key material:
// key files of the software key manager or objects on a PKCS#11 token. It
// creates P-256 keys, hands out crypto.Signer values for them, and destroys
// them. Keys are named by URI: "softkms:path=keys/NAME.key" (relative paths
// are resolved against the data directory) or "pkcs11:id=0x...;object=NAME".
//
// A Custody is safe for concurrent use once opened.
type Custody struct {
	km      apiv1.KeyManager
	deleter interface{ DeleteKey(string) error } // PKCS#11 only
	kind    apiv1.Type
	baseDir string    // softkms: directory relative key paths are resolved against
	rand    io.Reader // key identifiers on PKCS#11 and overwriting destroyed key files
}

// KeyDirName is the directory, under the data directory, that holds the
// software key manager's key files.
const KeyDirName = "keys"

var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// OpenCustody opens the key manager named by kmsURI: empty or "softkms" for
// PEM key files under dataDir/keys (mode 0600), or a PKCS#11 URI such as
// "pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=smki?pin-source=/etc/pin".
// rand is used for PKCS#11 object identifiers and to overwrite destroyed key
// files. Close releases the key manager.
func OpenCustody(ctx context.Context, kmsURI, dataDir string, rand io.Reader) (*Custody, error) {
	c := &Custody{rand: rand}
	switch {
	case kmsURI == "" || kmsURI == "softkms" || strings.HasPrefix(kmsURI, "softkms:"):
		km, err := softkms.New(ctx, apiv1.Options{Type: apiv1.SoftKMS})
		if err != nil {
			return nil, fmt.Errorf("%w: opening softkms: %v", ErrKey, err)
		}
		if dataDir == "" {
			return nil, fmt.Errorf("%w: softkms needs a data directory", ErrKey)
		}
		c.km, c.kind, c.baseDir = km, apiv1.SoftKMS, dataDir
	case strings.HasPrefix(kmsURI, "pkcs11:"):
		km, err := pkcs11.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: kmsURI})
		if err != nil {
			// The URI may carry a PIN: never echo it.
			return nil, fmt.Errorf("%w: opening PKCS#11 module: %v", ErrKey, redactPIN(err.Error(), kmsURI))
		}
		c.km, c.deleter, c.kind = km, km, apiv1.PKCS11
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

// Close releases the key manager (the PKCS#11 session).
func (c *Custody) Close() error { return c.km.Close() }

// CreateKey generates a new P-256 key named label and returns its URI and a
// signer for it. It refuses to overwrite an existing key of that name.
func (c *Custody) CreateKey(ctx context.Context, label string) (string, crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	if !labelRE.MatchString(label) {
		return "", nil, fmt.Errorf("%w: key label %q: want 1-64 letters, digits, '.', '_' or '-'", ErrKey, label)
	}
	switch c.kind {
	case apiv1.SoftKMS:
		return c.createSoft(label)
	default:
		return c.createPKCS11(label)
	}
}

func (c *Custody) createSoft(label string) (string, crypto.Signer, error) {
	rel := filepath.Join(KeyDirName, label+".key")
	path := filepath.Join(c.baseDir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", nil, fmt.Errorf("%w: creating key directory: %v", ErrKey, err)
	}
	resp, err := c.km.CreateKey(&apiv1.CreateKeyRequest{Name: path, SignatureAlgorithm: apiv1.ECDSAWithSHA256})
	if err != nil {
		return "", nil, fmt.Errorf("%w: generating key %s: %v", ErrKey, label, err)
	}
	priv, ok := resp.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return "", nil, fmt.Errorf("%w: softkms generated %T, want ECDSA P-256", ErrKey, resp.PrivateKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", nil, fmt.Errorf("%w: encoding key %s: %v", ErrKey, label, err)
	}
	if err := WriteNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", nil, fmt.Errorf("%w: key %s: %w", ErrKey, label, err)
	}
	clear(der)
	return "softkms:path=" + filepath.ToSlash(rel), priv, nil
}

func (c *Custody) createPKCS11(label string) (string, crypto.Signer, error) {
	var id [8]byte
	if _, err := io.ReadFull(c.rand, id[:]); err != nil {
		return "", nil, fmt.Errorf("%w: key identifier: %v", ErrKey, err)
	}
	uri := "pkcs11:id=0x" + hex.EncodeToString(id[:]) + ";object=" + label
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

// Signer loads the key named by keyURI. It fails with ErrKey if the key does
// not exist (for instance because it was destroyed).
func (c *Custody) Signer(ctx context.Context, keyURI string) (crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if keyURI == "" {
		return nil, fmt.Errorf("%w: no key (destroyed or never created)", ErrKey)
	}
	name, err := c.resolve(keyURI)
	if err != nil {
		return nil, err
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

func (c *Custody) resolve(keyURI string) (string, error) {
	switch c.kind {
	case apiv1.SoftKMS:
		rel, ok := strings.CutPrefix(keyURI, "softkms:path=")
		if !ok {
			return "", fmt.Errorf("%w: key %q is not a softkms:path= URI", ErrKey, keyURI)
		}
		if filepath.IsAbs(rel) {
			return rel, nil
		}
		return filepath.Join(c.baseDir, filepath.FromSlash(rel)), nil
	default:
		if !strings.HasPrefix(keyURI, "pkcs11:") {
			return "", fmt.Errorf("%w: key %q is not a pkcs11: URI", ErrKey, keyURI)
		}
		return keyURI, nil
	}
}

// Destroy destroys the key named by keyURI: a key file is overwritten with
// random bytes, synced and removed; a PKCS#11 key pair is deleted from the
// token. It then checks that the key can no longer be loaded.
func (c *Custody) Destroy(ctx context.Context, keyURI string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := c.resolve(keyURI)
	if err != nil {
		return err
	}
	switch c.kind {
	case apiv1.SoftKMS:
		if err := c.shred(name); err != nil {
			return fmt.Errorf("%w: destroying %s: %v", ErrKey, keyURI, err)
		}
	default:
		if err := c.deleter.DeleteKey(name); err != nil {
			return fmt.Errorf("%w: destroying %s: %v", ErrKey, keyURI, err)
		}
	}
	if _, err := c.km.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: name}); err == nil {
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

// WriteNewFile writes data to path with the given mode, refusing (with
// ErrExists) to overwrite an existing file. Ceremonies and the key and
// certificate outputs of the CLI use it.
func WriteNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
