package router

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// This file runs the change of supplier (DUIS 6.23, gbcs-security.md
// section 9, gbcs-payloads.md 3.3) as decision 014 designs it: the new
// supplier asks, the DCC's transitional change-of-supplier party (TCoS)
// signs a CS02b supplierByTransCoS (0x0107) that replaces the meter's three
// supplier cells, the broker MACs it, and ownership moves only on the
// meter's answer.

// The message codes of the change of supplier.
const (
	codeCS02a        commands.MessageCode = 0x0008
	codeCS02bByTCoS  commands.MessageCode = 0x0107
	refChangeSupply                       = "6.23"
	changeAuditEvent                      = "router.device.credentials.change"
)

// changeStore is what the change desk needs of *store.RouterStore.
type changeStore interface {
	RegisteredSupplier(ctx context.Context, device smki.EUI, at time.Time) (store.SupplyRegistration, error)
	FindCertificates(ctx context.Context, q store.CertQuery) ([]store.Certificate, error)
	OpenOwnershipChange(ctx context.Context, c store.OwnershipChange, es ...store.AuditEvent) error
	OwnershipChange(ctx context.Context, id string) (store.OwnershipChange, error)
	OwnershipChangeByCommand(ctx context.Context, commandID string) (store.OwnershipChange, error)
	UnsettleOwnershipChange(ctx context.Context, id, detail string, at time.Time, es ...store.AuditEvent) error
	SettleOwnershipChange(ctx context.Context, id, outcome, supplier, detail string, at time.Time, es ...store.AuditEvent) error
	RecordOwnershipRead(ctx context.Context, id, readCommandID string, at time.Time) error
	OpenOwnershipChanges(ctx context.Context) ([]store.OwnershipChange, error)
	RouterCommand(ctx context.Context, id string) (store.RouterCommand, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Defaults of ChangeDeskConfig's timing (decision 014, steps 4 and 5).
const (
	DefaultChangeAnswerTimeout = 2 * time.Minute
	DefaultChangeReadTimeout   = 2 * time.Minute
	DefaultChangeReadMaxWait   = time.Hour
	DefaultChangeSweep         = 10 * time.Second
	// DefaultChangeReadAlertAfter is how many reads of an unsettled
	// change go unanswered before an operator is alerted.
	DefaultChangeReadAlertAfter = 5
)

// operatorAlertAction is the audit action of an operator alert.
const operatorAlertAction = "router.operator.alert"

// caLister lists the CAs of the SMKI repository (*store.SMKIStore), for
// the certification path a CS02b carries.
type caLister interface {
	CAs(ctx context.Context) ([]store.CA, error)
}

// ChangeDeskConfig configures a ChangeDesk.
type ChangeDeskConfig struct {
	// Store holds the registration data and the ownership changes.
	Store changeStore
	// CAs gives the organisation CA certificates a CS02b's certification
	// path carries; nil sends none.
	CAs caLister
	// TCoS is the transitional change-of-supplier party's EUI and TCoSKey
	// its digital-signing key, from the key store: it signs every CS02b
	// supplierByTransCoS.
	TCoS    smki.EUI
	TCoSKey crypto.Signer
	// Rand is the signatures' randomness; nil for crypto/rand.
	Rand io.Reader
	// AnswerTimeout is how long a CS02b's answer is awaited before its
	// change becomes unsettled and the meter's anchors are read;
	// ReadTimeout how long a read's answer is awaited before reading
	// again, doubling with each read up to ReadMaxWait; Sweep how often
	// Run looks. Zero for the defaults.
	AnswerTimeout, ReadTimeout, ReadMaxWait, Sweep time.Duration
	// ReadAlertAfter is how many reads of an unsettled change may go
	// unanswered before an operator alert (audit, error log, metric);
	// zero for DefaultChangeReadAlertAfter.
	ReadAlertAfter int
}

// ChangeDesk runs changes of supplier and owners' rotations of their keys
// through the router (decisions 014 and 016).
type ChangeDesk struct {
	router *Router
	cfg    ChangeDeskConfig
}

// NewChangeDesk returns a desk sending through r.
func NewChangeDesk(r *Router, cfg ChangeDeskConfig) (*ChangeDesk, error) {
	if cfg.Store == nil || (cfg.TCoSKey == nil) != cfg.TCoS.IsZero() {
		return nil, fmt.Errorf("%w: the change desk needs a store, and the TCoS EUI and key together (neither for rotations only)", ErrConfig)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AnswerTimeout, DefaultChangeAnswerTimeout)
	def(&cfg.ReadTimeout, DefaultChangeReadTimeout)
	def(&cfg.ReadMaxWait, DefaultChangeReadMaxWait)
	def(&cfg.Sweep, DefaultChangeSweep)
	if cfg.ReadAlertAfter <= 0 {
		cfg.ReadAlertAfter = DefaultChangeReadAlertAfter
	}
	d := &ChangeDesk{router: r, cfg: cfg}
	// The pipeline hands an owner's CS02b to the desk (rotate.go).
	r.desk = d
	return d, nil
}

// ChangeRequest is a new supplier's request for a device (DUIS 6.23): the
// serial numbers, in hex as the SMKI repository lists them, of its
// organisation certificates in the supplier role that the meter is to hold.
type ChangeRequest struct {
	Target smki.EUI `json:"target"`
	// DS is the digital-signing certificate, KA the key-agreement one,
	// PrepaymentKA the key-agreement certificate for the prepayment top-up
	// cell.
	DS           string `json:"ds"`
	KA           string `json:"ka"`
	PrepaymentKA string `json:"prepaymentKa"`
	// ExecuteAt, when set, dates the CS02b: the meter executes it then (at
	// most MaxExecuteDelay ahead) and raises alert 0x00CB; the change stays
	// pending until then.
	ExecuteAt *time.Time `json:"executeAt,omitempty"`
}

// ChangeStatus is a change of supplier as its requester sees it.
type ChangeStatus struct {
	ID     string   `json:"id"`
	Target smki.EUI `json:"target"`
	// State is pending, unsettled, or once settled its outcome: applied,
	// refused (the meter refused it; Detail has its status codes),
	// not-applied or diverged.
	State    string   `json:"state"`
	OldOwner smki.EUI `json:"oldOwner"`
	NewOwner smki.EUI `json:"newOwner"`
	// CommandID is the CS02b's command, whose response is delivered to the
	// requester.
	CommandID string `json:"commandId"`
	Detail    string `json:"detail,omitempty"`
	// Kind is the CS02b's replacement mode (supplierByTransCoS,
	// supplierBySupplier, networkOperatorByNetworkOperator); DSKeyID the
	// target digital-signing key identifier, in hex.
	Kind    string `json:"kind"`
	DSKeyID string `json:"dsKeyId,omitempty"`
	// ExecuteAt is when the meter executes a future-dated CS02b.
	ExecuteAt *time.Time `json:"executeAt,omitempty"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
}

func statusOf(c store.OwnershipChange) ChangeStatus {
	st := ChangeStatus{ID: c.ID, State: c.State, CommandID: c.CommandID, Detail: c.Detail, Kind: c.Kind, DSKeyID: c.DSKeyID,
		Created: c.CreatedAt, Updated: c.UpdatedAt}
	if !c.ExecuteAt.IsZero() {
		t := c.ExecuteAt
		st.ExecuteAt = &t
	}
	if c.State == store.ChangeSettled {
		st.State = c.Outcome
	}
	st.Target, _ = smki.ParseEUI(c.Device)
	st.OldOwner, _ = smki.ParseEUI(c.OldOwner)
	st.NewOwner, _ = smki.ParseEUI(c.NewOwner)
	return st
}

// targetCert is one certificate a CS02b puts in a supplier cell.
type targetCert struct {
	name   string
	serial string
	usage  x509.KeyUsage
	cell   asn.TrustAnchorCellIdentifier
	cert   *smki.Certificate
}

// RequestChange starts a change of supplier for the calling supplier: the
// registration data must name it for the device from now; its three
// certificates must be in the repository, unrevoked, with a valid path,
// of role supplier and its EUI; no other change may be open for the device
// (change-pending). The change is recorded pending (audited) before the
// CS02b is built, signed by the TCoS, MAC'd and queued. Every refusal is
// audited.
func (d *ChangeDesk) RequestChange(ctx context.Context, caller Caller, in ChangeRequest) (ChangeStatus, error) {
	r := d.router
	now := r.now()
	st, err := d.requestChange(ctx, caller, in, now)
	if err != nil && !isAudited(err) {
		r.audit(context.WithoutCancel(ctx), AuditEvent{Action: "change-of-supplier.refused", Caller: caller, Target: in.Target,
			Kind: KindOf(err).Code(), Detail: clip(err.Error(), maxRefusalDetail), At: now})
		return ChangeStatus{}, audited(err)
	}
	return st, err
}

func (d *ChangeDesk) requestChange(ctx context.Context, caller Caller, in ChangeRequest, now time.Time) (ChangeStatus, error) {
	r := d.router
	if err := r.authenticate(ctx, &submission{caller: caller}); err != nil {
		return ChangeStatus{}, err
	}
	if d.cfg.TCoSKey == nil {
		return ChangeStatus{}, fmt.Errorf("%w: this router has no TCoS key: changes of supplier are not run", ErrUnavailable)
	}
	if sr, ok := commands.LookupServiceRequest(refChangeSupply); !ok || !sr.Eligible(caller.Role) {
		return ChangeStatus{}, fmt.Errorf("%w: role %s may not request a change of supplier (%s)", ErrNotEligible, caller.Role, refChangeSupply)
	}
	if in.Target.IsZero() {
		return ChangeStatus{}, fmt.Errorf("%w: target device is required", ErrBadRequest)
	}
	at, err := checkExecuteAt(in.ExecuteAt, now)
	if err != nil {
		return ChangeStatus{}, err
	}
	reg, err := d.cfg.Store.RegisteredSupplier(ctx, in.Target, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ChangeStatus{}, fmt.Errorf("%w: the registration data name no incoming supplier for device %s", ErrNotOwner, in.Target)
	case err != nil:
		return ChangeStatus{}, fmt.Errorf("%w: reading registration data: %w", ErrUnavailable, err)
	case reg.IncomingSupplier != caller.EUI.String():
		return ChangeStatus{}, fmt.Errorf("%w: the registration data name another supplier for device %s from %s",
			ErrNotOwner, in.Target, reg.EffectiveFrom.UTC().Format(time.RFC3339))
	}
	dev, err := r.cfg.Registry.Device(ctx, in.Target)
	switch {
	case errors.Is(err, ErrUnknownDevice):
		return ChangeStatus{}, err
	case err != nil:
		return ChangeStatus{}, fmt.Errorf("%w: looking up device %s: %w", ErrUnavailable, in.Target, err)
	case dev.ChangeState != "":
		return ChangeStatus{}, fmt.Errorf("%w: device %s has a change of supplier %s", ErrChangePending, in.Target, dev.ChangeState)
	case dev.Supplier == caller.EUI:
		return ChangeStatus{}, fmt.Errorf("%w: %s is already the supplier of device %s", ErrConflict, caller.EUI, in.Target)
	}
	targets := []*targetCert{
		{name: "ds", serial: in.DS, usage: x509.KeyUsageDigitalSignature,
			cell: asn.Cell(asn.RoleSupplier, asn.DigitalSignature, asn.CellManagement)},
		{name: "ka", serial: in.KA, usage: x509.KeyUsageKeyAgreement,
			cell: asn.Cell(asn.RoleSupplier, asn.KeyAgreement, asn.CellManagement)},
		{name: "prepaymentKa", serial: in.PrepaymentKA, usage: x509.KeyUsageKeyAgreement,
			cell: asn.Cell(asn.RoleSupplier, asn.KeyAgreement, asn.CellPrePaymentTopUp)},
	}
	for _, t := range targets {
		if err := d.checkCertificate(ctx, caller, smki.RoleSupplier, t, now); err != nil {
			return ChangeStatus{}, err
		}
	}
	path, err := d.certificationPath(ctx, targets)
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}

	// The CS02b: the TCoS's counter for the device is also its
	// authorising sequence number [3], greater than any it sent before
	// (the meter keeps the greatest per role).
	last, known, err := r.cfg.Ledger.LastCounter(ctx, d.cfg.TCoS, in.Target)
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: reading counter: %w", ErrUnavailable, err)
	}
	counter := pickCounter(last, known, now)
	if err := checkCounter(d.cfg.TCoS, in.Target, last, known, counter, now); err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: TCoS counter: %w", ErrUnavailable, err)
	}
	if counter > math.MaxInt64 {
		return ChangeStatus{}, fmt.Errorf("%w: TCoS counter %d exceeds a sequence number", ErrUnavailable, counter)
	}
	floor := asn.SeqNumber(0)
	cmd := &asn.UpdateSecurityCredentialsCommand{
		AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{CredentialsReplacementMode: asn.SupplierByTransCoS,
			AuthorisingRemotePartySeqNumber: asn.SeqNumber(counter), NewRemotePartyFloorSeqNumber: &floor},
		CertificationPathCertificates: path,
		ExecutionDateTime:             at,
	}
	for _, t := range targets {
		cmd.Replacements = append(cmd.Replacements, asn.TrustAnchorReplacement{
			ReplacementCertificate: asn.Certificate{Raw: t.cert.Raw}, TargetTrustAnchorCell: t.cell})
	}
	payload, err := cmd.Marshal()
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: encoding the CS02b: %w", ErrUnavailable, err)
	}
	var executeAt time.Time
	if at != nil {
		executeAt = at.Time()
	}
	changeID, err := r.newID()
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: change id: %w", ErrUnavailable, err)
	}
	commandID, err := r.newID()
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: command id: %w", ErrUnavailable, err)
	}
	ch := store.OwnershipChange{ID: changeID, Device: in.Target.String(), Kind: asn.SupplierByTransCoS.String(),
		Requester: caller.EUI.String(), OldOwner: euiText(dev.Supplier), NewOwner: caller.EUI.String(),
		State: store.ChangePending, CommandID: commandID, Counter: counter, Sequence: int64(counter), CreatedAt: now, UpdatedAt: now,
		AnchorRole: store.AnchorSupplier, DSKeyID: fmt.Sprintf("%X", targets[0].cert.SubjectKeyID), ExecuteAt: executeAt}
	attempt := store.AuditEvent{Time: now, Actor: caller.String(), Action: changeAuditEvent, Object: in.Target.String(),
		Outcome: store.OutcomeAttempt, Details: map[string]any{"change": changeID, "oldOwner": ch.OldOwner, "newOwner": ch.NewOwner,
			"commandId": commandID, "sequence": counter, "ds": in.DS, "ka": in.KA, "prepaymentKa": in.PrepaymentKA}}
	// Persisted pending before the CS02b exists (decision 014, step 1).
	switch err := d.cfg.Store.OpenOwnershipChange(ctx, ch, attempt); {
	case errors.Is(err, store.ErrConflict):
		return ChangeStatus{}, fmt.Errorf("%w: device %s: %w", ErrChangePending, in.Target, err)
	case errors.Is(err, store.ErrNotFound):
		return ChangeStatus{}, fmt.Errorf("%w: %s is not in the device registry", ErrUnknownDevice, in.Target)
	case err != nil:
		return ChangeStatus{}, fmt.Errorf("%w: recording the change: %w", ErrUnavailable, err)
	}
	if err := d.send(ctx, caller, dev, commandID, counter, payload, now); err != nil {
		// Nothing went to the meter: the change settles as not applied.
		d.settle(ctx, ch, store.OutcomeNotApplied, ch.OldOwner, "the CS02b was not sent: "+err.Error(), store.OutcomeFailure)
		return ChangeStatus{}, err
	}
	return statusOf(ch), nil
}

// checkCertificate finds t's certificate in the repository by serial
// (unrevoked) and checks it: an organisation certificate of the caller in
// role with t's key usage and a valid path.
func (d *ChangeDesk) checkCertificate(ctx context.Context, caller Caller, role smki.Role, t *targetCert, now time.Time) error {
	serial, err := smki.ParseSerial(t.serial)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadRequest, t.name, err)
	}
	certs, err := d.cfg.Store.FindCertificates(ctx, store.CertQuery{EUI: caller.EUI.String(), Kind: store.KindOrg, Serial: serial})
	if err != nil {
		return fmt.Errorf("%w: looking up certificate %X: %w", ErrUnavailable, serial, err)
	}
	if len(certs) != 1 {
		return fmt.Errorf("%w: %s: no unrevoked organisation certificate of %s with serial %X in the repository", ErrCertPath, t.name, caller.EUI, serial)
	}
	c, err := smki.ParseCertificate(certs[0].DER)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCertPath, t.name, err)
	}
	switch {
	case c.Kind != smki.KindOrganisation || c.Role != role:
		return fmt.Errorf("%w: %s: a %s certificate of role %s, want an organisation certificate of role %s", ErrCertPath, t.name, c.Kind, c.Role, role)
	case c.EUI != caller.EUI:
		return fmt.Errorf("%w: %s: certificate of %s, not of the caller %s", ErrCertPath, t.name, c.EUI, caller.EUI)
	case c.KeyUsage != t.usage:
		return fmt.Errorf("%w: %s: key usage %s, want %s", ErrCertPath, t.name, smki.KeyUsageString(c.KeyUsage), smki.KeyUsageString(t.usage))
	}
	if _, err := d.router.cfg.Certificates.VerifyPath(ctx, c.Raw, now); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCertPath, t.name, err)
	}
	t.cert = c
	return nil
}

// certificationPath returns the organisation CA certificates that issued
// the targets, for a meter holding a root anchor to check them against.
func (d *ChangeDesk) certificationPath(ctx context.Context, targets []*targetCert) ([]asn.Certificate, error) {
	out := []asn.Certificate{}
	if d.cfg.CAs == nil {
		return out, nil
	}
	cas, err := d.cfg.CAs.CAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing CAs: %w", err)
	}
	for _, ca := range cas {
		if ca.Kind != store.CAKindOCA {
			continue
		}
		issuer, err := smki.ParseCertificate(ca.CertDER)
		if err != nil {
			continue
		}
		for _, t := range targets {
			if t.cert.CheckSignatureFrom(issuer) == nil {
				out = append(out, asn.Certificate{Raw: ca.CertDER})
				break
			}
		}
	}
	return out, nil
}

// send signs the CS02b as the TCoS, MACs it as the broker and records it
// in the outbox, for the requester: its response is delivered to it. It
// is not screened by the anomaly detector: a quarantined CS02b released
// later would reach the meter after its change settled.
func (d *ChangeDesk) send(ctx context.Context, caller Caller, dev Device, id string, counter uint64, payload []byte, now time.Time) error {
	r := d.router
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: d.cfg.TCoS, Recipient: dev.EUI,
		Code: codeCS02bByTCoS, Payload: payload}
	if err := commands.Sign(d.cfg.Rand, d.cfg.TCoSKey, m); err != nil {
		return fmt.Errorf("%w: signing the CS02b as the TCoS: %w", ErrUnavailable, err)
	}
	raw, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("%w: encoding the CS02b: %w", ErrUnavailable, err)
	}
	s := &submission{caller: caller, raw: raw, msg: m, device: dev, origin: d.cfg.TCoS, counter: counter, received: now, id: id,
		sr: ServiceRequest{Ref: refChangeSupply, Critical: true}}
	if err := r.keyAgreement(ctx, s); err != nil {
		return err
	}
	// A barrier: it reaches the meter only after every command admitted
	// for it before the change was recorded has left the outbox, and
	// nothing admitted after overtakes it (decision 014 step 2).
	s.record = Record{ID: id, Caller: caller, Originator: d.cfg.TCoS, Target: dev.EUI, Counter: counter, Code: codeCS02bByTCoS,
		Ref: refChangeSupply, Critical: true, Barrier: true, Accepted: now}
	accepted := AuditEvent{Action: "command.accepted", Caller: caller, Target: dev.EUI, Counter: counter, Code: codeCS02bByTCoS,
		CommandID: id, Detail: "service request 6.23: CS02b supplierByTransCoS signed by the TCoS " + d.cfg.TCoS.String(), At: now}
	_, err = r.cfg.Admitter.Admit(ctx, Admission{Released: true, Record: s.record, Audit: accepted,
		Seal: func() ([]byte, error) { return r.seal(s) }})
	if err != nil {
		if errors.Is(err, ErrReplay) {
			return fmt.Errorf("%w: TCoS counter overtaken: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("%w: admitting the CS02b: %w", ErrUnavailable, err)
	}
	if r.cfg.Notify != nil {
		r.cfg.Notify()
	}
	r.log.InfoContext(ctx, "change of supplier sent", "id", id, "caller", caller.String(), "target", dev.EUI.String(), "counter", counter)
	return nil
}

// Change returns the change id for its requester; another caller's is
// not-found.
func (d *ChangeDesk) Change(ctx context.Context, caller Caller, id string) (ChangeStatus, error) {
	c, err := d.cfg.Store.OwnershipChange(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.Requester != caller.EUI.String() {
		return ChangeStatus{}, fmt.Errorf("%w: change %q", ErrNotFound, id)
	}
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: reading change %s: %w", ErrUnavailable, id, err)
	}
	return statusOf(c), nil
}

// CredentialsAnswered implements CredentialsObserver: a CS02b's response,
// its device signature checked, settles its change (decision 014, step
// 3): every replacement done with the target certificates' subject and
// key, applied; every one failed with the cells as they were, refused;
// anything else makes it unsettled. An answer of a change already settled
// is stale and ignored (audited).
func (d *ChangeDesk) CredentialsAnswered(ctx context.Context, rec Record, resp []byte) {
	ch, ok := d.openChange(ctx, rec)
	if !ok {
		return
	}
	if rec.ID == ch.ReadCommandID {
		d.settleFromRead(ctx, ch, rec, resp)
		return
	}
	if rec.ID != ch.CommandID {
		return
	}
	outcome, detail := answerOutcome(rec, resp)
	if outcome == "" && !ch.ExecuteAt.IsZero() && acknowledged(resp) {
		// A future-dated CS02b is answered at once with commandAccepted
		// alone: the change stays pending until alert 0x00CB settles it
		// (CredentialsAlerted), or the sweep after ExecuteAt.
		d.router.log.InfoContext(ctx, "future-dated CS02b acknowledged", "change", ch.ID, "device", ch.Device,
			"executeAt", ch.ExecuteAt.UTC().Format(time.RFC3339))
		return
	}
	switch outcome {
	case store.OutcomeApplied:
		d.settle(ctx, ch, outcome, ch.NewOwner, detail, store.OutcomeSuccess)
	case store.OutcomeRefusedCoS:
		d.settle(ctx, ch, outcome, ch.OldOwner, detail, store.OutcomeRefused)
	default:
		d.unsettle(ctx, ch, detail)
	}
}

// CredentialsUnknown implements CredentialsObserver: the CS02b's outcome
// cannot be known from the transport (it failed for good, or the meter
// discarded a copy as a replay), so its change becomes unsettled.
func (d *ChangeDesk) CredentialsUnknown(ctx context.Context, rec Record, reason string) {
	ch, ok := d.openChange(ctx, rec)
	if !ok || rec.ID != ch.CommandID {
		return // a lost read is read again by Sweep
	}
	if d.unsettle(ctx, ch, reason) {
		ch.State = store.ChangeUnsettled
		if err := d.readAnchors(ctx, ch); err != nil {
			d.router.log.ErrorContext(ctx, "reading the meter's anchors", "change", ch.ID, "err", err)
		}
	}
}

// openChange returns the open change whose CS02b is rec.
func (d *ChangeDesk) openChange(ctx context.Context, rec Record) (store.OwnershipChange, bool) {
	ch, err := d.cfg.Store.OwnershipChangeByCommand(ctx, rec.ID)
	if err != nil {
		if isCS02b(rec.Code) {
			d.router.log.WarnContext(ctx, "CS02b answer matches no change", "command", rec.ID, "err", err)
		}
		return store.OwnershipChange{}, false
	}
	if ch.State == store.ChangeSettled {
		d.router.audit(ctx, AuditEvent{Action: "change-of-supplier.stale-answer", Caller: rec.Caller, Target: rec.Target, Code: rec.Code,
			CommandID: rec.ID, Detail: "answer of change " + ch.ID + ", already settled " + ch.Outcome, At: d.router.now()})
		return store.OwnershipChange{}, false
	}
	return ch, true
}

func (d *ChangeDesk) settle(ctx context.Context, ch store.OwnershipChange, outcome, supplier, detail, auditOutcome string) bool {
	now := d.router.now()
	e := store.AuditEvent{Time: now, Actor: "router", Action: changeAuditEvent, Object: ch.Device, Outcome: auditOutcome,
		Details: map[string]any{"change": ch.ID, "kind": ch.Kind, "outcome": outcome, "oldOwner": ch.OldOwner, "newOwner": ch.NewOwner,
			"owner": supplier, "dsKeyId": ch.DSKeyID, "detail": clip(detail, maxRefusalDetail)}}
	if err := d.cfg.Store.SettleOwnershipChange(ctx, ch.ID, outcome, supplier, detail, now, e); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			d.router.log.ErrorContext(ctx, "settling change of supplier", "change", ch.ID, "outcome", outcome, "err", err)
		}
		return false
	}
	d.router.log.InfoContext(ctx, "change of supplier settled", "change", ch.ID, "kind", ch.Kind, "device", ch.Device, "outcome", outcome, "owner", supplier)
	return true
}

// unsettle makes a pending change unsettled, persisted before any read;
// it reports whether it did (false for a change no longer pending).
func (d *ChangeDesk) unsettle(ctx context.Context, ch store.OwnershipChange, detail string) bool {
	now := d.router.now()
	e := store.AuditEvent{Time: now, Actor: "router", Action: "router.device.credentials.unsettled", Object: ch.Device,
		Outcome: store.OutcomeFailure, Details: map[string]any{"change": ch.ID, "detail": clip(detail, maxRefusalDetail)}}
	if err := d.cfg.Store.UnsettleOwnershipChange(ctx, ch.ID, detail, now, e); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			d.router.log.ErrorContext(ctx, "unsettling change of supplier", "change", ch.ID, "err", err)
		}
		return false
	}
	d.router.log.WarnContext(ctx, "change of supplier unsettled", "change", ch.ID, "device", ch.Device, "detail", detail)
	return true
}

// answerOutcome reads a CS02b's response against the command: applied,
// refused or "" (proves nothing about the cells), with a detail.
func answerOutcome(rec Record, resp []byte) (string, string) {
	cm, err := commands.Parse(rec.Message)
	if err != nil {
		return "", "stored CS02b unreadable: " + err.Error()
	}
	cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](cm.Payload)
	if err != nil {
		return "", "stored CS02b payload unreadable: " + err.Error()
	}
	rm, err := commands.Parse(resp)
	if err != nil {
		return "", "response unreadable: " + err.Error()
	}
	r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](rm.Payload)
	if err != nil {
		return "", "response payload is not a CS02b response: " + err.Error()
	}
	return classifyOutcome(cmd, r)
}

// classifyOutcome decides what a CS02b response proves (decision 014,
// step 3).
func classifyOutcome(cmd *asn.UpdateSecurityCredentialsCommand, r *asn.UpdateSecurityCredentialsResponse) (string, string) {
	o := r.ExecutionOutcome
	if o == nil {
		return "", "the response carries no execution outcome"
	}
	if err := cmd.CheckOutcome(o); err != nil {
		return "", "the outcome is not this command's: " + err.Error()
	}
	if len(o.ReplacementOutcomes) != len(cmd.Replacements) {
		return "", fmt.Sprintf("%d replacement outcomes for %d replacements", len(o.ReplacementOutcomes), len(cmd.Replacements))
	}
	applied, refused := true, true
	var codes []string
	for i, ro := range o.ReplacementOutcomes {
		rep := cmd.Replacements[i]
		codes = append(codes, fmt.Sprintf("%s %v", ro.AffectedTrustAnchorCell, ro.StatusCode))
		if !ro.AffectedTrustAnchorCell.Same(rep.TargetTrustAnchorCell) {
			return "", fmt.Sprintf("outcome %d is for cell %s, the replacement's is %s", i, ro.AffectedTrustAnchorCell, rep.TargetTrustAnchorCell)
		}
		c, err := smki.ParseCertificate(rep.ReplacementCertificate.Raw)
		if err != nil {
			return "", "replacement certificate unreadable: " + err.Error()
		}
		subject, key := ro.Replacing()
		wantKey := len(c.SubjectKeyID) != len(key) || bytes.Equal(c.SubjectKeyID, key[:])
		if ro.StatusCode != asn.StatusSuccess || subject != asn.EntityID(c.EUI) || !wantKey {
			applied = false
		}
		es, ek := ro.Existing()
		if ro.StatusCode == asn.StatusSuccess || es != subject || ek != key {
			refused = false
		}
	}
	switch {
	case applied:
		return store.OutcomeApplied, "the meter replaced the supplier cells: " + strings.Join(codes, ", ")
	case refused:
		return store.OutcomeRefusedCoS, "the meter refused the replacement: " + strings.Join(codes, ", ")
	}
	return "", "partial or inconsistent outcome: " + strings.Join(codes, ", ")
}

func euiText(e smki.EUI) string {
	if e.IsZero() {
		return ""
	}
	return e.String()
}

// postChange: POST /v1/changes-of-supplier {"target", "ds", "ka",
// "prepaymentKa"} is the new supplier's service request 6.23; 202 with the
// change, to poll at its Location.
func (s *Server) postChange(c echo.Context) error {
	var in ChangeRequest
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	c.Set(targetKey, in.Target)
	st, err := s.cfg.Changes.RequestChange(c.Request().Context(), callerFrom(c), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/changes-of-supplier/"+st.ID)
	return c.JSON(http.StatusAccepted, st)
}

// getChange: GET /v1/changes-of-supplier/{id} shows one of the caller's
// changes of supplier.
func (s *Server) getChange(c echo.Context) error {
	st, err := s.cfg.Changes.Change(c.Request().Context(), callerFrom(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// Run settles what it can of the open changes until ctx ends: at once
// every pending change (a router that starts does not know whether its
// CS02b went, decision 014 step 6), then every Sweep those overdue.
func (d *ChangeDesk) Run(ctx context.Context) error {
	if err := d.Sweep(ctx, true); err != nil && ctx.Err() == nil {
		d.router.log.ErrorContext(ctx, "sweeping changes of supplier", "err", err)
	}
	t := time.NewTicker(d.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := d.Sweep(ctx, false); err != nil && ctx.Err() == nil {
			d.router.log.ErrorContext(ctx, "sweeping changes of supplier", "err", err)
		}
	}
}

// Sweep moves every pending change whose answer is overdue (every pending
// change when restart) to unsettled, and reads the anchors of every
// unsettled change that has no read yet or whose latest read is overdue
// (decision 014, steps 4 to 6). A read waits until the CS02b's delivery
// attempt has ended: the CS02b is no longer waiting in the outbox.
func (d *ChangeDesk) Sweep(ctx context.Context, restart bool) error {
	chs, err := d.cfg.Store.OpenOwnershipChanges(ctx)
	if err != nil {
		return err
	}
	now := d.router.now()
	for _, ch := range chs {
		if ch.State == store.ChangePending {
			switch {
			case restart:
				if !d.unsettle(ctx, ch, "the router restarted with the change pending") {
					continue
				}
			case !now.Before(answerFrom(ch).Add(d.cfg.AnswerTimeout)):
				if !d.unsettle(ctx, ch, fmt.Sprintf("no answer to the CS02b in %s", d.cfg.AnswerTimeout)) {
					continue
				}
			default:
				continue
			}
			ch.State = store.ChangeUnsettled
		}
		if ch.Reads > 0 && now.Before(ch.ReadAt.Add(d.readWait(ch.Reads))) {
			continue
		}
		if ch.Reads > 0 && ch.Reads%d.cfg.ReadAlertAfter == 0 {
			d.operatorAlert(ctx, ch, "reads", fmt.Sprintf("%d reads of the meter's anchors unanswered", ch.Reads))
		}
		if err := d.readAnchors(ctx, ch); err != nil {
			d.router.log.ErrorContext(ctx, "reading the meter's anchors", "change", ch.ID, "err", err)
		}
	}
	return nil
}

// readWait is how long the answer to the reads-th read is awaited:
// ReadTimeout doubled with each read, at most ReadMaxWait.
func (d *ChangeDesk) readWait(reads int) time.Duration {
	w := d.cfg.ReadTimeout
	for range min(reads-1, 40) {
		if w *= 2; w >= d.cfg.ReadMaxWait {
			return d.cfg.ReadMaxWait
		}
	}
	return min(w, d.cfg.ReadMaxWait)
}

// readAnchors sends an unsettled change's meter a CS02a from the broker
// (MAC'd, authorised by its key-agreement cell) for the supplier's
// anchor, its id recorded on the change before it is sent: only the
// latest read's answer settles the change.
func (d *ChangeDesk) readAnchors(ctx context.Context, ch store.OwnershipChange) error {
	r := d.router
	if c, err := d.cfg.Store.RouterCommand(ctx, ch.CommandID); err != nil {
		return fmt.Errorf("reading the CS02b %s: %w", ch.CommandID, err)
	} else if c.State == store.CommandAccepted {
		// The CS02a is a barrier, which the outbox holds behind the CS02b
		// whatever happens here; not recording reads while the CS02b waits
		// (retries back off for long) keeps them from piling up behind it
		// and starts each read's answer timeout when it can be sent.
		return nil
	}
	target, err := smki.ParseEUI(ch.Device)
	if err != nil {
		return err
	}
	requester, err := smki.ParseEUI(ch.Requester)
	if err != nil {
		return err
	}
	dev, err := r.cfg.Registry.Device(ctx, target)
	if err != nil {
		return err
	}
	now := r.now()
	last, known, err := r.cfg.Ledger.LastCounter(ctx, r.cfg.ACB, target)
	if err != nil {
		return err
	}
	counter := pickCounter(last, known, now)
	payload, err := (&asn.ProvideSecurityCredentialDetailsCommand{
		AuthorisingRemotePartyTACellIdentifier: asn.Cell(asn.RoleAccessControlBroker, asn.KeyAgreement, asn.CellManagement),
		RemotePartyRolesCredentialsRequired:    []asn.RemotePartyRole{anchorRoleOf(ch)}}).Marshal()
	if err != nil {
		return err
	}
	id, err := r.newID()
	if err != nil {
		return err
	}
	// Persisted before it is sent (decision 014).
	if err := d.cfg.Store.RecordOwnershipRead(ctx, ch.ID, id, now); err != nil {
		return err
	}
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: r.cfg.ACB, Recipient: target, Code: codeCS02a, Payload: payload}
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	caller := Caller{EUI: requester}
	s := &submission{caller: caller, raw: raw, msg: m, device: dev, origin: r.cfg.ACB, counter: counter, received: now, id: id,
		sr: ServiceRequest{Ref: refChangeSupply}}
	if err := r.keyAgreement(ctx, s); err != nil {
		return err
	}
	// A barrier too: the outbox holds it until the CS02b's attempt has
	// ended (and anything else admitted for the meter before it).
	rec := Record{ID: id, Caller: caller, Originator: r.cfg.ACB, Target: target, Counter: counter, Code: codeCS02a,
		Ref: refChangeSupply, Barrier: true, Accepted: now}
	accepted := AuditEvent{Action: "command.accepted", Caller: caller, Target: target, Counter: counter, Code: codeCS02a, CommandID: id,
		Detail: fmt.Sprintf("CS02a read of the %s anchor for unsettled change %s (read %d)", ch.AnchorRole, ch.ID, ch.Reads+1), At: now}
	if _, err := r.cfg.Admitter.Admit(ctx, Admission{Released: true, Record: rec, Audit: accepted,
		Seal: func() ([]byte, error) { return r.seal(s) }}); err != nil {
		return fmt.Errorf("admitting the CS02a: %w", err)
	}
	if r.cfg.Notify != nil {
		r.cfg.Notify()
	}
	r.log.InfoContext(ctx, "reading the meter's anchor", "change", ch.ID, "role", ch.AnchorRole, "command", id, "device", ch.Device)
	return nil
}

// settleFromRead settles an unsettled change to what the meter's answer
// to its latest read says it holds (decision 014, step 5): the new
// owner's cells (and, when the change names it, the target DS key),
// applied; the old owner's (with another DS key), not applied; anything
// else diverged, to whoever's digital-signing cell it holds, with an
// operator alert. An answer whose broker MAC does not verify settles
// nothing.
func (d *ChangeDesk) settleFromRead(ctx context.Context, ch store.OwnershipChange, rec Record, resp []byte) {
	r := d.router
	cells, err := d.readAnchorCells(ctx, ch, rec, resp)
	if err != nil {
		r.audit(ctx, AuditEvent{Action: "change-of-supplier.read-refused", Caller: rec.Caller, Target: rec.Target, Code: rec.Code,
			CommandID: rec.ID, Detail: clip(err.Error(), maxRefusalDetail), At: r.now()})
		return
	}
	var subjects []string
	all := func(owner string) bool {
		for _, c := range cells {
			if c.subject != owner {
				return false
			}
		}
		return len(cells) > 0
	}
	dsKey := ""
	for _, c := range cells {
		subjects = append(subjects, c.subject)
		if c.ds {
			dsKey = c.keyID
		}
	}
	newKey := ch.DSKeyID == "" || dsKey == ch.DSKeyID
	detail := fmt.Sprintf("the meter's %s cells hold %s (DS key %s)", ch.AnchorRole, strings.Join(subjects, ", "), dsKey)
	switch {
	case all(ch.NewOwner) && newKey:
		d.settle(ctx, ch, store.OutcomeApplied, ch.NewOwner, detail, store.OutcomeSuccess)
	case all(ch.OldOwner) && (ch.OldOwner != ch.NewOwner || !newKey):
		if grace := ch.ExecuteAt.Add(d.cfg.ReadMaxWait); !ch.ExecuteAt.IsZero() && r.now().Before(grace) {
			// A future-dated CS02b the meter accepted waits on the meter
			// until its time (by the meter's clock): the old cells prove
			// nothing before then. Read again until the grace ends
			// (decision 016).
			r.audit(ctx, AuditEvent{Action: "change-of-supplier.read-early", Caller: rec.Caller, Target: rec.Target, Code: rec.Code,
				CommandID: rec.ID, Detail: clip(detail+"; the future-dated CS02b may still execute until "+grace.UTC().Format(time.RFC3339), maxRefusalDetail),
				At: r.now()})
			return
		}
		d.settle(ctx, ch, store.OutcomeNotApplied, ch.OldOwner, detail, store.OutcomeRefused)
	default:
		owner := ""
		if len(subjects) > 0 {
			owner = subjects[0]
		}
		if d.settle(ctx, ch, store.OutcomeDiverged, owner, detail, store.OutcomeFailure) {
			d.operatorAlert(ctx, ch, "diverged", detail)
		}
	}
}

// operatorAlert tells an operator that a change needs them: an audit
// entry (router.operator.alert, failure, naming the change), an error log
// line and the operator alert metric.
func (d *ChangeDesk) operatorAlert(ctx context.Context, ch store.OwnershipChange, reason, detail string) {
	r := d.router
	e := store.AuditEvent{Time: r.now(), Actor: "router", Action: operatorAlertAction, Object: ch.Device, Outcome: store.OutcomeFailure,
		Details: map[string]any{"change": ch.ID, "reason": reason, "kind": ch.Kind, "requester": ch.Requester, "reads": ch.Reads,
			"detail": clip(detail, maxRefusalDetail)}}
	if _, err := d.cfg.Store.AppendAudit(ctx, e); err != nil {
		r.log.ErrorContext(ctx, "audit write failed", "action", operatorAlertAction, "err", err)
	}
	r.cfg.Metrics.operatorAlerted(reason)
	r.log.ErrorContext(ctx, "change of anchors needs an operator", "change", ch.ID, "device", ch.Device, "reason", reason, "detail", detail)
}

// anchorRoleOf is the remote party role whose anchor ch replaces.
func anchorRoleOf(ch store.OwnershipChange) asn.RemotePartyRole {
	if ch.AnchorRole == store.AnchorNetworkOperator {
		return asn.RoleNetworkOperator
	}
	return asn.RoleSupplier
}

// answerFrom is when a change's CS02b answer is awaited from: its
// creation, or its execution time when future-dated.
func answerFrom(ch store.OwnershipChange) time.Time {
	if ch.ExecuteAt.After(ch.CreatedAt) {
		return ch.ExecuteAt
	}
	return ch.CreatedAt
}

// acknowledged reports whether resp is a CS02b response of commandAccepted
// alone, as a future-dated CS02b is answered.
func acknowledged(resp []byte) bool {
	m, err := commands.Parse(resp)
	if err != nil {
		return false
	}
	r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](m.Payload)
	return err == nil && r.ExecutionOutcome == nil
}

// anchorCell is one cell a CS02a answer lists.
type anchorCell struct {
	subject, keyID string
	ds             bool
}

// readAnchorCells checks a CS02a answer's broker MAC and returns the
// cells of the change's anchor role.
func (d *ChangeDesk) readAnchorCells(ctx context.Context, ch store.OwnershipChange, rec Record, resp []byte) ([]anchorCell, error) {
	r := d.router
	m, err := commands.Parse(resp)
	if err != nil {
		return nil, err
	}
	dev, err := r.cfg.Registry.Device(ctx, rec.Target)
	if err != nil {
		return nil, err
	}
	if !m.HasMAC() {
		return nil, errors.New("the CS02a answer carries no MAC")
	}
	if err := commands.CheckMAC(ctx, r.cfg.ACBKey, dev.KeyAgreement, m); err != nil {
		return nil, fmt.Errorf("the CS02a answer's MAC: %w", err)
	}
	p, err := asn.Parse[asn.ProvideSecurityCredentialDetailsResponse](m.Payload)
	if err != nil {
		return nil, err
	}
	role := anchorRoleOf(ch)
	for _, rp := range p.RemotePartyDetails {
		if rp.RemotePartyRole != role {
			continue
		}
		if rp.StatusCode != asn.StatusSuccess {
			return []anchorCell{}, nil // no anchor: diverged
		}
		var out []anchorCell
		for _, c := range rp.TrustAnchorCellDetails {
			ac := anchorCell{subject: smki.EUI(c.SubjectUniqueID).String(), keyID: fmt.Sprintf("%X", c.SubjectKeyIdentifier[:]),
				ds: c.KeyUsage.Only(asn.DigitalSignature) && c.CellUsage == asn.CellManagement}
			if ac.ds {
				out = append([]anchorCell{ac}, out...)
			} else {
				out = append(out, ac)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("the CS02a answer lists no %s anchor", ch.AnchorRole)
}
