package conformance

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/keystore"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// ManifestName is the file of a keystore directory that names its parties.
const ManifestName = "conformance.json"

// Manifest is conformance.json: which EUI plays which part. The keys and
// certificates sit beside it in the layout of package commands/keystore
// (<EUI>-ds.pem and <EUI>-ka.pem certificates, <EUI>-ds.key and <EUI>-ka.key
// PKCS#8 or SEC 1 private keys).
type Manifest struct {
	// Device is the device under test: its EUI and kind ("electricity" or
	// "gas"). Its DS and KA certificates (or bare public keys) are
	// required; its private keys must not be there.
	Device struct {
		EUI  smki.EUI `json:"eui"`
		Kind string   `json:"kind"`
	} `json:"device"`
	// ACB is the access control broker the device trusts: its KA private
	// key MACs every command. Required.
	ACB smki.EUI `json:"acb"`
	// Supplier is the device's current supplier: its DS and KA private keys
	// and its DS and KA organisation certificates. Required.
	Supplier smki.EUI `json:"supplier"`
	// NetworkOperator is the device's network operator: DS and KA private
	// keys. Optional (SIG-03 is skipped without it).
	NetworkOperator *smki.EUI `json:"networkOperator,omitempty"`
	// TCoS is the transitional change-of-supplier party: its DS private
	// key. Optional (the COS cases are skipped without it).
	TCoS *smki.EUI `json:"tcos,omitempty"`
	// NewSupplier is the supplier the COS cases install: DS and KA private
	// keys and organisation certificates the device will accept (chaining
	// to its root anchor). Optional, with TCoS.
	NewSupplier *smki.EUI `json:"newSupplier,omitempty"`
	// OtherUser is an other user (role OU, an unknown remote party to the
	// device): its KA private key and KA organisation certificate.
	// Optional (URP-01 is skipped without it).
	OtherUser *smki.EUI `json:"otherUser,omitempty"`
}

// party is a remote party as the suite acts for it.
type party struct {
	eui   smki.EUI
	ds    crypto.Signer         // nil when the keystore holds none
	ka    commands.KeyAgreement // nil when the keystore holds none
	dsDER []byte                // organisation certificates, nil when absent
	kaDER []byte
}

// Keystore is what the suite needs to act towards a device: the parties'
// keys and the device's public keys.
type Keystore struct {
	Manifest Manifest
	// DeviceDS and DeviceKA are the device's public keys.
	DeviceDS *ecdsa.PublicKey
	DeviceKA *ecdh.PublicKey

	acb, supplier, netop, tcos, newSupplier, other *party
}

// LoadKeystore reads a keystore directory: conformance.json and the keys
// and certificates it names.
func LoadKeystore(dir string) (*Keystore, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("conformance: keystore: %w", err)
	}
	ks := &Keystore{}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ks.Manifest); err != nil {
		return nil, fmt.Errorf("conformance: keystore: %s: %w", ManifestName, err)
	}
	m := ks.Manifest
	if m.Device.EUI.IsZero() || m.ACB.IsZero() || m.Supplier.IsZero() {
		return nil, fmt.Errorf("conformance: keystore: %s must name device.eui, acb and supplier", ManifestName)
	}
	d, err := keystore.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	if ks.DeviceDS, err = d.PublicKey(m.Device.EUI, keystore.DS); err != nil {
		return nil, fmt.Errorf("conformance: device DS key: %w", err)
	}
	if ks.DeviceKA, err = d.KeyAgreementPublicKey(m.Device.EUI, keystore.KA); err != nil {
		return nil, fmt.Errorf("conformance: device KA key: %w", err)
	}
	load := func(eui smki.EUI, needDS, needKA, needCerts bool) (*party, error) {
		p := &party{eui: eui}
		if needDS {
			if p.ds, err = d.Signer(eui); err != nil {
				return nil, fmt.Errorf("conformance: %s DS key: %w", eui, err)
			}
		}
		if needKA {
			if p.ka, err = d.KeyAgreement(eui, keystore.KA); err != nil {
				return nil, fmt.Errorf("conformance: %s KA key: %w", eui, err)
			}
		}
		p.dsDER, _ = readCertDER(dir, eui, keystore.DS)
		p.kaDER, _ = readCertDER(dir, eui, keystore.KA)
		if needCerts && (p.dsDER == nil || p.kaDER == nil) {
			return nil, fmt.Errorf("conformance: %s: DS and KA organisation certificates (<EUI>-ds.pem, <EUI>-ka.pem) required", eui)
		}
		return p, nil
	}
	if ks.acb, err = load(m.ACB, false, true, false); err != nil {
		return nil, err
	}
	if ks.supplier, err = load(m.Supplier, true, true, true); err != nil {
		return nil, err
	}
	if m.NetworkOperator != nil {
		if ks.netop, err = load(*m.NetworkOperator, true, true, false); err != nil {
			return nil, err
		}
	}
	if m.TCoS != nil {
		if ks.tcos, err = load(*m.TCoS, true, false, false); err != nil {
			return nil, err
		}
	}
	if m.NewSupplier != nil {
		if ks.newSupplier, err = load(*m.NewSupplier, true, true, true); err != nil {
			return nil, err
		}
	}
	if m.OtherUser != nil {
		if ks.other, err = load(*m.OtherUser, false, true, false); err != nil {
			return nil, err
		}
		if ks.other.kaDER == nil {
			return nil, fmt.Errorf("conformance: other user %s: KA certificate (<EUI>-ka.pem) required", *m.OtherUser)
		}
	}
	return ks, nil
}

// readCertDER returns the first CERTIFICATE of <EUI>-<use>.pem.
func readCertDER(dir string, eui smki.EUI, use keystore.Use) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s-%s.pem", eui, use)))
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, errors.New("no CERTIFICATE block")
		}
		if blk.Type == "CERTIFICATE" {
			return blk.Bytes, nil
		}
	}
}

// The EUIs of the example keystore GenerateKeystore writes.
var (
	exampleDevice      = smki.MustParseEUI("00DB1234567890A1")
	exampleRoot        = smki.MustParseEUI("90B3D51F30000000")
	exampleACB         = smki.MustParseEUI("90B3D51F30000004")
	exampleSupplier    = smki.MustParseEUI("90B3D51F30010001")
	exampleNetop       = smki.MustParseEUI("90B3D51F30020001")
	exampleTCoS        = smki.MustParseEUI("90B3D51F30000005")
	exampleNewSupplier = smki.MustParseEUI("90B3D51F30010002")
	exampleOther       = smki.MustParseEUI("90B3D51F30090001")
)

// FleetConfigName is the file GenerateKeystore writes for "metertrust serve
// fleet --config": the reference meter with the keystore's anchors.
const FleetConfigName = "fleet.json"

// GenerateKeystore writes into dir (created; it must not exist or be empty)
// a keystore for one reference meter: a test SMKI root, organisation
// certificates and keys of every party the manifest names, the device's
// certificates, and, for the meter itself, fleet/ (its keys and
// certificates, the layout "serve fleet --batch-dir" reads) and fleet.json
// (a "serve fleet --config" file that trusts the root, ACB, supplier,
// network operator and TCoS of the keystore). The keys are fresh; it is a
// test PKI, never to be trusted by a production device.
func GenerateKeystore(dir string, now time.Time) error {
	return GenerateKeystoreKind(dir, now, "electricity")
}

// GenerateKeystoreKind is GenerateKeystore for a reference meter of kind
// "electricity" (an ESME) or "gas" (a GSME).
func GenerateKeystoreKind(dir string, now time.Time, kind string) error {
	if kind != "electricity" && kind != "gas" {
		return fmt.Errorf("conformance: device kind %q: want electricity or gas", kind)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("conformance: %s is not empty: not overwriting", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "fleet"), 0o700); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	g := &pki{dir: dir, notBefore: now.Add(-time.Hour).UTC().Truncate(time.Second)}
	if err := g.root(); err != nil {
		return err
	}
	for _, p := range []struct {
		eui  smki.EUI
		role smki.Role
	}{{exampleACB, smki.RoleAccessControlBroker}, {exampleSupplier, smki.RoleSupplier}, {exampleNetop, smki.RoleNetworkOperator},
		{exampleTCoS, smki.RoleTransitionalCoS}, {exampleNewSupplier, smki.RoleSupplier}, {exampleOther, smki.RoleOther}} {
		for _, use := range []keystore.Use{keystore.DS, keystore.KA} {
			if err := g.org(p.eui, p.role, use); err != nil {
				return err
			}
		}
	}
	if err := g.device(exampleDevice); err != nil {
		return err
	}
	var m Manifest
	m.Device.EUI, m.Device.Kind = exampleDevice, kind
	m.ACB, m.Supplier = exampleACB, exampleSupplier
	netop, tcos, ns, other := exampleNetop, exampleTCoS, exampleNewSupplier, exampleOther
	m.NetworkOperator, m.TCoS, m.NewSupplier, m.OtherUser = &netop, &tcos, &ns, &other
	if err := writeJSON(filepath.Join(dir, ManifestName), m); err != nil {
		return err
	}
	cert := func(e smki.EUI, use keystore.Use) string { return fmt.Sprintf("%s-%s.pem", e, use) }
	fleet := map[string]any{
		"batchDir":            "fleet",
		"kind":                kind,
		"rootCert":            "root.pem",
		"acbCert":             []string{cert(exampleACB, keystore.DS), cert(exampleACB, keystore.KA)},
		"supplierCert":        []string{cert(exampleSupplier, keystore.DS), cert(exampleSupplier, keystore.KA)},
		"networkOperatorCert": []string{cert(exampleNetop, keystore.DS), cert(exampleNetop, keystore.KA)},
		"tcosCert":            []string{cert(exampleTCoS, keystore.DS)},
	}
	return writeJSON(filepath.Join(dir, FleetConfigName), fleet)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// pki issues the example keystore's certificates.
type pki struct {
	dir       string
	notBefore time.Time
	serial    int64
	rootCert  *x509.Certificate
	rootKey   crypto.Signer
}

// newKey makes a fresh P-256 key (package custody's software key) and
// returns it with its public half.
func newKey() (*custody.Software, *ecdsa.PublicKey, error) {
	k, err := custody.Generate(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("conformance: %w", err)
	}
	pub, _ := k.Public().(*ecdsa.PublicKey)
	return k, pub, nil
}

// keyPEM returns k as PKCS#8 PEM (custody.Software.MarshalPEM).
func keyPEM(k *custody.Software) ([]byte, error) {
	b, err := k.MarshalPEM()
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	return b, nil
}

func (g *pki) issue(p smki.ProfileID, req smki.TemplateRequest, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	g.serial++
	req.SerialNumber, req.NotBefore = big.NewInt(1000+g.serial), g.notBefore
	tmpl, err := smki.Profiles[p].Template(req)
	if err != nil {
		return nil, fmt.Errorf("conformance: template %s: %w", p, err)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, req.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("conformance: issuing %s: %w", p, err)
	}
	if _, err := smki.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("conformance: reading back %s: %w", p, err)
	}
	return der, nil
}

func (g *pki) root() error {
	key, pub, err := newKey()
	if err != nil {
		return err
	}
	der, err := g.issue(smki.ProfileRoot, smki.TemplateRequest{CommonName: "metertrust conformance test root", EUI: exampleRoot,
		PublicKey: pub}, nil, key)
	if err != nil {
		return err
	}
	if g.rootCert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	g.rootKey = key
	return writeFile(filepath.Join(g.dir, "root.pem"), 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func (g *pki) org(eui smki.EUI, role smki.Role, use keystore.Use) error {
	key, pub, err := newKey()
	if err != nil {
		return err
	}
	p := smki.ProfileOrgDS
	if use == keystore.KA {
		p = smki.ProfileOrgKA
	}
	der, err := g.issue(p, smki.TemplateRequest{Role: role, EUI: eui, PublicKey: pub}, g.rootCert, g.rootKey)
	if err != nil {
		return err
	}
	pk, err := keyPEM(key)
	if err != nil {
		return err
	}
	defer clear(pk)
	base := filepath.Join(g.dir, fmt.Sprintf("%s-%s", eui, use))
	if err := writeFile(base+".pem", 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return err
	}
	return writeFile(base+".key", 0o600, pk)
}

// device writes the meter's certificates at the top (what the suite reads)
// and its keys with them under fleet/ (what the fleet reads).
func (g *pki) device(eui smki.EUI) error {
	for _, use := range []keystore.Use{keystore.DS, keystore.KA} {
		key, pub, err := newKey()
		if err != nil {
			return err
		}
		p := smki.ProfileDeviceDS
		if use == keystore.KA {
			p = smki.ProfileDeviceKA
		}
		der, err := g.issue(p, smki.TemplateRequest{EUI: eui, HWType: smki.OIDHWTypeReferenceMeter, PublicKey: pub}, g.rootCert, g.rootKey)
		if err != nil {
			return err
		}
		pk, err := keyPEM(key)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s-%s.pem", eui, use)
		cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := writeFile(filepath.Join(g.dir, name), 0o644, cert); err != nil {
			return err
		}
		err = writeFile(filepath.Join(g.dir, "fleet", name), 0o600, append(pk, cert...))
		clear(pk)
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a new file (it refuses to overwrite one).
func writeFile(path string, mode os.FileMode, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	return nil
}
