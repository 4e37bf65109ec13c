package router

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// This file runs an owner's rotation of its own keys on a device (DUIS
// 6.15.1, gbcs-security.md section 9, gbcs-payloads.md 3.3) through the
// change desk of decision 014: a supplier's CS02b supplierBySupplier
// (0x0102) or a network operator's networkOperatorByNetworkOperator
// (0x0103), signed by the owner with the key the meter holds. The router
// builds it (PrepareRotation), the owner signs it and submits it as any
// command; the pipeline hands it to the desk, which records the change
// pending before it is admitted. It settles as a change of supplier does,
// and the device's anchor key id then names the new key (decision 016).

// The message codes of an owner's rotation, and its service request.
const (
	codeCS02bBySupplier        commands.MessageCode = 0x0102
	codeCS02bByNetworkOperator commands.MessageCode = 0x0103
	refRotateKeys                                   = "6.15.1"
)

// MaxExecuteDelay bounds how far in the future a CS02b may be dated: while
// it waits, the device's change stays pending and critical commands of its
// owners are refused (decision 016).
const MaxExecuteDelay = 24 * time.Hour

// isCS02b reports whether code is a CS02b (any replacement mode).
func isCS02b(code commands.MessageCode) bool {
	return code >= 0x0100 && code <= 0x0109 || code == 0x0125 || code == 0x0126
}

// rotationMode is an owner's rotation: its mode, the role that signs it
// and whose cells it replaces, and the change's anchor role.
type rotationMode struct {
	mode   asn.CredentialsReplacementMode
	role   smki.Role
	anchor string
}

var rotationModes = map[commands.MessageCode]rotationMode{
	codeCS02bBySupplier:        {asn.SupplierBySupplier, smki.RoleSupplier, store.AnchorSupplier},
	codeCS02bByNetworkOperator: {asn.NetworkOperatorByNetworkOperator, smki.RoleNetworkOperator, store.AnchorNetworkOperator},
}

// targets returns the cells a rotation of the mode replaces, with the
// certificates' key usages: DS and KA management, and for a supplier that
// gives one (in.PrepaymentKA, or prepayment) the prepayment top-up KA.
func (m rotationMode) targets(in RotationRequest, prepayment bool) []*targetCert {
	role := asn.RemotePartyRole(m.role)
	ts := []*targetCert{
		{name: "ds", serial: in.DS, usage: x509.KeyUsageDigitalSignature, cell: asn.Cell(role, asn.DigitalSignature, asn.CellManagement)},
		{name: "ka", serial: in.KA, usage: x509.KeyUsageKeyAgreement, cell: asn.Cell(role, asn.KeyAgreement, asn.CellManagement)},
	}
	if m.role == smki.RoleSupplier && (in.PrepaymentKA != "" || prepayment) {
		ts = append(ts, &targetCert{name: "prepaymentKa", serial: in.PrepaymentKA, usage: x509.KeyUsageKeyAgreement,
			cell: asn.Cell(role, asn.KeyAgreement, asn.CellPrePaymentTopUp)})
	}
	return ts
}

// RotationRequest is an owner's request to replace its own keys on a
// device (SR 6.15.1): the serial numbers, in hex as the SMKI repository
// lists them, of its new organisation certificates.
type RotationRequest struct {
	Target smki.EUI `json:"target"`
	// DS and KA are the digital-signing and key-agreement certificates;
	// PrepaymentKA the prepayment top-up key-agreement certificate, for a
	// supplier only and optional (its cell is replaced only when given).
	DS           string `json:"ds"`
	KA           string `json:"ka"`
	PrepaymentKA string `json:"prepaymentKa,omitempty"`
	// ExecuteAt, when set, dates the CS02b: the meter executes it then (at
	// most MaxExecuteDelay ahead) and raises alert 0x00CB.
	ExecuteAt *time.Time `json:"executeAt,omitempty"`
}

// modeFor returns the rotation mode of the caller's role.
func modeFor(caller Caller) (commands.MessageCode, rotationMode, error) {
	for code, m := range rotationModes {
		if caller.Role.RemoteParty() == m.role {
			return code, m, nil
		}
	}
	return 0, rotationMode{}, fmt.Errorf("%w: role %s holds no anchor it may rotate (%s)", ErrNotEligible, caller.Role, refRotateKeys)
}

// eligibleToRotate checks the caller's role may send SR 6.15.1.
func eligibleToRotate(caller Caller) error {
	sr, ok := commands.LookupServiceRequest(refRotateKeys)
	if !ok || !sr.Eligible(caller.Role) {
		return fmt.Errorf("%w: role %s may not rotate its keys (%s)", ErrNotEligible, caller.Role, refRotateKeys)
	}
	return nil
}

// checkExecuteAt checks a CS02b's execution time: in the future, at most
// MaxExecuteDelay ahead; the cancellation time is not accepted here.
func checkExecuteAt(at *time.Time, now time.Time) (*asn.GeneralizedTime, error) {
	if at == nil {
		return nil, nil
	}
	g := asn.NewGeneralizedTime(*at)
	switch {
	case g.IsCancel():
		return nil, fmt.Errorf("%w: executeAt: cancelling a future-dated CS02b is not supported", ErrBadRequest)
	case !g.Time().After(now):
		return nil, fmt.Errorf("%w: executeAt %s is not in the future", ErrBadRequest, g.Time().Format(time.RFC3339))
	case g.Time().After(now.Add(MaxExecuteDelay)):
		return nil, fmt.Errorf("%w: executeAt %s is more than %s ahead", ErrBadRequest, g.Time().Format(time.RFC3339), MaxExecuteDelay)
	}
	return &g, nil
}

// PrepareRotation builds the CS02b for the owner's rotation of its keys on
// a device, for it to sign with its current digital-signing key and submit
// (POST /v1/commands): supplierBySupplier for a supplier, with its DS, KA
// and prepayment KA certificates; networkOperatorByNetworkOperator for a
// network operator, with its DS and KA (and a supplier's prepayment KA
// when given). The authorising cell [2] is the
// owner's DS cell, the sequence number [3] its originator counter (greater
// than any it sent the device), the floor [4] 0 and for a supplier its
// prepayment floor [5] 0. The checks are those of the submission: the
// caller owns the device (not-owner), no change is open (change-pending),
// each certificate is the caller's, unrevoked, of its role and key usage,
// with a valid path (certificate-path). Refusals are audited.
func (d *ChangeDesk) PrepareRotation(ctx context.Context, caller Caller, in RotationRequest) (PreCommand, error) {
	r := d.router
	now := r.now()
	pc, err := d.prepareRotation(ctx, caller, in, now)
	if err != nil && !isAudited(err) {
		r.audit(context.WithoutCancel(ctx), AuditEvent{Action: "key-rotation.refused", Caller: caller, Target: in.Target,
			Kind: KindOf(err).Code(), Detail: clip(err.Error(), maxRefusalDetail), At: now})
		return PreCommand{}, audited(err)
	}
	return pc, err
}

func (d *ChangeDesk) prepareRotation(ctx context.Context, caller Caller, in RotationRequest, now time.Time) (PreCommand, error) {
	r := d.router
	if err := r.authenticate(ctx, &submission{caller: caller}); err != nil {
		return PreCommand{}, err
	}
	if err := eligibleToRotate(caller); err != nil {
		return PreCommand{}, err
	}
	code, mode, err := modeFor(caller)
	if err != nil {
		return PreCommand{}, err
	}
	if in.Target.IsZero() {
		return PreCommand{}, fmt.Errorf("%w: target device is required", ErrBadRequest)
	}
	if mode.role != smki.RoleSupplier && in.PrepaymentKA != "" {
		return PreCommand{}, fmt.Errorf("%w: a network operator has no prepayment key-agreement cell", ErrBadRequest)
	}
	at, err := checkExecuteAt(in.ExecuteAt, now)
	if err != nil {
		return PreCommand{}, err
	}
	dev, err := r.cfg.Registry.Device(ctx, in.Target)
	if err != nil {
		if errors.Is(err, ErrUnknownDevice) {
			return PreCommand{}, err
		}
		return PreCommand{}, fmt.Errorf("%w: looking up device %s: %w", ErrUnavailable, in.Target, err)
	}
	if err := checkRotationOwner(caller, mode, dev); err != nil {
		return PreCommand{}, err
	}
	targets := mode.targets(in, false)
	for _, t := range targets {
		if err := d.checkCertificate(ctx, caller, mode.role, t, now); err != nil {
			return PreCommand{}, err
		}
	}
	path, err := d.certificationPath(ctx, targets)
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	last, known, err := r.cfg.Ledger.LastCounter(ctx, caller.EUI, in.Target)
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: reading counter: %w", ErrUnavailable, err)
	}
	counter := pickCounter(last, known, now)
	if err := checkCounter(caller.EUI, in.Target, last, known, counter, now); err != nil {
		return PreCommand{}, err
	}
	if counter > math.MaxInt64 {
		return PreCommand{}, fmt.Errorf("%w: counter %d exceeds a sequence number", ErrUnavailable, counter)
	}
	floor := asn.SeqNumber(0)
	authorising := asn.Cell(asn.RemotePartyRole(mode.role), asn.DigitalSignature, asn.CellManagement)
	cmd := &asn.UpdateSecurityCredentialsCommand{
		AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{CredentialsReplacementMode: mode.mode,
			AuthorisingRemotePartyTACellIdentifier: &authorising,
			AuthorisingRemotePartySeqNumber:        asn.SeqNumber(counter), NewRemotePartyFloorSeqNumber: &floor},
		CertificationPathCertificates: path,
		ExecutionDateTime:             at,
	}
	if mode.role == smki.RoleSupplier {
		cmd.AuthorisingRemotePartyControl.NewRemotePartySpecialistFloorSeqNumber = []asn.SpecialistSeqNumber{
			{SeqNumberUsage: asn.SeqNumberPrepaymentTopUp, SeqNumber: 0}}
	}
	for _, t := range targets {
		cmd.Replacements = append(cmd.Replacements, asn.TrustAnchorReplacement{
			ReplacementCertificate: asn.Certificate{Raw: t.cert.Raw}, TargetTrustAnchorCell: t.cell})
	}
	payload, err := cmd.Marshal()
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: encoding the CS02b: %w", ErrUnavailable, err)
	}
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: caller.EUI, Recipient: in.Target, Code: code, Payload: payload}
	raw, err := m.Marshal()
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return PreCommand{Message: hex.EncodeToString(raw), Code: code.String(), Ref: refRotateKeys, Critical: true,
		Counter: counter, Target: in.Target}, nil
}

// checkRotationOwner checks that the caller owns dev in the mode's role
// and that no change is open for it.
func checkRotationOwner(caller Caller, mode rotationMode, dev Device) error {
	owner := dev.Supplier
	if mode.role == smki.RoleNetworkOperator {
		owner = dev.NetworkOperator
	}
	switch {
	case owner != caller.EUI:
		return fmt.Errorf("%w: %s is not the %s of device %s: only the owner rotates its keys", ErrNotOwner, caller.EUI, mode.role, dev.EUI)
	case dev.ChangeState != "":
		return fmt.Errorf("%w: device %s has a change %s", ErrChangePending, dev.EUI, dev.ChangeState)
	}
	return nil
}

// rotation is a submitted rotation that passed the desk's checks.
type rotation struct {
	mode      rotationMode
	cmd       *asn.UpdateSecurityCredentialsCommand
	dsKeyID   string
	executeAt time.Time
}

// rotationEligibility replaces the eligibility stage for a CS02b: only an
// owner's own rotation (0x0102 by a supplier, 0x0103 by a network
// operator) may be submitted, and only with a change desk to run it.
func (r *Router) rotationEligibility(_ context.Context, s *submission) error {
	mode, ok := rotationModes[s.msg.Code]
	if !ok || r.desk == nil {
		return fmt.Errorf("%w: CS02b %s is not submittable (a change of supplier is requested with POST /v1/changes-of-supplier)",
			ErrNotEligible, s.msg.Code)
	}
	if err := eligibleToRotate(s.caller); err != nil {
		return err
	}
	if s.caller.Role.RemoteParty() != mode.role {
		return fmt.Errorf("%w: CS02b %s is signed by the %s, not by role %s", ErrNotEligible, mode.mode, mode.role, s.caller.Role)
	}
	s.sr = ServiceRequest{Ref: refRotateKeys, Critical: true, Roles: []smki.UserRole{s.caller.Role}}
	s.rotation = &rotation{mode: mode}
	return nil
}

// rotationOwnership replaces the ownership stage for a rotation: the
// caller owns the device in the mode's role, no change is open, and the
// payload is a rotation of the caller's own cells to certificates of its
// own in the repository (certificate-path otherwise).
func (r *Router) rotationOwnership(ctx context.Context, s *submission) error {
	dev, err := r.cfg.Registry.Device(ctx, s.msg.Recipient)
	if err != nil {
		if errors.Is(err, ErrUnknownDevice) {
			return err
		}
		return fmt.Errorf("%w: looking up device %s: %w", ErrUnavailable, s.msg.Recipient, err)
	}
	s.device = dev
	rot := s.rotation
	if err := checkRotationOwner(s.caller, rot.mode, dev); err != nil {
		return err
	}
	cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](s.msg.Payload)
	if err != nil {
		return fmt.Errorf("%w: CS02b payload: %w", ErrMalformed, err)
	}
	if err := cmd.CheckMessageCode(uint16(s.msg.Code)); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := cmd.CheckOwnRotation(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	ctl := &cmd.AuthorisingRemotePartyControl
	want := asn.Cell(asn.RemotePartyRole(rot.mode.role), asn.DigitalSignature, asn.CellManagement)
	if c := ctl.AuthorisingRemotePartyTACellIdentifier; c != nil && !c.Same(want) {
		return fmt.Errorf("%w: CS02b names authorising cell %s, want %s", ErrMalformed, c, want)
	}
	if ctl.AuthorisingRemotePartySeqNumber <= 0 {
		return fmt.Errorf("%w: CS02b authorising sequence number %d", ErrMalformed, ctl.AuthorisingRemotePartySeqNumber)
	}
	if at := cmd.ExecutionDateTime; at != nil {
		t := at.Time()
		if _, err := checkExecuteAt(&t, s.received); err != nil {
			return err
		}
		rot.executeAt = t
	}
	targets := rot.mode.targets(RotationRequest{}, len(cmd.Replacements) == 3)
	if len(cmd.Replacements) != len(targets) {
		return fmt.Errorf("%w: a rotation by the %s replaces %d cells, this CS02b %d", ErrCertPath, rot.mode.role, len(targets), len(cmd.Replacements))
	}
	for i, rep := range cmd.Replacements {
		t := targets[i]
		if !rep.TargetTrustAnchorCell.Same(t.cell) {
			return fmt.Errorf("%w: replacement %d targets cell %s, want %s", ErrCertPath, i, rep.TargetTrustAnchorCell, t.cell)
		}
		c, err := smki.ParseCertificate(rep.ReplacementCertificate.Raw)
		if err != nil {
			return fmt.Errorf("%w: replacement %d: %w", ErrCertPath, i, err)
		}
		t.serial = fmt.Sprintf("%X", c.SerialNumber.Bytes())
		if err := r.desk.checkCertificate(ctx, s.caller, rot.mode.role, t, s.received); err != nil {
			return err
		}
		if string(t.cert.Raw) != string(c.Raw) {
			return fmt.Errorf("%w: replacement %d is not the repository's certificate %s", ErrCertPath, i, t.serial)
		}
	}
	rot.cmd = cmd
	rot.dsKeyID = fmt.Sprintf("%X", targets[0].cert.SubjectKeyID)
	return nil
}

// rotationAdmit replaces the admit stage for a rotation: the change is
// recorded pending, with the attempt's audit entry, before the CS02b is
// admitted (MAC'd and queued, without anomaly screening, as the TCoS's
// is); a CS02b that cannot be admitted settles its change not applied.
func (r *Router) rotationAdmit(ctx context.Context, s *submission) error {
	rot, d := s.rotation, r.desk
	now := r.now()
	changeID, err := r.newID()
	if err != nil {
		return fmt.Errorf("%w: change id: %w", ErrUnavailable, err)
	}
	owner := s.caller.EUI.String()
	ch := store.OwnershipChange{ID: changeID, Device: s.msg.Recipient.String(), Kind: rot.mode.mode.String(), AnchorRole: rot.mode.anchor,
		Requester: owner, OldOwner: owner, NewOwner: owner, State: store.ChangePending, CommandID: s.id, Counter: s.counter,
		Sequence: int64(rot.cmd.AuthorisingRemotePartyControl.AuthorisingRemotePartySeqNumber), DSKeyID: rot.dsKeyID,
		ExecuteAt: rot.executeAt, CreatedAt: now, UpdatedAt: now}
	details := map[string]any{"change": changeID, "kind": ch.Kind, "owner": owner, "commandId": s.id, "sequence": ch.Sequence,
		"dsKeyId": rot.dsKeyID, "oldDsKeyId": fmt.Sprintf("%X", s.anchorKey)}
	if !rot.executeAt.IsZero() {
		details["executeAt"] = rot.executeAt.UTC().Format(time.RFC3339)
	}
	attempt := store.AuditEvent{Time: now, Actor: s.caller.String(), Action: changeAuditEvent, Object: ch.Device,
		Outcome: store.OutcomeAttempt, Details: details}
	switch err := d.cfg.Store.OpenOwnershipChange(ctx, ch, attempt); {
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: device %s: %w", ErrChangePending, ch.Device, err)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %s is not in the device registry", ErrUnknownDevice, ch.Device)
	case err != nil:
		return fmt.Errorf("%w: recording the rotation: %w", ErrUnavailable, err)
	}
	s.record = Record{ID: s.id, Caller: s.caller, Originator: s.origin, Target: s.msg.Recipient, Counter: s.counter,
		Code: s.msg.Code, Ref: refRotateKeys, Critical: true, Accepted: now}
	accepted := AuditEvent{Action: "command.accepted", Caller: s.caller, Target: s.record.Target, Counter: s.counter, Code: s.msg.Code,
		CommandID: s.id, Detail: fmt.Sprintf("service request %s: CS02b %s, change %s", refRotateKeys, rot.mode.mode, changeID), At: now}
	_, err = r.cfg.Admitter.Admit(ctx, Admission{Released: true, Record: s.record, Audit: accepted,
		Seal: func() ([]byte, error) { return r.seal(s) }})
	if err != nil {
		d.settle(context.WithoutCancel(ctx), ch, store.OutcomeNotApplied, ch.OldOwner, "the CS02b was not admitted: "+err.Error(), store.OutcomeFailure)
		if errors.Is(err, ErrReplay) || errors.Is(err, ErrMalformed) {
			return err
		}
		return fmt.Errorf("%w: admitting the CS02b: %w", ErrUnavailable, err)
	}
	s.changeID = changeID
	return nil
}

// Rotation returns the change a rotation command opened, for its
// requester: the change whose CS02b is the command id.
func (d *ChangeDesk) Rotation(ctx context.Context, caller Caller, commandID string) (ChangeStatus, error) {
	c, err := d.cfg.Store.OwnershipChangeByCommand(ctx, commandID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (c.Requester != caller.EUI.String() || c.CommandID != commandID) {
		return ChangeStatus{}, fmt.Errorf("%w: no rotation with command %q", ErrNotFound, commandID)
	}
	if err != nil {
		return ChangeStatus{}, fmt.Errorf("%w: reading rotation: %w", ErrUnavailable, err)
	}
	return statusOf(c), nil
}

// postRotation: POST /v1/key-rotations {"target", "ds", "ka",
// "prepaymentKa", "executeAt"} is the owner's service request 6.15.1: the
// CS02b to sign with its current key and submit to POST /v1/commands.
func (s *Server) postRotation(c echo.Context) error {
	var in RotationRequest
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	c.Set(targetKey, in.Target)
	pc, err := s.cfg.Changes.PrepareRotation(c.Request().Context(), callerFrom(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pc)
}

// getRotation: GET /v1/key-rotations/{commandId} shows the change the
// caller's rotation command opened.
func (s *Server) getRotation(c echo.Context) error {
	st, err := s.cfg.Changes.Rotation(c.Request().Context(), callerFrom(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// CredentialsAlerted settles the open change of device whose future-dated
// CS02b the meter has now executed: m is its CS02b alert (0x00CB), its
// device signature already checked by the caller (the router's intake of
// device alerts). The alert's outcome must repeat the sequence number [3]
// of the device's open change; it is then read as a CS02b response is:
// every replacement done with the target certificates, applied; every one
// failed with the cells as they were, refused; anything else unsettles the
// change, which is then read. An alert matching no open change is audited
// and ignored.
func (d *ChangeDesk) CredentialsAlerted(ctx context.Context, device smki.EUI, m *commands.Message) {
	r := d.router
	now := r.now()
	ignore := func(detail string) {
		r.audit(ctx, AuditEvent{Action: "change-of-supplier.stale-alert", Target: device, Code: m.Code, Detail: clip(detail, maxRefusalDetail), At: now})
	}
	if m.CRA != commands.Alert || m.Code != CodeCS02bAlert || m.Originator != device {
		ignore(fmt.Sprintf("not a CS02b alert of device %s: %s %s from %s", device, m.CRA, m.Code, m.Originator))
		return
	}
	a, err := asn.Parse[asn.UpdateSecurityCredentialsAlert](m.Payload)
	if err != nil {
		ignore("CS02b alert unreadable: " + err.Error())
		return
	}
	chs, err := d.cfg.Store.OpenOwnershipChanges(ctx)
	if err != nil {
		r.log.ErrorContext(ctx, "listing open changes for a CS02b alert", "device", device, "err", err)
		return
	}
	var ch store.OwnershipChange
	for _, c := range chs {
		if c.Device == device.String() && c.Sequence == int64(a.ExecutionOutcome.AuthorisingRemotePartySeqNumber) {
			ch = c
		}
	}
	if ch.ID == "" {
		ignore(fmt.Sprintf("CS02b alert with sequence number %d matches no open change of device %s",
			a.ExecutionOutcome.AuthorisingRemotePartySeqNumber, device))
		return
	}
	c, err := d.cfg.Store.RouterCommand(ctx, ch.CommandID)
	if err != nil {
		r.log.ErrorContext(ctx, "reading a change's CS02b", "change", ch.ID, "err", err)
		return
	}
	cm, err := commands.Parse(c.Message)
	if err != nil {
		d.unsettle(ctx, ch, "stored CS02b unreadable: "+err.Error())
		return
	}
	cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](cm.Payload)
	if err != nil {
		d.unsettle(ctx, ch, "stored CS02b payload unreadable: "+err.Error())
		return
	}
	outcome, detail := classifyOutcome(cmd, &asn.UpdateSecurityCredentialsResponse{ExecutionOutcome: &a.ExecutionOutcome})
	detail = fmt.Sprintf("alert %04X at %s: %s", uint64(a.AlertCode), a.ExecutionDateTime, detail)
	switch {
	case outcome == store.OutcomeApplied && a.AlertCode == asn.AlertFutureDatedSuccess:
		d.settle(ctx, ch, outcome, ch.NewOwner, detail, store.OutcomeSuccess)
	case outcome == store.OutcomeRefusedCoS && a.AlertCode == asn.AlertFutureDatedFailure:
		d.settle(ctx, ch, outcome, ch.OldOwner, detail, store.OutcomeRefused)
	default:
		if d.unsettle(ctx, ch, detail) {
			ch.State = store.ChangeUnsettled
			if err := d.readAnchors(ctx, ch); err != nil {
				r.log.ErrorContext(ctx, "reading the meter's anchors", "change", ch.ID, "err", err)
			}
		}
	}
}
