package device

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// KeyUsage is what a trust-anchor cell's key may be used for: exactly one of
// digital signature or key agreement, as in SMKI organisation certificates.
type KeyUsage uint8

// Key usages of a trust-anchor cell.
const (
	UsageDigitalSignature KeyUsage = 1
	UsageKeyAgreement     KeyUsage = 2
)

// String names the key usage as X.509 does.
func (u KeyUsage) String() string {
	switch u {
	case UsageDigitalSignature:
		return "digitalSignature"
	case UsageKeyAgreement:
		return "keyAgreement"
	}
	return fmt.Sprintf("keyUsage(%d)", uint8(u))
}

// AnchorStatus is the status of a role's trust anchor.
type AnchorStatus uint8

// Anchor statuses.
const (
	// AnchorEmpty: the role has no cells; nothing from it is accepted.
	AnchorEmpty AnchorStatus = 0
	// AnchorInstalled: the role's cells are in use.
	AnchorInstalled AnchorStatus = 1
)

// String names the status.
func (s AnchorStatus) String() string {
	switch s {
	case AnchorEmpty:
		return "empty"
	case AnchorInstalled:
		return "installed"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ErrAnchor is wrapped by errors about unusable trust-anchor cells.
var ErrAnchor = errors.New("device: invalid trust anchor")

// Cell is one trust-anchor cell (GBCS section 9): a remote party's public key
// with the facts a device keeps about it. Cells are immutable once built and
// shared between meters.
type Cell struct {
	// KeyUsage is UsageDigitalSignature or UsageKeyAgreement.
	KeyUsage KeyUsage
	// Usage is asn.CellManagement or asn.CellPrePaymentTopUp.
	Usage asn.CellUsage
	// Subject is the EUI-64 of the party that holds the key.
	Subject smki.EUI
	// SubjectKeyID is the 8-byte subject key identifier of the key's
	// certificate (RFC 5280 4.2.1.2 method 2, as SMKI uses).
	SubjectKeyID [8]byte

	sig *ecdsa.PublicKey // set for UsageDigitalSignature
	ka  *ecdh.PublicKey  // set for UsageKeyAgreement
}

// NewCell builds a cell for a P-256 public key. The subject key identifier
// is computed as SMKI does (see SubjectKeyID).
func NewCell(usage KeyUsage, cellUsage asn.CellUsage, subject smki.EUI, pub *ecdsa.PublicKey) (*Cell, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: cell for %s: want a P-256 public key", ErrAnchor, subject)
	}
	if cellUsage != asn.CellManagement && cellUsage != asn.CellPrePaymentTopUp {
		return nil, fmt.Errorf("%w: cell for %s: unknown cell usage %d", ErrAnchor, subject, cellUsage)
	}
	c := &Cell{KeyUsage: usage, Usage: cellUsage, Subject: subject}
	switch usage {
	case UsageDigitalSignature:
		c.sig = pub
	case UsageKeyAgreement:
		k, err := pub.ECDH()
		if err != nil {
			return nil, fmt.Errorf("%w: cell for %s: %v", ErrAnchor, subject, err)
		}
		c.ka = k
	default:
		return nil, fmt.Errorf("%w: cell for %s: unknown key usage %d", ErrAnchor, subject, usage)
	}
	id := smki.KeyID(pub)
	if len(id) != 8 {
		return nil, fmt.Errorf("%w: cell for %s: not a valid P-256 point", ErrAnchor, subject)
	}
	copy(c.SubjectKeyID[:], id)
	return c, nil
}

// NewCellFromCertificate builds a cell from an SMKI organisation
// certificate read by smki.ParseCertificate: its key usage (exactly one of
// digitalSignature or keyAgreement), its subject EUI and its key. The
// certificate's own subject key identifier must match its key.
func NewCellFromCertificate(c *smki.Certificate, cellUsage asn.CellUsage) (*Cell, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil certificate", ErrAnchor)
	}
	var ku KeyUsage
	switch c.KeyUsage {
	case x509.KeyUsageDigitalSignature:
		ku = UsageDigitalSignature
	case x509.KeyUsageKeyAgreement:
		ku = UsageKeyAgreement
	default:
		return nil, fmt.Errorf("%w: certificate of %s has key usage %s, want exactly one of digitalSignature or keyAgreement", ErrAnchor, c.EUI, smki.KeyUsageString(c.KeyUsage))
	}
	if cellUsage == asn.CellPrePaymentTopUp && ku != UsageKeyAgreement {
		return nil, fmt.Errorf("%w: certificate of %s: a prepayment top-up cell needs a key-agreement key", ErrAnchor, c.EUI)
	}
	cell, err := NewCell(ku, cellUsage, c.EUI, c.PublicKey)
	if err != nil {
		return nil, err
	}
	if len(c.SubjectKeyID) != 0 && !bytes.Equal(c.SubjectKeyID, cell.SubjectKeyID[:]) {
		return nil, fmt.Errorf("%w: certificate of %s: subject key identifier %X does not match its key (%X)", ErrAnchor, c.EUI, c.SubjectKeyID, cell.SubjectKeyID)
	}
	return cell, nil
}

// SignatureKey returns the cell's ECDSA public key, or nil for a
// key-agreement cell.
func (c *Cell) SignatureKey() *ecdsa.PublicKey { return c.sig }

// AgreementKey returns the cell's ECDH public key, or nil for a
// digital-signature cell.
func (c *Cell) AgreementKey() *ecdh.PublicKey { return c.ka }

// PublicKeyBytes returns the cell's key as an uncompressed point.
func (c *Cell) PublicKeyBytes() []byte {
	if c.ka != nil {
		return c.ka.Bytes()
	}
	b, _ := c.sig.Bytes()
	return b
}

// Anchor is one role's trust anchor: its status, the sequence number that
// CS02b updates must exceed, and its cells.
type Anchor struct {
	Status   AnchorStatus
	Sequence uint64
	Cells    []*Cell
}

// find returns the cell of the given usages held by subject, or nil.
func (a *Anchor) find(subject smki.EUI, ku KeyUsage, cu asn.CellUsage) *Cell {
	for _, c := range a.Cells {
		if c.Subject == subject && c.KeyUsage == ku && c.Usage == cu {
			return c
		}
	}
	return nil
}

// holds reports whether any cell of the anchor belongs to subject.
func (a *Anchor) holds(subject smki.EUI) bool {
	for _, c := range a.Cells {
		if c.Subject == subject {
			return true
		}
	}
	return false
}

// first returns the first cell with the given usages, whoever holds it.
func (a *Anchor) first(ku KeyUsage, cu asn.CellUsage) *Cell {
	for _, c := range a.Cells {
		if c.KeyUsage == ku && c.Usage == cu {
			return c
		}
	}
	return nil
}

// anchorRoles are the roles a device keeps anchors for, indexed by their
// GBCS code (0 to 6).
var anchorRoles = [...]smki.Role{smki.RoleRoot, smki.RoleRecovery, smki.RoleSupplier,
	smki.RoleNetworkOperator, smki.RoleAccessControlBroker, smki.RoleTransitionalCoS, smki.RoleWANProvider}

// AnchorRoles returns the roles a device keeps trust anchors for, in GBCS
// code order: root, recovery, supplier, network operator, access control
// broker, transitional change of supplier, WAN provider.
func AnchorRoles() []smki.Role { return slices.Clone(anchorRoles[:]) }

func anchorIndex(r smki.Role) (int, bool) {
	if int(r) < len(anchorRoles) {
		return int(r), true
	}
	return 0, false
}

// Anchors is the full set of a device's trust anchors, one per role. An
// Anchors value is never modified once a meter uses it: updates build a new
// one (With), so one set is shared by every meter of a fleet until a meter's
// credentials diverge.
type Anchors struct {
	roles [len(anchorRoles)]Anchor
}

// NewAnchors returns an empty set: every role AnchorEmpty.
func NewAnchors() *Anchors { return &Anchors{} }

// Role returns a copy of the anchor of role r (its cells are shared,
// immutable values), and false if devices keep no anchor for r.
func (a *Anchors) Role(r smki.Role) (Anchor, bool) {
	i, ok := anchorIndex(r)
	if !ok {
		return Anchor{}, false
	}
	an := a.roles[i]
	an.Cells = slices.Clone(an.Cells)
	return an, true
}

func (a *Anchors) anchor(r smki.Role) *Anchor {
	i, ok := anchorIndex(r)
	if !ok {
		return nil
	}
	return &a.roles[i]
}

// With returns a new set equal to a with role r's cells replaced by cells
// (status installed, or empty if cells is empty) and its sequence number set
// to seq. a is not changed.
func (a *Anchors) With(r smki.Role, seq uint64, cells ...*Cell) (*Anchors, error) {
	i, ok := anchorIndex(r)
	if !ok {
		return nil, fmt.Errorf("%w: devices keep no anchor for role %s", ErrAnchor, r)
	}
	for _, c := range cells {
		if c == nil || (c.sig == nil && c.ka == nil) {
			return nil, fmt.Errorf("%w: role %s: cell without a key", ErrAnchor, r)
		}
	}
	n := *a
	n.roles[i] = Anchor{Status: AnchorEmpty, Sequence: seq, Cells: slices.Clone(cells)}
	if len(cells) > 0 {
		n.roles[i].Status = AnchorInstalled
	}
	return &n, nil
}

// withSequence returns a copy of a with role r's sequence number set.
func (a *Anchors) withSequence(r smki.Role, seq uint64) *Anchors {
	n := *a
	if i, ok := anchorIndex(r); ok {
		n.roles[i].Sequence = seq
	}
	return &n
}

// roleOf returns the first anchor role (in code order) one of whose cells
// belongs to subject.
func (a *Anchors) roleOf(subject smki.EUI) (smki.Role, bool) {
	for i := range a.roles {
		if a.roles[i].holds(subject) {
			return anchorRoles[i], true
		}
	}
	return 0, false
}

// agreementCell returns the key-agreement management cell of subject in
// whichever role holds one, or nil.
func (a *Anchors) agreementCell(subject smki.EUI) *Cell {
	for i := range a.roles {
		if c := a.roles[i].find(subject, UsageKeyAgreement, asn.CellManagement); c != nil {
			return c
		}
	}
	return nil
}

// keyUsageOfASN returns the cell key usage of a GBCS KeyUsage naming exactly
// one of digitalSignature or keyAgreement.
func keyUsageOfASN(k asn.KeyUsage) (KeyUsage, bool) {
	switch {
	case k.Only(asn.DigitalSignature):
		return UsageDigitalSignature, true
	case k.Only(asn.KeyAgreement):
		return UsageKeyAgreement, true
	}
	return 0, false
}

// asn returns the key usage as the minimal GBCS KeyUsage BIT STRING.
func (u KeyUsage) asn() asn.KeyUsage {
	if u == UsageKeyAgreement {
		return asn.NewKeyUsage(asn.KeyAgreement)
	}
	return asn.NewKeyUsage(asn.DigitalSignature)
}
