package smki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is a flat, stable description of a certificate or certificate
// request, for `metertrust smki show` and other tools. Its JSON field names
// are part of the command's interface; binary values are upper-case hex and
// EUIs 16 hex digits.
type Summary struct {
	Type               string             `json:"type"` // "certificate" or "csr"
	Profile            ProfileID          `json:"profile"`
	Kind               Kind               `json:"kind"`
	Serial             string             `json:"serial,omitempty"`
	Subject            string             `json:"subject"`
	Issuer             string             `json:"issuer,omitempty"`
	CommonName         string             `json:"commonName,omitempty"`
	Role               string             `json:"role,omitempty"`
	RoleCode           *int               `json:"roleCode,omitempty"`
	EUI                string             `json:"eui,omitempty"`
	KeyUsage           []string           `json:"keyUsage"`
	IsCA               bool               `json:"isCA"`
	MaxPathLen         *int               `json:"maxPathLen,omitempty"`
	SubjectKeyID       string             `json:"subjectKeyId,omitempty"`
	AuthorityKeyID     string             `json:"authorityKeyId,omitempty"`
	Policies           []string           `json:"policies,omitempty"`
	NotBefore          *time.Time         `json:"notBefore,omitempty"`
	NotAfter           *time.Time         `json:"notAfter,omitempty"`
	NeverExpires       bool               `json:"neverExpires,omitempty"`
	HWType             string             `json:"hwType,omitempty"`
	HWSerial           string             `json:"hwSerial,omitempty"`
	PublicKey          string             `json:"publicKey"`
	SignatureAlgorithm string             `json:"signatureAlgorithm"`
	Extensions         []ExtensionSummary `json:"extensions"`
	SHA256             string             `json:"sha256"`
	// Warnings lists the certificate's deviations from its SMKI profile;
	// it is an empty list, never null, when there are none (and for a
	// request, which ParseCSR refuses rather than warn).
	Warnings []Warning `json:"warnings"`
}

// ExtensionSummary names one extension and its criticality.
type ExtensionSummary struct {
	Name     string `json:"name"`
	OID      string `json:"oid"`
	Critical bool   `json:"critical"`
}

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func usageList(ku x509.KeyUsage) []string {
	if ku == 0 {
		return []string{}
	}
	return strings.Split(KeyUsageString(ku), ",")
}

func extSummaries(es []Extension) []ExtensionSummary {
	out := make([]ExtensionSummary, 0, len(es))
	for _, e := range es {
		out = append(out, ExtensionSummary{Name: e.Name(), OID: e.ID.String(), Critical: e.Critical})
	}
	return out
}

// Summary describes the certificate.
func (c *Certificate) Summary() Summary {
	fp := sha256.Sum256(c.Raw)
	s := Summary{
		Type: "certificate", Profile: c.Profile, Kind: c.Kind,
		Serial: FormatSerial(c.SerialNumber), Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		CommonName: c.Subject.CommonName, KeyUsage: usageList(c.KeyUsage), IsCA: c.IsCA,
		SubjectKeyID: hexUpper(c.SubjectKeyID), AuthorityKeyID: hexUpper(c.AuthorityKeyID),
		PublicKey: hexUpper(c.RawPublicKey), SignatureAlgorithm: "ecdsa-with-SHA256",
		Extensions: extSummaries(c.Extensions), SHA256: hexUpper(fp[:]),
		NeverExpires: c.NotAfter.Equal(NeverExpires),
		Warnings:     append([]Warning{}, c.Warnings...),
	}
	nb, na := c.NotBefore, c.NotAfter
	s.NotBefore, s.NotAfter = &nb, &na
	if c.Subject.HasRole {
		code := int(c.Role)
		s.Role, s.RoleCode = c.Role.String(), &code
	}
	if !c.EUI.IsZero() {
		s.EUI = c.EUI.String()
	}
	if c.MaxPathLen >= 0 {
		n := c.MaxPathLen
		s.MaxPathLen = &n
	}
	for _, p := range c.Policies {
		s.Policies = append(s.Policies, p.String())
	}
	if c.hasHWModuleName {
		s.HWType, s.HWSerial = c.HWType.String(), hexUpper(c.HWSerial)
	}
	return s
}

// Summary describes the request.
func (r *CSR) Summary() Summary {
	fp := sha256.Sum256(r.Raw)
	s := Summary{
		Type: "csr", Profile: r.Profile(), Kind: r.Kind, Subject: r.Subject.String(), CommonName: r.CommonName,
		KeyUsage: usageList(r.KeyUsage), PublicKey: hexUpper(r.RawPublicKey), SignatureAlgorithm: "ecdsa-with-SHA256",
		Extensions: extSummaries(r.Extensions), SHA256: hexUpper(fp[:]), EUI: r.EUI.String(),
		SubjectKeyID: hexUpper(keyIDFromPoint(r.RawPublicKey)), Warnings: []Warning{},
	}
	if r.Kind == KindOrganisation {
		code := int(r.Role)
		s.Role, s.RoleCode = r.Role.String(), &code
	}
	if r.Kind == KindDevice {
		s.HWType, s.HWSerial = r.HWType.String(), hexUpper(r.HWSerial)
	}
	return s
}

// WriteText prints the summary in the manner of a compact `openssl x509
// -text`, one labelled line per fact, then one line per warning:
// "warning: <code>: <message>".
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "  %s:\t%s\n", label, fmt.Sprintf(format, args...))
	}
	what := "certificate"
	if s.Type == "csr" {
		what = "certificate request"
	}
	profile := string(s.Profile)
	if profile == "" {
		profile = "none"
	}
	fmt.Fprintf(tw, "%s, profile %s (%s)\n", what, profile, s.Kind)
	if s.Serial != "" {
		line("serial", "%s", s.Serial)
	}
	subject := s.Subject
	if subject == "" {
		subject = "(empty)"
	}
	line("subject", "%s", subject)
	if s.Issuer != "" {
		line("issuer", "%s", s.Issuer)
	}
	if s.Role != "" {
		line("role", "%s (%02X)", s.Role, *s.RoleCode)
	}
	if s.EUI != "" {
		e, err := ParseEUI(s.EUI)
		if err == nil {
			line("EUI", "%s (%s)", e, e.Grouped())
		}
	}
	if s.HWType != "" {
		line("hardware module", "hwType %s, hwSerialNum %s", s.HWType, s.HWSerial)
	}
	line("key usage", "%s", strings.Join(s.KeyUsage, ", "))
	if s.Type == "certificate" {
		ca := "false"
		if s.IsCA {
			ca = "true"
			if s.MaxPathLen != nil {
				ca += fmt.Sprintf(", pathLen %d", *s.MaxPathLen)
			}
		}
		line("CA", "%s", ca)
	}
	if s.SubjectKeyID != "" {
		line("subject key id", "%s", s.SubjectKeyID)
	}
	if s.AuthorityKeyID != "" {
		line("authority key id", "%s", s.AuthorityKeyID)
	}
	if len(s.Policies) > 0 {
		line("policies", "%s", strings.Join(s.Policies, ", "))
	}
	if s.NotBefore != nil && s.NotAfter != nil {
		na := s.NotAfter.Format(time.RFC3339)
		if s.NeverExpires {
			na += " (no expiry)"
		}
		line("validity", "%s to %s", s.NotBefore.Format(time.RFC3339), na)
	}
	line("public key", "P-256 %s", s.PublicKey)
	var exts []string
	for _, e := range s.Extensions {
		n := e.Name
		if e.Critical {
			n += " (critical)"
		}
		exts = append(exts, n)
	}
	line("extensions", "%s", strings.Join(exts, ", "))
	line("signature", "%s", s.SignatureAlgorithm)
	line("sha256", "%s", s.SHA256)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range s.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s: %s\n", warn.Code, warn.Message); err != nil {
			return err
		}
	}
	return nil
}

// Describe reads certificates and certificate requests, PEM or DER, and
// summarises each. A certificate's deviations from its profile are in its
// summary's Warnings; the first object the readers refuse ends the read with
// its error.
func Describe(data []byte) ([]Summary, error) {
	var out []Summary
	if strings.Contains(string(data), "-----BEGIN") {
		rest := data
		for i := 1; ; i++ {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			switch b.Type {
			case "CERTIFICATE":
				c, err := ParseCertificate(b.Bytes)
				if err != nil {
					return out, fmt.Errorf("PEM block %d: %w", i, err)
				}
				out = append(out, c.Summary())
			case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
				r, err := ParseCSR(b.Bytes)
				if err != nil {
					return out, fmt.Errorf("PEM block %d: %w", i, err)
				}
				out = append(out, r.Summary())
			default:
				return out, fmt.Errorf("smki: PEM block %d is %q, neither a certificate nor a certificate request", i, b.Type)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: no PEM block", ErrMalformed)
		}
		return out, nil
	}
	ders, err := splitDER(data)
	if err != nil {
		return nil, err
	}
	for i, d := range ders {
		c, cerr := ParseCertificate(d)
		if cerr == nil {
			out = append(out, c.Summary())
			continue
		}
		if errors.Is(cerr, ErrMalformed) {
			if r, rerr := ParseCSR(d); rerr == nil {
				out = append(out, r.Summary())
				continue
			} else if !errors.Is(rerr, ErrMalformed) {
				return out, fmt.Errorf("DER object %d: %w", i+1, rerr)
			}
		}
		return out, fmt.Errorf("DER object %d: %w", i+1, cerr)
	}
	return out, nil
}
