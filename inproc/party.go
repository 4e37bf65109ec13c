package inproc

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/keystore"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// Party is a DCC party or DCC user with its keys and certificates. Private
// keys are held only as crypto.Signer and commands.KeyAgreement values.
type Party struct {
	PartySpec
	// DS signs critical commands; nil without a DS key.
	DS crypto.Signer
	// KA is the key-agreement key (MACs and encrypted payloads to the
	// party); PPKA the prepayment top-up KA key. Nil when absent.
	KA, PPKA commands.KeyAgreement
	// Certificates are the organisation certificates (DER) by usage.
	Certificates map[ca.Usage][]byte
	// TLS is the DCCKI client certificate chain and key the party calls
	// the router with; nil for a DCC party.
	TLS *tls.Certificate
	// TLSCertFile and TLSKeyFile are the PEM files of TLS, for curl.
	TLSCertFile, TLSKeyFile string
}

// keystoreUse maps a certificate usage to its file name part in the
// commands/keystore layout.
func keystoreUse(u ca.Usage) string {
	switch u {
	case ca.UsageDS:
		return string(keystore.DS)
	case ca.UsageKA:
		return string(keystore.KA)
	}
	return "pp-ka"
}

func (s *System) partiesDir() string { return filepath.Join(s.Dir, "parties") }
func (s *System) tlsDir() string     { return filepath.Join(s.Dir, "tls") }

// createParty makes a party's keys, has the Organisation CA certify each
// one from a CSR, issues its DCCKI client certificate, and writes
// everything to the data directory. The ACB's KA key is created in the key
// custody (custody.Custody: a file or a token) instead of a party file, as the
// router's key; the other parties' keys are software keys in files.
func (s *System) createParty(ctx context.Context, spec PartySpec) (*Party, string, error) {
	p := &Party{PartySpec: spec, Certificates: map[ca.Usage][]byte{}}
	var acbKeyURI string
	for _, u := range spec.Usages {
		var key custody.Key
		if spec.Role == smki.RoleAccessControlBroker && u == ca.UsageKA {
			uri, k, err := s.Keys.CreateAgreement(ctx, "acb-ka-"+spec.EUI.String())
			if err != nil {
				return nil, "", fmt.Errorf("creating the ACB key-agreement key: %w", err)
			}
			key, acbKeyURI = k, uri
		} else {
			k, err := custody.Generate(s.rand)
			if err != nil {
				return nil, "", fmt.Errorf("generating %s key of %s: %w", u, spec.Name, err)
			}
			key = k
			path := filepath.Join(s.partiesDir(), spec.EUI.String()+"-"+keystoreUse(u)+".key")
			if err := custody.WriteFile(path, k); err != nil {
				return nil, "", fmt.Errorf("writing %s key of %s: %w", u, spec.Name, err)
			}
		}
		ku := x509.KeyUsageKeyAgreement
		if u == ca.UsageDS {
			ku = x509.KeyUsageDigitalSignature
		}
		csr, err := smki.CreateCSR(s.rand, &smki.CSRTemplate{Kind: smki.KindOrganisation, CommonName: spec.Organisation,
			Role: spec.Role, EUI: spec.EUI, KeyUsage: ku}, key)
		if err != nil {
			return nil, "", fmt.Errorf("certificate request for the %s key of %s: %w", u, spec.Name, err)
		}
		rec, err := s.CA.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: spec.Role, EUI: spec.EUI, Name: spec.Organisation, Usage: u})
		if err != nil {
			return nil, "", fmt.Errorf("issuing the %s certificate of %s: %w", u, spec.Name, err)
		}
		path := filepath.Join(s.partiesDir(), spec.EUI.String()+"-"+keystoreUse(u)+".pem")
		if err := ca.WriteNewFile(path, pemCert(rec.DER), 0o644); err != nil {
			return nil, "", fmt.Errorf("writing the %s certificate of %s: %w", u, spec.Name, err)
		}
		p.Certificates[u] = rec.DER
		p.setKey(u, key, key)
	}
	if spec.UserRole != "" {
		iss, err := s.CA.IssueTLSClient(ctx, spec.EUI, spec.UserRole)
		if err != nil {
			return nil, "", fmt.Errorf("issuing the DCCKI client certificate of %s: %w", spec.Name, err)
		}
		p.TLSCertFile, p.TLSKeyFile = filepath.Join(s.tlsDir(), spec.Name+".pem"), filepath.Join(s.tlsDir(), spec.Name+".key")
		chain := append(pemCert(iss.Record.DER), pemCert(s.dcckiIssuer)...)
		if err := ca.WriteNewFile(p.TLSCertFile, chain, 0o644); err != nil {
			return nil, "", fmt.Errorf("writing the DCCKI certificate of %s: %w", spec.Name, err)
		}
		err = ca.WriteNewFile(p.TLSKeyFile, iss.KeyPEM, 0o600)
		clear(iss.KeyPEM)
		if err != nil {
			return nil, "", fmt.Errorf("writing the DCCKI key of %s: %w", spec.Name, err)
		}
		if err := p.loadTLS(); err != nil {
			return nil, "", err
		}
	}
	return p, acbKeyURI, nil
}

// loadParty reads back a party written by createParty.
func (s *System) loadParty(ctx context.Context, spec PartySpec, acbKeyURI string) (*Party, error) {
	p := &Party{PartySpec: spec, Certificates: map[ca.Usage][]byte{}}
	for _, u := range spec.Usages {
		certPath := filepath.Join(s.partiesDir(), spec.EUI.String()+"-"+keystoreUse(u)+".pem")
		b, err := os.ReadFile(certPath)
		if err != nil {
			return nil, fmt.Errorf("%w: party %s: %w", ErrManifest, spec.Name, err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: %s holds no certificate", ErrManifest, certPath)
		}
		p.Certificates[u] = blk.Bytes
		if spec.Role == smki.RoleAccessControlBroker && u == ca.UsageKA {
			// Once certified, only the key's agreement is used.
			ka, err := s.Keys.Agreement(ctx, acbKeyURI)
			if err != nil {
				return nil, fmt.Errorf("loading the ACB key-agreement key: %w", err)
			}
			p.setKey(u, nil, ka)
			continue
		}
		keyPath := filepath.Join(s.partiesDir(), spec.EUI.String()+"-"+keystoreUse(u)+".key")
		key, err := custody.ReadFile(keyPath)
		if err != nil {
			return nil, fmt.Errorf("%w: party %s: %w", ErrManifest, spec.Name, err)
		}
		p.setKey(u, key, key)
	}
	if spec.UserRole != "" {
		p.TLSCertFile, p.TLSKeyFile = filepath.Join(s.tlsDir(), spec.Name+".pem"), filepath.Join(s.tlsDir(), spec.Name+".key")
		if err := p.loadTLS(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// setKey sets the party's key of usage u: signer for DS, ka otherwise.
func (p *Party) setKey(u ca.Usage, signer crypto.Signer, ka custody.Agreement) {
	switch u {
	case ca.UsageDS:
		p.DS = signer
	case ca.UsageKA:
		p.KA = ka
	default:
		p.PPKA = ka
	}
}

func (p *Party) loadTLS() error {
	kp, err := tls.LoadX509KeyPair(p.TLSCertFile, p.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("loading the DCCKI client certificate of %s: %w", p.Name, err)
	}
	p.TLS = &kp
	return nil
}

// Certificate returns the party's organisation certificate of usage u,
// read with the SMKI reader.
func (p *Party) Certificate(u ca.Usage) (*smki.Certificate, error) {
	der, ok := p.Certificates[u]
	if !ok {
		return nil, fmt.Errorf("%w: party %s holds no %s certificate", ErrConfig, p.Name, u)
	}
	return smki.ParseCertificate(der)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
