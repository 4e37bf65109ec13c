package ca

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// zlintSources are the lint sources run before issuance: the X.509 profile
// (RFC 5280) and EC key encoding (RFC 5480). The CA/Browser Forum, Mozilla,
// Apple, ETSI and other Web-PKI sources do not apply to SMKI or to a private
// TLS hierarchy and are not run.
var zlintSources = lint.SourceList{lint.RFC5280, lint.RFC5480}

// excusedLints lists zlint lints that do not apply to a profile, each with
// the reason. A lint is excused only for the profiles listed.
var excusedLints = map[Kind]map[string]string{
	KindRoot:    rootExcuses,
	KindTLSRoot: rootExcuses,
	KindOrg: {
		// GBCS and the SMKI organisation certificate profile put the EUI-64
		// in the subject as x500UniqueIdentifier, a BIT STRING (RFC 4519
		// section 2.39); the lint expects only string types in a DN.
		"e_subject_dn_not_printable_characters": "SMKI org subject carries x500UniqueIdentifier as a BIT STRING",
	},
}

// rootExcuses apply to self-signed roots. RFC 5280 4.2.1.1 lets a
// self-signed root omit the AKI, and the SMKI root profile does. zlint
// decides "self-signed" by verifying the signature with the subject key,
// which the copy signed with the throwaway key cannot pass, so the lint
// would fire on every root.
var rootExcuses = map[string]string{
	"e_ext_authority_key_identifier_no_key_identifier": "self-signed root omits the AKI (RFC 5280 4.2.1.1); the lint copy is signed by the throwaway key",
}

// linter runs zlint (RFC 5280 and RFC 5480 sources) and the SMKI profile
// lints over a certificate signed with a throwaway key.
type linter struct {
	reg lint.Registry
}

func newLinter() (*linter, error) {
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: zlintSources})
	if err != nil {
		return nil, fmt.Errorf("ca: building zlint registry: %w", err)
	}
	return &linter{reg: reg}, nil
}

// check lints der (a certificate of kind k, signed by a throwaway key) and
// returns an ErrLint error naming every failing lint.
func (l *linter) check(der []byte, t *template, now time.Time) error {
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: zcrypto cannot parse the prepared certificate: %v", ErrLint, err)
	}
	var failed []string
	res := zlint.LintCertificateEx(zc, l.reg)
	for name, r := range res.Results {
		if r.Status < lint.Warn {
			continue
		}
		if _, ok := excusedLints[t.kind][name]; ok {
			continue
		}
		d := name
		if r.Details != "" {
			d += " (" + r.Details + ")"
		}
		failed = append(failed, d)
	}
	for _, pl := range profileLints {
		if !pl.applies(t.kind) {
			continue
		}
		if err := pl.check(zc, t, now); err != nil {
			failed = append(failed, pl.name+" ("+err.Error()+")")
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("%w: %s", ErrLint, strings.Join(failed, "; "))
	}
	return nil
}

// profileLint is one SMKI profile rule, checked before issuance.
type profileLint struct {
	name  string // e_smki_...: the name a refusal reports
	rule  string // the rule it enforces and where it comes from
	kinds []Kind // nil: every SMKI kind (root, OCA, DCA, org, device)
	check func(c *zx509.Certificate, t *template, now time.Time) error
}

var smkiKinds = []Kind{KindRoot, KindOCA, KindDCA, KindOrg, KindDevice}

func (p profileLint) applies(k Kind) bool {
	ks := p.kinds
	if ks == nil {
		ks = smkiKinds
	}
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func findExt(c *zx509.Certificate, id asn1.ObjectIdentifier) (critical, ok bool) {
	for _, e := range c.Extensions {
		if e.Id.String() == id.String() {
			return e.Critical, true
		}
	}
	return false, false
}

// profileLints are the SMKI certificate profile rules (GBCS section 4.3 and
// the SMKI Certificate Policy profiles, as in the GBCS security notes
// section 2). Each entry cites its rule.
var profileLints = []profileLint{
	{name: "e_smki_signature_ecdsa_sha256", rule: "GBCS 4.3: signature algorithm ecdsa-with-SHA256 only",
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if c.SignatureAlgorithm != zx509.ECDSAWithSHA256 {
				return fmt.Errorf("signature algorithm %v", c.SignatureAlgorithm)
			}
			return nil
		}},
	{name: "e_smki_key_p256_uncompressed", rule: "GBCS 4.3: P-256 subject keys, uncompressed points (RFC 5480 section 2.2)",
		kinds: append(smkiKinds, KindTLSRoot, KindTLSCA, KindTLSClient, KindTLSServer),
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if !uncompressedPoint(c.RawSubjectPublicKeyInfo) {
				return fmt.Errorf("subject key is not an uncompressed P-256 point")
			}
			return nil
		}},
	{name: "e_smki_key_usage_critical", rule: "SMKI profiles: keyUsage present and critical",
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if crit, ok := findExt(c, oidExtKeyUsage); !ok || !crit {
				return fmt.Errorf("keyUsage missing or not critical")
			}
			return nil
		}},
	{name: "e_smki_policies_critical", rule: "SMKI profiles: certificatePolicies critical with at least one policy",
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if crit, ok := findExt(c, oidExtCertPolicies); !ok || !crit || len(c.PolicyIdentifiers) == 0 {
				return fmt.Errorf("certificatePolicies missing, empty or not critical")
			}
			return nil
		}},
	{name: "e_smki_ski_method2", rule: "SMKI profiles: subjectKeyIdentifier of 8 bytes, RFC 5280 4.2.1.2 method 2",
		kinds: append(smkiKinds, KindTLSRoot, KindTLSCA, KindTLSClient, KindTLSServer),
		check: func(c *zx509.Certificate, t *template, _ time.Time) error {
			want, err := KeyID(t.cert.PublicKey)
			if err != nil {
				return err
			}
			if !bytes.Equal(c.SubjectKeyId, want) {
				return fmt.Errorf("subjectKeyIdentifier %x, want %x", c.SubjectKeyId, want)
			}
			return nil
		}},
	{name: "e_smki_aki_8_bytes", rule: "SMKI profiles: authorityKeyIdentifier of 8 bytes on all but the self-signed root",
		check: func(c *zx509.Certificate, t *template, _ time.Time) error {
			if t.kind == KindRoot {
				if len(c.AuthorityKeyId) != 0 {
					return fmt.Errorf("root carries an authorityKeyIdentifier")
				}
				return nil
			}
			if len(c.AuthorityKeyId) != 8 {
				return fmt.Errorf("authorityKeyIdentifier is %d bytes, want 8", len(c.AuthorityKeyId))
			}
			return nil
		}},
	{name: "e_smki_ca_key_usage", rule: "SMKI CA profiles: keyCertSign and cRLSign only; CA:TRUE",
		kinds: []Kind{KindRoot, KindOCA, KindDCA, KindTLSRoot, KindTLSCA},
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if c.KeyUsage != zx509.KeyUsageCertSign|zx509.KeyUsageCRLSign || !c.IsCA {
				return fmt.Errorf("keyUsage %#x, CA %v", c.KeyUsage, c.IsCA)
			}
			return nil
		}},
	{name: "e_smki_ca_path_len_zero", rule: "SMKI OCA and DCA profiles: pathLenConstraint 0",
		kinds: []Kind{KindOCA, KindDCA},
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if c.MaxPathLen != 0 || !c.MaxPathLenZero {
				return fmt.Errorf("pathLenConstraint is not 0")
			}
			return nil
		}},
	{name: "e_smki_ee_one_key_usage", rule: "SMKI org and device profiles: exactly one of digitalSignature or keyAgreement",
		kinds: []Kind{KindOrg, KindDevice},
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if c.KeyUsage != zx509.KeyUsageDigitalSignature && c.KeyUsage != zx509.KeyUsageKeyAgreement {
				return fmt.Errorf("keyUsage %#x", c.KeyUsage)
			}
			if c.IsCA {
				return fmt.Errorf("end-entity certificate is a CA")
			}
			return nil
		}},
	{name: "e_smki_org_subject", rule: "SMKI org profile: OU = role as two hex digits, x500UniqueIdentifier = EUI-64 as a 64-bit BIT STRING",
		kinds: []Kind{KindOrg},
		check: func(c *zx509.Certificate, t *template, _ time.Time) error {
			if !bytes.Contains(c.RawSubject, append([]byte{0x06, 0x03, 0x55, 0x04, 0x2d, 0x03, 0x09, 0x00}, t.eui[:]...)) {
				return fmt.Errorf("subject lacks x500UniqueIdentifier BIT STRING %s", t.eui)
			}
			if len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != fmt.Sprintf("%02X", t.role) {
				return fmt.Errorf("subject OU %v, want %02X", c.Subject.OrganizationalUnit, t.role)
			}
			return nil
		}},
	{name: "e_smki_device_subject_empty", rule: "SMKI device profile: empty subject",
		kinds: []Kind{KindDevice},
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if !bytes.Equal(c.RawSubject, emptySubject) {
				return fmt.Errorf("subject is not empty")
			}
			return nil
		}},
	{name: "e_smki_device_not_after", rule: "SMKI device profile: notAfter 99991231235959Z",
		kinds: []Kind{KindDevice},
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if !c.NotAfter.Equal(deviceNotAfter) {
				return fmt.Errorf("notAfter %s", c.NotAfter.Format(time.RFC3339))
			}
			return nil
		}},
	{name: "e_smki_device_hw_module_name", rule: "SMKI device profile: critical subjectAltName, one otherName hardwareModuleName (RFC 4108) with hwSerialNum = device EUI-64",
		kinds: []Kind{KindDevice},
		check: func(c *zx509.Certificate, t *template, _ time.Time) error {
			if crit, ok := findExt(c, oidExtSubjectAltName); !ok || !crit {
				return fmt.Errorf("subjectAltName missing or not critical")
			}
			for _, e := range c.Extensions {
				if e.Id.String() == oidExtSubjectAltName.String() {
					_, serial, err := readHWName(e.Value)
					if err != nil {
						return err
					}
					if serial != t.eui {
						return fmt.Errorf("hwSerialNum %s, want %s", serial, t.eui)
					}
				}
			}
			return nil
		}},
	{name: "e_smki_validity_current", rule: "RFC 5280 4.1.2.5: notBefore not in the future beyond clock skew, notAfter after notBefore",
		kinds: append(smkiKinds, KindTLSRoot, KindTLSCA, KindTLSClient, KindTLSServer),
		check: func(c *zx509.Certificate, _ *template, now time.Time) error {
			if c.NotBefore.After(now.Add(backdate)) || !c.NotAfter.After(c.NotBefore) {
				return fmt.Errorf("validity %s to %s at %s", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), now.Format(time.RFC3339))
			}
			return nil
		}},
	{name: "e_serial_64_bits", rule: "RFC 5280 4.1.2.2 positive, at most 20 octets; at least 64 random bits (our rule, after CABF BR 7.1)",
		kinds: append(smkiKinds, KindTLSRoot, KindTLSCA, KindTLSClient, KindTLSServer),
		check: func(c *zx509.Certificate, _ *template, _ time.Time) error {
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 159 || c.SerialNumber.BitLen() < 64 {
				return fmt.Errorf("serial has %d bits", c.SerialNumber.BitLen())
			}
			return nil
		}},
}

// oidAnyPolicy is anyPolicy (RFC 5280 section 4.2.1.4), the stand-in policy
// in the copy zlint sees.
var oidAnyPolicy = mustOID("2.5.29.32.0")

// standInPolicies returns exts with every certificatePolicies extension
// replaced by one holding anyPolicy, with the same criticality.
func standInPolicies(exts []pkix.Extension) []pkix.Extension {
	out := make([]pkix.Extension, len(exts))
	for i, e := range exts {
		out[i] = e
		if e.Id.Equal(oidExtCertPolicies) {
			if pe, err := policiesExt(oidAnyPolicy); err == nil {
				pe.Critical = e.Critical
				out[i] = pe
			}
		}
	}
	return out
}

// smkiLint reads an SMKI certificate signed with the throwaway key through
// smki.ParseCertificate, which applies the SMKI profile check (smki.Profile:
// the one definition of "on profile"), and requires the profile intended.
// DCCKI and OCSP responder certificates are not SMKI and are skipped.
func smkiLint(der []byte, t *template) error {
	switch t.kind {
	case KindTLSRoot, KindTLSCA, KindTLSClient, KindTLSServer, KindOCSPResponder:
		return nil
	}
	sc, err := smki.ParseCertificateStrict(der)
	if err != nil {
		return fmt.Errorf("%w: e_smki_profile (%v)", ErrLint, err)
	}
	want := wantProfile(t)
	if sc.Profile == want {
		return nil
	}
	if p := smki.Profiles[want]; p != nil && want == smki.ProfileOrgPrepaymentKA && sc.Profile == smki.ProfileOrgKA {
		if err := p.Check(sc); err != nil {
			return fmt.Errorf("%w: e_smki_profile (%v)", ErrLint, err)
		}
		return nil
	}
	return fmt.Errorf("%w: e_smki_profile (matches %s, want %s)", ErrLint, sc.Profile, want)
}
