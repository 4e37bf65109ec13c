package router

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// Caller is the authenticated DCC user submitting a request, taken from its
// DCCKI mutual-TLS client certificate.
type Caller struct {
	// EUI is the user's entity identifier.
	EUI smki.EUI
	// Role is the user's DCC User Role.
	Role smki.UserRole
}

// String prints the caller as "EUI/role".
func (c Caller) String() string { return c.EUI.String() + "/" + string(c.Role) }

// ServiceRequest is what the catalogue knows of one message code: the DUIS
// service reference variant, whether it is critical, and which DCC User
// Roles may send it (service-requests.tsv).
type ServiceRequest struct {
	// Ref is the service reference variant, such as "7.2".
	Ref string
	// Critical is true for critical commands: signed by the Remote Party,
	// their responses signed by the device.
	Critical bool
	// Roles lists the DCC User Roles eligible to send the request.
	Roles []smki.UserRole
}

// Device is the router's registry entry for a device: its key-agreement
// public key (the ACB MAC key's other half), its digital-signing public key
// (to check signed responses), and the organisations that hold its supplier
// and network operator trust anchors.
type Device struct {
	// EUI is the device's entity identifier.
	EUI smki.EUI
	// KeyAgreement is the device's key-agreement public key.
	KeyAgreement *ecdh.PublicKey
	// Signing is the device's digital-signing public key; nil when unknown,
	// in which case signed responses cannot be checked and are refused.
	Signing *ecdsa.PublicKey
	// Supplier is the EUI of the current supplier (the supplier trust
	// anchor on the device).
	Supplier smki.EUI
	// NetworkOperator is the EUI of the network operator.
	NetworkOperator smki.EUI
	// ChangeState is the state of the device's open change of supplier,
	// "pending" or "unsettled" (decision 014); "" when none is open. It
	// comes with the registry entry, so the ownership stage pays no extra
	// look-up for it.
	ChangeState string
	// SupplierKeyID and NetworkOperatorKeyID are the subject key
	// identifiers of the digital-signing anchors the device holds for its
	// supplier and network operator, nil when unknown: the key the router
	// checks that party's signatures with (decision 016).
	SupplierKeyID, NetworkOperatorKeyID []byte
}

// anchorKeyID returns the key identifier of the digital-signing anchor
// the device holds for the remote party role, nil when unknown.
func (d Device) anchorKeyID(role smki.Role) []byte {
	switch role {
	case smki.RoleSupplier:
		return d.SupplierKeyID
	case smki.RoleNetworkOperator:
		return d.NetworkOperatorKeyID
	}
	return nil
}

// Consent is the query for a live consent record: an other user reading a
// consumer's device under a scope of service requests (spec section 11).
type Consent struct {
	Device smki.EUI
	User   smki.EUI
	Ref    string
	At     time.Time
}

// Verdict is the anomaly detector's decision on one command.
type Verdict struct {
	// Quarantined is true when a threshold was breached; the command is then
	// held, not MAC'd nor forwarded.
	Quarantined bool
	// Reference is the quarantine event reference given to the user.
	Reference string
	// Breach names the kind of breach (user threshold, DCC threshold,
	// attribute limits).
	Breach string
}

// Screening is what the router tells the anomaly detector about a command
// that passed every earlier check.
type Screening struct {
	// ID is the router's identifier of the command.
	ID      string
	Caller  Caller
	Target  smki.EUI
	Ref     string
	Code    commands.MessageCode
	Counter uint64
	// Attributes are values inside the command that attribute limits
	// check (AttrMaxPrice, ...); nil when the command carries none.
	Attributes map[string]int64
	// Message is the command bytes as submitted (no MAC), kept by the
	// detector when it quarantines, for release.
	Message []byte
	At      time.Time
}

// Record is the durable record of an accepted command: written with its
// entry in the outbox and the counter advance in one transaction (the Admitter's).
type Record struct {
	ID     string
	Caller Caller
	// Originator is the originator on the wire, whose counter the device
	// checks: the caller, or the ACB for an other user's command.
	Originator smki.EUI
	Target     smki.EUI
	Counter    uint64
	Code       commands.MessageCode
	Ref        string
	Critical   bool
	// Barrier orders the target's outbox (decision 014 step 2): the
	// command goes only after every command for the target admitted
	// before it has left the outbox, and none admitted after it goes
	// first. The change of supplier's CS02b and CS02a are barriers.
	Barrier  bool
	Message  []byte // the MAC'd command as forwarded
	Accepted time.Time
}

// Receipt is what Submit returns for an accepted command.
type Receipt struct {
	// ID names the command for GET /v1/commands/{id}.
	ID string `json:"id"`
	// Status is "accepted".
	Status string `json:"status"`
	// Target is the device the command goes to.
	Target smki.EUI `json:"target"`
	// Counter is the originator counter.
	Counter uint64 `json:"counter"`
	// Ref is the service reference variant.
	Ref string `json:"serviceReference"`
	// Accepted is when the command became durable.
	Accepted time.Time `json:"accepted"`
	// Change is the change of the device's anchors a CS02b rotation
	// opened (GET /v1/key-rotations/{id}); "" for other commands.
	Change string `json:"change,omitempty"`
}

// Catalogue maps message codes to the service request variants they serve
// (one GBCS use case may serve several variants, such as 4.8.1 to 4.8.3).
// GBCSCatalogue is the implementation over package commands.
type Catalogue interface {
	Lookup(code commands.MessageCode) ([]ServiceRequest, error)
}

// Registry is the device registry and the consent records.
type Registry interface {
	// Device returns the device, or an error wrapping ErrUnknownDevice.
	Device(ctx context.Context, eui smki.EUI) (Device, error)
	// LiveConsent reports whether a consent record covers the query.
	LiveConsent(ctx context.Context, q Consent) (bool, error)
}

// Certificates finds a DCC user's organisation certificates and validates
// their path to the SMKI root with revocation.
type Certificates interface {
	// SigningCertificate returns the user's current digital-signing
	// organisation certificate for the remote party role, DER-encoded:
	// the one whose subject key identifier is keyID (the key a device
	// holds), or the newest when keyID is nil.
	SigningCertificate(ctx context.Context, eui smki.EUI, role smki.Role, keyID []byte) ([]byte, error)
	// KeyAgreementCertificate returns the user's current key-agreement
	// organisation certificate for the role, DER-encoded.
	KeyAgreementCertificate(ctx context.Context, eui smki.EUI, role smki.Role) ([]byte, error)
	// VerifyPath validates the organisation certificate's path to the root,
	// with revocation, at the given time, and returns its public key.
	VerifyPath(ctx context.Context, der []byte, at time.Time) (*ecdsa.PublicKey, error)
}

// KeyAgreement is the access control broker's key-agreement private key, in
// the key store: it computes Z with a device's public key and never exposes
// the private key.
type KeyAgreement interface {
	ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error)
}

// Ledger gives the router's recorded counters (the Admitter records them).
type Ledger interface {
	// LastCounter returns the last counter forwarded for (originator,
	// target), and false when none was.
	LastCounter(ctx context.Context, originator, target smki.EUI) (uint64, bool, error)
}

// Auditor appends audit entries.
type Auditor interface {
	Audit(ctx context.Context, e AuditEvent) error
}

// AuditEvent is one audit entry written by the router.
type AuditEvent struct {
	// Action is "command.accepted", "command.refused", "command.quarantined",
	// "command.forwarded", "response.received".
	Action string
	Caller Caller
	Target smki.EUI
	// Counter is the originator counter, when known.
	Counter uint64
	// Code is the message code, when known.
	Code commands.MessageCode
	// Kind is the refusal kind's code, for refusals.
	Kind string
	// Stage is the pipeline stage that refused the command (Stages), for
	// the pipeline's refusals.
	Stage string
	// Detail says what happened, without secrets.
	Detail string
	// CommandID names the command, once recorded.
	CommandID string
	At        time.Time
}
