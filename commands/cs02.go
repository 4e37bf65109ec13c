package commands

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// The CS02 security credential payloads (GBCS section 9, use cases CS02a to
// CS02d; spec section 9), ASN.1 DER built and read with cryptobyte.
//
// (our rule) GBCS publishes their content; the module below is ours, modelled
// on it, and documented in docs/gbcs.md:
//
//	TrustAnchorCellID ::= SEQUENCE { remotePartyRole INTEGER, keyUsage KeyUsage, cellUsage CellUsage }
//	CellUsage ::= ENUMERATED { management(0), prepaymentTopUp(1) }
//	TrustAnchorCell ::= SEQUENCE { keyUsage KeyUsage, cellUsage CellUsage,
//	    subjectUniqueID OCTET STRING (SIZE(8)), subjectKeyIdentifier OCTET STRING (SIZE(8)) }
//	-- CS02a
//	ProvideSecurityCredentials ::= SEQUENCE OF remotePartyRole INTEGER     -- empty: every role
//	SecurityCredentialsDetails ::= SEQUENCE OF SEQUENCE { remotePartyRole INTEGER,
//	    status Status, sequenceNumber INTEGER, cells SEQUENCE OF TrustAnchorCell }
//	-- CS02b
//	UpdateSecurityCredentials ::= SEQUENCE {
//	    authorisingRemotePartyControl SEQUENCE { credentialsReplacementMode ENUMERATED (0..9),
//	        authorisingRemotePartySeqNumber INTEGER, newRemotePartyFloorSeqNumber INTEGER },
//	    replacements SEQUENCE SIZE(1..MAX) OF SEQUENCE { replacementCertificate Certificate,
//	        targetCell TrustAnchorCellID },
//	    certificationPathCertificates SEQUENCE OF Certificate,
//	    executionDateTime GeneralizedTime OPTIONAL }
//	UpdateSecurityCredentialsResponse ::= SEQUENCE { status Status,
//	    cellResults SEQUENCE OF SEQUENCE { targetCell TrustAnchorCellID, status Status } }
//	-- CS02c
//	IssueSecurityCredentials ::= SEQUENCE { keyUsage KeyUsage }
//	IssueSecurityCredentialsResponse ::= SEQUENCE { status Status, certificationRequest CertificationRequest OPTIONAL }
//	-- CS02d
//	UpdateDeviceCertificate ::= SEQUENCE { deviceCertificate Certificate }
//	UpdateDeviceCertificateResponse ::= SEQUENCE { status Status }
//	Status ::= ENUMERATED { success(0), badCertificate(5), noTrustAnchor(10),
//	    insufficientMemory(17), trustAnchorNotFound(25), resourcesBusy(30), other(127) }
//
// Certificates and the certification request are kept as their DER; their
// contents are checked by smki, not here.

// ReplacementMode is the CS02b credentials replacement mode. Each mode has
// its own message code, 0x0100 + mode.
type ReplacementMode uint8

// The replacement modes of GBCS, in message code order.
const (
	RootBySupplier ReplacementMode = iota
	RootByWANProvider
	SupplierBySupplier
	NetworkOperatorByNetworkOperator
	AccessControlBrokerByACB
	WANProviderByWANProvider
	TransCoSByTransCoS
	SupplierByTransCoS
	AnyExceptAbnormalRootByRecovery
	AnyByContingency
	replacementModes
)

var replacementModeNames = [...]string{"rootBySupplier", "rootByWanProvider", "supplierBySupplier",
	"networkOperatorByNetworkOperator", "accessControlBrokerByACB", "wanProviderByWanProvider",
	"transCoSByTransCoS", "supplierByTransCoS", "anyExceptAbnormalRootByRecovery", "anyByContingency"}

// Valid reports whether m is one of the ten modes.
func (m ReplacementMode) Valid() bool { return m < replacementModes }

// String returns the GBCS name of the mode.
func (m ReplacementMode) String() string {
	if m.Valid() {
		return replacementModeNames[m]
	}
	return fmt.Sprintf("ReplacementMode(%d)", uint8(m))
}

// MessageCode returns the CS02b message code of the mode (0x0100 to 0x0109).
func (m ReplacementMode) MessageCode() MessageCode { return 0x0100 + MessageCode(m) }

// ReplacementModeOf returns the mode whose CS02b message code is c.
func ReplacementModeOf(c MessageCode) (ReplacementMode, bool) {
	if c < 0x0100 || c > 0x0109 {
		return 0, false
	}
	return ReplacementMode(c - 0x0100), true
}

// CellUsage says what a trust-anchor cell's key is for.
type CellUsage uint8

// The cell usages.
const (
	CellManagement      CellUsage = 0
	CellPrepaymentTopUp CellUsage = 1
)

// String names the usage.
func (u CellUsage) String() string {
	switch u {
	case CellManagement:
		return "management"
	case CellPrepaymentTopUp:
		return "prepaymentTopUp"
	}
	return fmt.Sprintf("CellUsage(%d)", uint8(u))
}

// Status is a CS02 response status code.
type Status uint8

// The CS02 response status codes of GBCS.
const (
	StatusSuccess             Status = 0
	StatusBadCertificate      Status = 5
	StatusNoTrustAnchor       Status = 10
	StatusInsufficientMemory  Status = 17
	StatusTrustAnchorNotFound Status = 25
	StatusResourcesBusy       Status = 30
	StatusOther               Status = 127
)

var statusNames = map[Status]string{StatusSuccess: "success", StatusBadCertificate: "badCertificate",
	StatusNoTrustAnchor: "noTrustAnchor", StatusInsufficientMemory: "insufficientMemory",
	StatusTrustAnchorNotFound: "trustAnchorNotFound", StatusResourcesBusy: "resourcesBusy", StatusOther: "other"}

// Valid reports whether s is one of the defined codes.
func (s Status) Valid() bool { _, ok := statusNames[s]; return ok }

// String names the status.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// CellID names a trust-anchor cell on the device: the role, the key usage
// (digitalSignature or keyAgreement) and the cell usage.
type CellID struct {
	Role     smki.Role
	KeyUsage x509.KeyUsage
	Usage    CellUsage
}

// TrustAnchorCell is one trust anchor as the device reports it.
type TrustAnchorCell struct {
	KeyUsage     x509.KeyUsage
	Usage        CellUsage
	Subject      smki.EUI
	SubjectKeyID [8]byte
}

// RoleAnchors is the device's state for one role: status, sequence number
// and cells.
type RoleAnchors struct {
	Role     smki.Role
	Status   Status
	Sequence uint64
	Cells    []TrustAnchorCell
}

// ProvideCredentials is the CS02a command payload: the roles asked for, none
// meaning every role.
type ProvideCredentials struct {
	Roles []smki.Role
}

// CredentialsDetails is the CS02a response payload: the trust-anchor listing.
type CredentialsDetails struct {
	Roles []RoleAnchors
}

// AuthorisingControl is the authorising remote party control of CS02b.
type AuthorisingControl struct {
	// Mode is the credentials replacement mode; it fixes the message code.
	Mode ReplacementMode
	// AuthorisingSequence is the authorising party's sequence number, which
	// must exceed the device's for the authorising role.
	AuthorisingSequence uint64
	// FloorSequence is the new floor sequence number for the replaced role.
	FloorSequence uint64
}

// Replacement is one new trust anchor and the cell it goes in.
type Replacement struct {
	// Certificate is the DER of the replacement certificate.
	Certificate []byte
	// Target is the cell it replaces.
	Target CellID
}

// UpdateCredentials is the CS02b command payload.
type UpdateCredentials struct {
	Control      AuthorisingControl
	Replacements []Replacement
	// CertificationPath holds the DER of the certificates that chain the
	// replacements to an anchor the device holds; may be empty.
	CertificationPath [][]byte
	// ExecutionTime is when to apply the replacement; zero means at once.
	ExecutionTime time.Time
}

// CellResult is the outcome for one target cell.
type CellResult struct {
	Target CellID
	Status Status
}

// UpdateCredentialsResponse is the CS02b response payload.
type UpdateCredentialsResponse struct {
	Status  Status
	Results []CellResult
}

// IssueCredentials is the CS02c command payload: generate a new key pair of
// this usage (digitalSignature or keyAgreement) and return a CSR.
type IssueCredentials struct {
	KeyUsage x509.KeyUsage
}

// IssueCredentialsResponse is the CS02c response payload: a status and, on
// success, the DER PKCS#10 certification request.
type IssueCredentialsResponse struct {
	Status Status
	CSR    []byte
}

// UpdateDeviceCertificate is the CS02d command payload: the new device
// certificate, installed against the key pair CS02c generated.
type UpdateDeviceCertificate struct {
	Certificate []byte
}

// UpdateDeviceCertificateResponse is the CS02d response payload.
type UpdateDeviceCertificateResponse struct {
	Status Status
}

// ---- building ----

func addUint(b *cryptobyte.Builder, v uint64) { b.AddASN1Uint64(v) }

func addEnum(b *cryptobyte.Builder, v int) { b.AddASN1Enum(int64(v)) }

// addKeyUsage writes an x509.KeyUsage as a DER named-bit BIT STRING.
func addKeyUsage(b *cryptobyte.Builder, ku x509.KeyUsage) {
	var bits [2]byte
	last := -1
	for i := range 9 {
		if ku&(1<<i) != 0 {
			bits[i/8] |= 0x80 >> (i % 8)
			last = i
		}
	}
	if last < 0 {
		b.SetError(fmt.Errorf("%w: empty key usage", ErrInvalid))
		return
	}
	if ku>>9 != 0 {
		b.SetError(fmt.Errorf("%w: key usage 0x%X beyond decipherOnly", ErrInvalid, int(ku)))
		return
	}
	n := last/8 + 1
	b.AddASN1(asn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(7 - last%8))
		b.AddBytes(bits[:n])
	})
}

func addCellID(b *cryptobyte.Builder, c CellID) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addUint(b, uint64(c.Role))
		addKeyUsage(b, c.KeyUsage)
		addEnum(b, int(c.Usage))
	})
}

func addCert(b *cryptobyte.Builder, what string, der []byte) {
	s := cryptobyte.String(der)
	var el cryptobyte.String
	if !s.ReadASN1Element(&el, asn1.SEQUENCE) || !s.Empty() {
		b.SetError(fmt.Errorf("%w: %s is not one DER SEQUENCE", ErrInvalid, what))
		return
	}
	b.AddBytes(der)
}

func checkStatus(b *cryptobyte.Builder, s Status) {
	if !s.Valid() {
		b.SetError(fmt.Errorf("%w: status %d", ErrInvalid, uint8(s)))
	}
}

func finish(b *cryptobyte.Builder, what string) ([]byte, error) {
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("commands: building %s: %w", what, err)
	}
	return out, nil
}

// Marshal encodes the CS02a command payload.
func (p *ProvideCredentials) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, r := range p.Roles {
			addUint(b, uint64(r))
		}
	})
	return finish(&b, "CS02a command")
}

// Marshal encodes the CS02a response payload.
func (d *CredentialsDetails) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, r := range d.Roles {
			checkStatus(b, r.Status)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addUint(b, uint64(r.Role))
				addEnum(b, int(r.Status))
				addUint(b, r.Sequence)
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, c := range r.Cells {
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							addKeyUsage(b, c.KeyUsage)
							addEnum(b, int(c.Usage))
							b.AddASN1OctetString(c.Subject[:])
							b.AddASN1OctetString(c.SubjectKeyID[:])
						})
					}
				})
			})
		}
	})
	return finish(&b, "CS02a response")
}

// Marshal encodes the CS02b command payload.
func (u *UpdateCredentials) Marshal() ([]byte, error) {
	if !u.Control.Mode.Valid() {
		return nil, fmt.Errorf("%w: replacement mode %d", ErrInvalid, uint8(u.Control.Mode))
	}
	if len(u.Replacements) == 0 {
		return nil, fmt.Errorf("%w: CS02b needs at least one replacement", ErrInvalid)
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addEnum(b, int(u.Control.Mode))
			addUint(b, u.Control.AuthorisingSequence)
			addUint(b, u.Control.FloorSequence)
		})
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for i, r := range u.Replacements {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addCert(b, fmt.Sprintf("replacement %d certificate", i), r.Certificate)
					addCellID(b, r.Target)
				})
			}
		})
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for i, c := range u.CertificationPath {
				addCert(b, fmt.Sprintf("certification path certificate %d", i), c)
			}
		})
		if !u.ExecutionTime.IsZero() {
			b.AddASN1GeneralizedTime(u.ExecutionTime.UTC())
		}
	})
	return finish(&b, "CS02b command")
}

// Marshal encodes the CS02b response payload.
func (r *UpdateCredentialsResponse) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	checkStatus(&b, r.Status)
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addEnum(b, int(r.Status))
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, c := range r.Results {
				checkStatus(b, c.Status)
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addCellID(b, c.Target)
					addEnum(b, int(c.Status))
				})
			}
		})
	})
	return finish(&b, "CS02b response")
}

// Marshal encodes the CS02c command payload.
func (c *IssueCredentials) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addKeyUsage(b, c.KeyUsage) })
	return finish(&b, "CS02c command")
}

// Marshal encodes the CS02c response payload.
func (r *IssueCredentialsResponse) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	checkStatus(&b, r.Status)
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addEnum(b, int(r.Status))
		if r.CSR != nil {
			addCert(b, "certification request", r.CSR)
		}
	})
	return finish(&b, "CS02c response")
}

// Marshal encodes the CS02d command payload.
func (c *UpdateDeviceCertificate) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addCert(b, "device certificate", c.Certificate) })
	return finish(&b, "CS02d command")
}

// Marshal encodes the CS02d response payload.
func (r *UpdateDeviceCertificateResponse) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	checkStatus(&b, r.Status)
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addEnum(b, int(r.Status)) })
	return finish(&b, "CS02d response")
}

// ---- parsing ----

// der is a cryptobyte reader that remembers the whole input, so errors name
// offsets in it.
type der struct {
	all  int
	name string
	err  error
}

func (d *der) fail(s cryptobyte.String, field, format string, args ...any) bool {
	if d.err == nil {
		d.err = parseErr(d.name+"."+field, d.all-len(s), format, args...)
	}
	return false
}

func (d *der) seq(s *cryptobyte.String, out *cryptobyte.String, field string) bool {
	if d.err != nil {
		return false
	}
	if !s.ReadASN1(out, asn1.SEQUENCE) {
		return d.fail(*s, field, "want a DER SEQUENCE")
	}
	return true
}

func (d *der) uint(s *cryptobyte.String, out *uint64, field string) bool {
	if d.err != nil {
		return false
	}
	if !s.ReadASN1Integer(out) {
		return d.fail(*s, field, "want a non-negative INTEGER below 2^64")
	}
	return true
}

func (d *der) enum(s *cryptobyte.String, out *int, field string) bool {
	if d.err != nil {
		return false
	}
	if !s.ReadASN1Enum(out) {
		return d.fail(*s, field, "want an ENUMERATED")
	}
	return true
}

func (d *der) role(s *cryptobyte.String, out *smki.Role, field string) bool {
	at := *s
	var v uint64
	if !d.uint(s, &v, field) {
		return false
	}
	if v > 255 || !smki.Role(v).Valid() {
		return d.fail(at, field, "unknown remote party role %d", v)
	}
	*out = smki.Role(v)
	return true
}

func (d *der) status(s *cryptobyte.String, out *Status, field string) bool {
	at := *s
	var v int
	if !d.enum(s, &v, field) {
		return false
	}
	if v < 0 || v > 255 || !Status(v).Valid() {
		return d.fail(at, field, "unknown status %d", v)
	}
	*out = Status(v)
	return true
}

func (d *der) cellUsage(s *cryptobyte.String, out *CellUsage, field string) bool {
	at := *s
	var v int
	if !d.enum(s, &v, field) {
		return false
	}
	if v != int(CellManagement) && v != int(CellPrepaymentTopUp) {
		return d.fail(at, field, "cell usage %d, want management(0) or prepaymentTopUp(1)", v)
	}
	*out = CellUsage(v)
	return true
}

func (d *der) keyUsage(s *cryptobyte.String, out *x509.KeyUsage, field string) bool {
	if d.err != nil {
		return false
	}
	at := *s
	var bs cryptobyte.String
	if !s.ReadASN1(&bs, asn1.BIT_STRING) || len(bs) < 2 || len(bs) > 3 {
		return d.fail(at, field, "want a key usage BIT STRING of 1 or 2 bytes")
	}
	unused := int(bs[0])
	body := bs[1:]
	lastByte := body[len(body)-1]
	if unused > 7 || lastByte&(1<<unused-1) != 0 || lastByte&(1<<unused) == 0 {
		return d.fail(at, field, "BIT STRING not in DER named-bit form")
	}
	var ku x509.KeyUsage
	for i := range len(body) * 8 {
		if body[i/8]&(0x80>>(i%8)) != 0 {
			ku |= 1 << i
		}
	}
	if ku>>9 != 0 {
		return d.fail(at, field, "key usage bits beyond decipherOnly")
	}
	*out = ku
	return true
}

func (d *der) octets(s *cryptobyte.String, out []byte, field string) bool {
	if d.err != nil {
		return false
	}
	at := *s
	var v cryptobyte.String
	if !s.ReadASN1(&v, asn1.OCTET_STRING) || len(v) != len(out) {
		return d.fail(at, field, "want an OCTET STRING of %d bytes", len(out))
	}
	copy(out, v)
	return true
}

func (d *der) element(s *cryptobyte.String, out *[]byte, field string) bool {
	if d.err != nil {
		return false
	}
	var el cryptobyte.String
	if !s.ReadASN1Element(&el, asn1.SEQUENCE) {
		return d.fail(*s, field, "want a DER SEQUENCE")
	}
	*out = el
	return true
}

func (d *der) end(s cryptobyte.String, field string) bool {
	if d.err != nil {
		return false
	}
	if !s.Empty() {
		return d.fail(s, field, "%d unexpected trailing bytes", len(s))
	}
	return true
}

func (d *der) cellID(s *cryptobyte.String, c *CellID, field string) bool {
	var in cryptobyte.String
	var v int
	return d.seq(s, &in, field) && d.role(&in, &c.Role, field+".role") &&
		d.keyUsage(&in, &c.KeyUsage, field+".key-usage") && d.enum(&in, &v, field+".cell-usage") &&
		d.setCellUsage(v, c, in, field) && d.end(in, field)
}

func (d *der) setCellUsage(v int, c *CellID, at cryptobyte.String, field string) bool {
	if v != int(CellManagement) && v != int(CellPrepaymentTopUp) {
		return d.fail(at, field+".cell-usage", "cell usage %d, want management(0) or prepaymentTopUp(1)", v)
	}
	c.Usage = CellUsage(v)
	return true
}

func newDER(name string, b []byte) (*der, cryptobyte.String) {
	return &der{all: len(b), name: name}, cryptobyte.String(b)
}

// ParseProvideCredentials reads a CS02a command payload.
func ParseProvideCredentials(b []byte) (*ProvideCredentials, error) {
	d, s := newDER("cs02a-command", b)
	var in cryptobyte.String
	p := &ProvideCredentials{}
	if d.seq(&s, &in, "roles") && d.end(s, "roles") {
		for !in.Empty() && d.err == nil {
			var r smki.Role
			if d.role(&in, &r, "roles.role") {
				p.Roles = append(p.Roles, r)
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return p, nil
}

// ParseCredentialsDetails reads a CS02a response payload.
func ParseCredentialsDetails(b []byte) (*CredentialsDetails, error) {
	d, s := newDER("cs02a-response", b)
	var list cryptobyte.String
	out := &CredentialsDetails{}
	if !d.seq(&s, &list, "roles") || !d.end(s, "roles") {
		return nil, d.err
	}
	for !list.Empty() {
		var in, cells cryptobyte.String
		var r RoleAnchors
		if !d.seq(&list, &in, "role") || !d.role(&in, &r.Role, "role.role") || !d.status(&in, &r.Status, "role.status") ||
			!d.uint(&in, &r.Sequence, "role.sequence-number") || !d.seq(&in, &cells, "role.cells") || !d.end(in, "role") {
			return nil, d.err
		}
		for !cells.Empty() {
			var cin cryptobyte.String
			var c TrustAnchorCell
			if !d.seq(&cells, &cin, "cell") || !d.keyUsage(&cin, &c.KeyUsage, "cell.key-usage") ||
				!d.cellUsage(&cin, &c.Usage, "cell.cell-usage") || !d.octets(&cin, c.Subject[:], "cell.subject-unique-id") ||
				!d.octets(&cin, c.SubjectKeyID[:], "cell.subject-key-identifier") || !d.end(cin, "cell") {
				return nil, d.err
			}
			r.Cells = append(r.Cells, c)
		}
		out.Roles = append(out.Roles, r)
	}
	return out, nil
}

// ParseUpdateCredentials reads a CS02b command payload.
func ParseUpdateCredentials(b []byte) (*UpdateCredentials, error) {
	d, s := newDER("cs02b", b)
	var body, ctl, reps, path cryptobyte.String
	u := &UpdateCredentials{}
	var mode int
	if !d.seq(&s, &body, "update-security-credentials") || !d.end(s, "update-security-credentials") {
		return nil, d.err
	}
	at := body
	if !d.seq(&body, &ctl, "authorising-party-control") || !d.enum(&ctl, &mode, "authorising-party-control.replacement-mode") {
		return nil, d.err
	}
	if mode < 0 || mode >= int(replacementModes) {
		d.fail(at, "authorising-party-control.replacement-mode", "replacement mode %d, want 0 to 9", mode)
		return nil, d.err
	}
	u.Control.Mode = ReplacementMode(mode)
	if !d.uint(&ctl, &u.Control.AuthorisingSequence, "authorising-party-control.authorising-sequence-number") ||
		!d.uint(&ctl, &u.Control.FloorSequence, "authorising-party-control.floor-sequence-number") ||
		!d.end(ctl, "authorising-party-control") || !d.seq(&body, &reps, "replacements") {
		return nil, d.err
	}
	if reps.Empty() {
		d.fail(body, "replacements", "no replacement")
		return nil, d.err
	}
	for !reps.Empty() {
		var in cryptobyte.String
		var r Replacement
		if !d.seq(&reps, &in, "replacement") || !d.element(&in, &r.Certificate, "replacement.certificate") ||
			!d.cellID(&in, &r.Target, "replacement.target-cell") || !d.end(in, "replacement") {
			return nil, d.err
		}
		u.Replacements = append(u.Replacements, r)
	}
	if !d.seq(&body, &path, "certification-path") {
		return nil, d.err
	}
	for !path.Empty() {
		var c []byte
		if !d.element(&path, &c, "certification-path.certificate") {
			return nil, d.err
		}
		u.CertificationPath = append(u.CertificationPath, c)
	}
	if body.PeekASN1Tag(asn1.GeneralizedTime) {
		at := body
		if !body.ReadASN1GeneralizedTime(&u.ExecutionTime) {
			d.fail(at, "execution-date-time", "malformed GeneralizedTime")
			return nil, d.err
		}
		if _, off := u.ExecutionTime.Zone(); off != 0 || u.ExecutionTime.IsZero() {
			d.fail(at, "execution-date-time", "want a UTC time (Z) after year 1")
			return nil, d.err
		}
	}
	if !d.end(body, "update-security-credentials") {
		return nil, d.err
	}
	return u, nil
}

// ParseUpdateCredentialsResponse reads a CS02b response payload.
func ParseUpdateCredentialsResponse(b []byte) (*UpdateCredentialsResponse, error) {
	d, s := newDER("cs02b-response", b)
	var body, list cryptobyte.String
	r := &UpdateCredentialsResponse{}
	if !d.seq(&s, &body, "response") || !d.end(s, "response") || !d.status(&body, &r.Status, "status") ||
		!d.seq(&body, &list, "cell-results") || !d.end(body, "response") {
		return nil, d.err
	}
	for !list.Empty() {
		var in cryptobyte.String
		var c CellResult
		if !d.seq(&list, &in, "cell-result") || !d.cellID(&in, &c.Target, "cell-result.target-cell") ||
			!d.status(&in, &c.Status, "cell-result.status") || !d.end(in, "cell-result") {
			return nil, d.err
		}
		r.Results = append(r.Results, c)
	}
	return r, nil
}

// ParseIssueCredentials reads a CS02c command payload.
func ParseIssueCredentials(b []byte) (*IssueCredentials, error) {
	d, s := newDER("cs02c", b)
	var body cryptobyte.String
	c := &IssueCredentials{}
	if !d.seq(&s, &body, "issue-security-credentials") || !d.end(s, "issue-security-credentials") ||
		!d.keyUsage(&body, &c.KeyUsage, "key-usage") || !d.end(body, "issue-security-credentials") {
		return nil, d.err
	}
	return c, nil
}

// ParseIssueCredentialsResponse reads a CS02c response payload.
func ParseIssueCredentialsResponse(b []byte) (*IssueCredentialsResponse, error) {
	d, s := newDER("cs02c-response", b)
	var body cryptobyte.String
	r := &IssueCredentialsResponse{}
	if !d.seq(&s, &body, "response") || !d.end(s, "response") || !d.status(&body, &r.Status, "status") {
		return nil, d.err
	}
	if !body.Empty() && (!d.element(&body, &r.CSR, "certification-request") || !d.end(body, "response")) {
		return nil, d.err
	}
	return r, nil
}

// ParseUpdateDeviceCertificate reads a CS02d command payload.
func ParseUpdateDeviceCertificate(b []byte) (*UpdateDeviceCertificate, error) {
	d, s := newDER("cs02d", b)
	var body cryptobyte.String
	c := &UpdateDeviceCertificate{}
	if !d.seq(&s, &body, "update-device-certificate") || !d.end(s, "update-device-certificate") ||
		!d.element(&body, &c.Certificate, "device-certificate") || !d.end(body, "update-device-certificate") {
		return nil, d.err
	}
	return c, nil
}

// ParseUpdateDeviceCertificateResponse reads a CS02d response payload.
func ParseUpdateDeviceCertificateResponse(b []byte) (*UpdateDeviceCertificateResponse, error) {
	d, s := newDER("cs02d-response", b)
	var body cryptobyte.String
	r := &UpdateDeviceCertificateResponse{}
	if !d.seq(&s, &body, "response") || !d.end(s, "response") || !d.status(&body, &r.Status, "status") ||
		!d.end(body, "response") {
		return nil, d.err
	}
	return r, nil
}

// CS02 message codes other than CS02b's, whose codes ReplacementModeOf
// recognises.
const (
	CodeCS02a MessageCode = 0x0008 // provide security credentials details
	CodeCS02c MessageCode = 0x000A // issue security credentials (device re-key)
	CodeCS02d MessageCode = 0x000B // update device certificates on device
)

// DecodePayload decodes m's payload when its use case has a payload this
// package knows (the CS02 family), choosing the command or response form by
// m.CRA. It returns nil, nil for other use cases and for encrypted payloads.
func DecodePayload(m *Message) (any, error) {
	v, err := decodePayload(m)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return v, nil
}

func decodePayload(m *Message) (any, error) {
	if IsProtected(m.Payload) {
		return nil, nil
	}
	cmd := m.CRA == Command
	switch {
	case m.Code == CodeCS02a && cmd:
		return ParseProvideCredentials(m.Payload)
	case m.Code == CodeCS02a:
		return ParseCredentialsDetails(m.Payload)
	case m.Code == CodeCS02c && cmd:
		return ParseIssueCredentials(m.Payload)
	case m.Code == CodeCS02c:
		return ParseIssueCredentialsResponse(m.Payload)
	case m.Code == CodeCS02d && cmd:
		return ParseUpdateDeviceCertificate(m.Payload)
	case m.Code == CodeCS02d:
		return ParseUpdateDeviceCertificateResponse(m.Payload)
	}
	if mode, ok := ReplacementModeOf(m.Code); ok {
		if !cmd {
			return ParseUpdateCredentialsResponse(m.Payload)
		}
		u, err := ParseUpdateCredentials(m.Payload)
		if err == nil && u.Control.Mode != mode {
			return nil, parseErr("cs02b.authorising-party-control.replacement-mode", 0,
				"mode %s does not match message code %s", u.Control.Mode, m.Code)
		}
		return u, err
	}
	return nil, nil
}
