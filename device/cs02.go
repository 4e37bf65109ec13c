package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// This file executes the CS02 family (gbcs-payloads.md 3.3 to 3.5;
// gbcs-security.md 9), read and built with package asn: CS02a lists the
// trust anchors, CS02b replaces them, CS02c makes a new device key pair,
// CS02d installs its certificate and CS02e reads a device certificate back.

// replacementMode is a CS02b replacement mode as the meter enforces it: who
// authorises it (the authorising party: the signer, or for
// accessControlBrokerByACB the broker's MAC) and which roles' anchors it may
// replace (gbcs-payloads.md 3.3).
type replacementMode struct {
	mode    asn.CredentialsReplacementMode
	signer  smki.Role
	targets []smki.Role
}

var allButRoot = []smki.Role{smki.RoleRecovery, smki.RoleSupplier, smki.RoleNetworkOperator,
	smki.RoleAccessControlBroker, smki.RoleTransitionalCoS, smki.RoleWANProvider}

// replacementModes maps each CS02b message code to its mode. The
// contingency key sits in the root anchor.
var replacementModes = map[uint16]replacementMode{
	0x0100: {asn.RootBySupplier, smki.RoleSupplier, []smki.Role{smki.RoleRoot}},
	0x0101: {asn.RootByWanProvider, smki.RoleWANProvider, []smki.Role{smki.RoleRoot}},
	0x0102: {asn.SupplierBySupplier, smki.RoleSupplier, []smki.Role{smki.RoleSupplier}},
	0x0103: {asn.NetworkOperatorByNetworkOperator, smki.RoleNetworkOperator, []smki.Role{smki.RoleNetworkOperator}},
	0x0104: {asn.AccessControlBrokerByACB, smki.RoleAccessControlBroker, []smki.Role{smki.RoleAccessControlBroker}},
	0x0105: {asn.WanProviderByWanProvider, smki.RoleWANProvider, []smki.Role{smki.RoleWANProvider}},
	0x0106: {asn.TransCoSByTransCoS, smki.RoleTransitionalCoS, []smki.Role{smki.RoleTransitionalCoS}},
	0x0107: {asn.SupplierByTransCoS, smki.RoleTransitionalCoS, []smki.Role{smki.RoleSupplier}},
	0x0108: {asn.AnyExceptAbnormalRootByRecovery, smki.RoleRecovery, allButRoot},
	0x0109: {asn.AnyByContingency, smki.RoleRoot, anchorRoles[:]},
}

// authorisingCell returns the trust-anchor cell that authorises the mode:
// the authorising role's digital-signature cell, or the broker's
// key-agreement cell for accessControlBrokerByACB, whose MAC authorises it.
func (r replacementMode) authorisingCell() asn.TrustAnchorCellIdentifier {
	if r.signer == smki.RoleAccessControlBroker {
		return asn.Cell(asn.RoleAccessControlBroker, asn.KeyAgreement, asn.CellManagement)
	}
	return asn.Cell(asnRole(r.signer), asn.DigitalSignature, asn.CellManagement)
}

// cs02aRequest is a CS02a command that passed its authorisation.
type cs02aRequest struct {
	cmd *asn.ProvideSecurityCredentialDetailsCommand
}

// cs02bRequest is a CS02b command that passed its checks.
type cs02bRequest struct {
	cmd  *asn.UpdateSecurityCredentialsCommand
	mode replacementMode
}

// rekey holds the key pairs CS02c generated, waiting for CS02d to install
// their certificates.
type rekey struct {
	ds, ka crypto.Signer
}

func keyUsageOf(ku x509.KeyUsage) (KeyUsage, bool) {
	switch ku {
	case x509.KeyUsageDigitalSignature:
		return UsageDigitalSignature, true
	case x509.KeyUsageKeyAgreement:
		return UsageKeyAgreement, true
	}
	return 0, false
}

func x509Usage(u KeyUsage) x509.KeyUsage {
	if u == UsageKeyAgreement {
		return x509.KeyUsageKeyAgreement
	}
	return x509.KeyUsageDigitalSignature
}

// authoriseProvideCredentials checks a CS02a command against the
// authorising cell its payload names (gbcs-payloads.md 3.4): the access
// control broker's key-agreement cell authorises a MAC'd, unsigned command
// from the broker; a digital-signature cell of another role authorises a
// command signed by the party holding it, sent without MAC header.
func (m *Meter) authoriseProvideCredentials(an *Anchors, x *exchange) error {
	cmd, err := asn.Parse[asn.ProvideSecurityCredentialDetailsCommand](x.msg.Payload)
	if err != nil {
		return malformed(x.uc.name, err)
	}
	cell := cmd.AuthorisingRemotePartyTACellIdentifier
	role := smki.Role(cell.RemotePartyRole)
	acbCell := asn.Cell(asn.RoleAccessControlBroker, asn.KeyAgreement, asn.CellManagement)
	switch x.form {
	case commands.FormMAC:
		if !cell.Same(acbCell) {
			return discard(ReasonBadSignature, "CS02a authorised by %s comes MAC'd without signature; only %s authorises by MAC", cell, acbCell)
		}
		if !an.anchor(smki.RoleAccessControlBroker).holds(x.msg.Originator) {
			return discard(ReasonRoleNotAllowed, "CS02a authorised by %s from %s, which is not the access control broker", cell, x.msg.Originator)
		}
		x.role = smki.RoleAccessControlBroker
	case commands.FormSigned:
		if cell.CellUsage != asn.CellManagement || !cell.KeyUsage.Only(asn.DigitalSignature) || cell.RemotePartyRole < 0 ||
			cell.RemotePartyRole >= asn.RemotePartyRole(len(anchorRoles)) {
			return discard(ReasonRoleNotAllowed, "signed CS02a names authorising cell %s, want a digital-signature cell", cell)
		}
		if x.msg.URP != nil {
			return discard(ReasonRoleNotAllowed, "signed CS02a in the unknown-remote-party form")
		}
		if !an.anchor(role).holds(x.msg.Originator) {
			if r, ok := an.roleOf(x.msg.Originator); ok {
				return discard(ReasonRoleNotAllowed, "CS02a authorised by %s from %s (%s)", cell, x.msg.Originator, r)
			}
			return discard(ReasonUnknownSigner, "%s is in no trust anchor", x.msg.Originator)
		}
		if err := verifyFrom(an, role, x.msg, x.uc.name); err != nil {
			return err
		}
		x.role = role
	}
	x.cs02a = &cs02aRequest{cmd: cmd}
	return nil
}

// execProvideCredentials is CS02a (3.4): one RemotePartyDetails per role
// asked, in the order asked (every role the device keeps when none is):
// status success with the sequence number and the cells when the role's
// anchor is installed, trustAnchorNotFound when it is empty, and other for
// a role devices keep no anchor for.
func (m *Meter) execProvideCredentials(_ context.Context, x *exchange) ([]byte, error) {
	roles := x.cs02a.cmd.RemotePartyRolesCredentialsRequired
	if len(roles) == 0 {
		for _, r := range anchorRoles {
			roles = append(roles, asnRole(r))
		}
	}
	resp := asn.ProvideSecurityCredentialDetailsResponse{RemotePartyDetails: []asn.RemotePartyDetails{}}
	for _, r := range roles {
		d := asn.RemotePartyDetails{RemotePartyRole: r, StatusCode: asn.StatusOther}
		var a *Anchor
		if r >= 0 && r < asn.RemotePartyRole(len(anchorRoles)) {
			a = m.anchors.anchor(smki.Role(r))
		}
		switch {
		case a == nil:
		case a.Status != AnchorInstalled:
			d.StatusCode = asn.StatusTrustAnchorNotFound
		default:
			d.StatusCode = asn.StatusSuccess
			seq := asn.SeqNumber(min(a.Sequence, 1<<63-1))
			d.CurrentSeqNumber = &seq
			d.TrustAnchorCellDetails = []asn.TrustAnchorCellContents{}
			for _, c := range a.Cells {
				d.TrustAnchorCellDetails = append(d.TrustAnchorCellDetails, asn.TrustAnchorCellContents{
					KeyUsage: c.KeyUsage.asn(), CellUsage: c.Usage, SubjectUniqueID: asn.EntityID(c.Subject),
					SubjectKeyIdentifier: asn.KeyID(c.SubjectKeyID)})
			}
		}
		resp.RemotePartyDetails = append(resp.RemotePartyDetails, d)
	}
	return encodeASN(x.uc.name, &resp)
}

// authoriseUpdateCredentials checks what must hold before a CS02b command's
// counter is spent (3.3): the payload's mode is the message code's; the
// originator holds the authorising role's anchor and, unless the mode is
// authorised by the broker's MAC, signed the command with its
// digital-signature cell; the [2] authorising cell, when present, is that
// cell; the [3] authorising sequence number is greater than the one the
// meter holds for the role (else ReasonStaleSequence); and every target cell
// belongs to a role the mode may replace.
func (m *Meter) authoriseUpdateCredentials(an *Anchors, x *exchange) error {
	mode := replacementModes[x.code]
	cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](x.msg.Payload)
	if err != nil {
		return malformed(x.uc.name, err)
	}
	if err := cmd.CheckMessageCode(x.code); err != nil {
		return malformed(x.uc.name, err)
	}
	if x.msg.URP != nil {
		return discard(ReasonRoleNotAllowed, "CS02b %s in the unknown-remote-party form", mode.mode)
	}
	signer := an.anchor(mode.signer)
	if !signer.holds(x.msg.Originator) {
		if r, ok := an.roleOf(x.msg.Originator); ok {
			return discard(ReasonRoleNotAllowed, "CS02b %s from %s (%s), which is not the %s", mode.mode, x.msg.Originator, r, mode.signer)
		}
		return discard(ReasonUnknownSigner, "%s is in no trust anchor", x.msg.Originator)
	}
	x.role = mode.signer
	ctl := &cmd.AuthorisingRemotePartyControl
	if c := ctl.AuthorisingRemotePartyTACellIdentifier; c != nil && !c.Same(mode.authorisingCell()) {
		return discard(ReasonRoleNotAllowed, "CS02b %s names authorising cell %s, want %s", mode.mode, c, mode.authorisingCell())
	}
	if x.msg.Signed() {
		if err := verifyFrom(an, mode.signer, x.msg, x.uc.name); err != nil {
			return err
		}
	}
	if seq := ctl.AuthorisingRemotePartySeqNumber; seq < 0 || uint64(seq) <= signer.Sequence {
		return discard(ReasonStaleSequence, "CS02b %s: authorising sequence number %d, the meter holds %d for %s", mode.mode, seq, signer.Sequence, mode.signer)
	}
	for i, r := range cmd.Replacements {
		role := r.TargetTrustAnchorCell.RemotePartyRole
		if role < 0 || role > asn.RemotePartyRole(smki.RoleOther) || !slices.Contains(mode.targets, smki.Role(role)) {
			return discard(ReasonRoleNotAllowed, "CS02b %s may not replace cell %s (replacement %d)", mode.mode, r.TargetTrustAnchorCell, i)
		}
	}
	x.cs02b = &cs02bRequest{cmd: cmd, mode: mode}
	return nil
}

// execUpdateCredentials is CS02b (3.3). The authorising sequence number is
// spent at once. An executionDateTime in the future makes the command
// future-dated: the response is commandAccepted alone, and at that time the
// meter executes it and raises the CS02b alert (0x00CB); 99991231235959Z
// cancels the waiting command of the same mode, again answered
// commandAccepted alone. Otherwise the replacements execute now and the
// response carries their ExecutionOutcome.
func (m *Meter) execUpdateCredentials(ctx context.Context, x *exchange) ([]byte, error) {
	u := x.cs02b
	ctl := &u.cmd.AuthorisingRemotePartyControl
	m.anchors = m.anchors.withSequence(u.mode.signer, uint64(ctl.AuthorisingRemotePartySeqNumber))
	resp := asn.UpdateSecurityCredentialsResponse{}
	if at := u.cmd.ExecutionDateTime; at != nil {
		switch {
		case at.IsCancel():
			m.cancelScheduled(func(s *scheduled) bool { return s.update != nil && s.update.mode.mode == u.mode.mode })
			return encodeASN(x.uc.name, &resp)
		case at.Time().After(x.now):
			m.schedule(&scheduled{at: at.Time(), code: x.code, originator: x.msg.Originator, counter: x.msg.Counter, update: u})
			return encodeASN(x.uc.name, &resp)
		}
	}
	o, _ := m.applyUpdate(ctx, u, x.msg.Originator)
	resp.ExecutionOutcome = &o
	return encodeASN(x.uc.name, &resp)
}

// executeUpdate runs a future-dated CS02b and raises the CS02b alert
// (0x00CB) with its outcome to the command's originator: alert code 8F66
// when every replacement succeeded, 8F67 when it failed.
func (m *Meter) executeUpdate(ctx context.Context, s *scheduled) error {
	o, ok := m.applyUpdate(ctx, s.update, s.originator)
	code := asn.AlertFutureDatedSuccess
	if !ok {
		code = asn.AlertFutureDatedFailure
	}
	a := asn.UpdateSecurityCredentialsAlert{AlertCode: code, ExecutionDateTime: *s.update.cmd.ExecutionDateTime, ExecutionOutcome: o}
	return m.raiseAlert(ctx, CodeCS02bAlert, s.originator, func(*commands.Message) ([]byte, error) { return a.Marshal() })
}

// applyUpdate replaces the target cells of a CS02b and returns the
// outcome, which repeats the command's [3] sequence number, mode and [6]
// changes, with one ReplacementOutcome per replacement (the cell's subject
// and key identifier before and after). The update is all or nothing: a
// certificate that does not fit its cell gets status badCertificate, the
// other cells status other, and no cell changes. On success the replaced
// roles take the [4] floor sequence number, and the roles of [6] their
// floors.
func (m *Meter) applyUpdate(ctx context.Context, u *cs02bRequest, originator smki.EUI) (asn.ExecutionOutcome, bool) {
	cmd, ctl := u.cmd, &u.cmd.AuthorisingRemotePartyControl
	o := cmd.NewExecutionOutcome()
	o.RemotePartySeqNumberChanges = append(o.RemotePartySeqNumberChanges, ctl.OtherRemotePartySeqNumberChanges...)
	path := make([][]byte, len(cmd.CertificationPathCertificates))
	for i, c := range cmd.CertificationPathCertificates {
		path[i] = c.Raw
	}
	an, next, ok := m.anchors, m.anchors, true
	for _, r := range cmd.Replacements {
		t := r.TargetTrustAnchorCell
		role := smki.Role(t.RemotePartyRole)
		ro := asn.ReplacementOutcome{AffectedTrustAnchorCell: t, StatusCode: asn.StatusBadCertificate}
		if ku, valid := keyUsageOfASN(t.KeyUsage); valid {
			if old := next.anchor(role).find2(ku, t.CellUsage); old != nil {
				ro.ExistingSubjectUniqueID, ro.ExistingSubjectKeyID = asn.EntityID(old.Subject), asn.KeyID(old.SubjectKeyID)
			}
		}
		ro.ReplacingSubjectUniqueID, ro.ReplacingSubjectKeyID = ro.ExistingSubjectUniqueID, ro.ExistingSubjectKeyID
		cell, err := replacementCell(an, role, t, r.ReplacementCertificate.Raw, path)
		if err != nil {
			m.env.log.InfoContext(ctx, "CS02b replacement certificate refused", "eui", m.eui, "cell", t.String(), "error", err)
			ok = false
		} else {
			next = next.replaceCell(role, cell)
			ro.StatusCode = asn.StatusSuccess
			ro.ReplacingSubjectUniqueID, ro.ReplacingSubjectKeyID = asn.EntityID(cell.Subject), asn.KeyID(cell.SubjectKeyID)
		}
		o.ReplacementOutcomes = append(o.ReplacementOutcomes, ro)
	}
	if !ok {
		for i := range o.ReplacementOutcomes {
			ro := &o.ReplacementOutcomes[i]
			if ro.StatusCode == asn.StatusSuccess {
				ro.StatusCode = asn.StatusOther
				ro.ReplacingSubjectUniqueID, ro.ReplacingSubjectKeyID = ro.ExistingSubjectUniqueID, ro.ExistingSubjectKeyID
			}
		}
		return o, false
	}
	if f := ctl.NewRemotePartyFloorSeqNumber; f != nil && *f >= 0 {
		for _, r := range cmd.Replacements {
			next = next.withSequence(smki.Role(r.TargetTrustAnchorCell.RemotePartyRole), uint64(*f))
		}
	}
	for _, c := range ctl.OtherRemotePartySeqNumberChanges {
		if c.RemotePartyRole >= 0 && c.RemotePartyRole < asn.RemotePartyRole(len(anchorRoles)) && c.FloorSeqNumber >= 0 {
			next = next.withSequence(smki.Role(c.RemotePartyRole), uint64(c.FloorSeqNumber))
		}
	}
	m.anchors = next
	m.env.log.InfoContext(ctx, "trust anchors replaced", "eui", m.eui, "mode", u.mode.mode.String(),
		"authorising_sequence", int64(ctl.AuthorisingRemotePartySeqNumber), "originator", originator)
	return o, true
}

// replacementCell reads and checks a CS02b replacement certificate against
// its target cell: a root certificate for the root anchor, otherwise an
// organisation certificate of the target role and key usage. When the meter
// holds a root anchor, the certificate must chain to it through the
// certification path (or be signed by the root itself).
func replacementCell(an *Anchors, role smki.Role, t asn.TrustAnchorCellIdentifier, der []byte, path [][]byte) (*Cell, error) {
	c, err := smki.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	usage, ok := keyUsageOfASN(t.KeyUsage)
	if !ok {
		return nil, fmt.Errorf("target cell key usage %s, want digitalSignature or keyAgreement", t.KeyUsage)
	}
	if role == smki.RoleRoot {
		if c.Kind != smki.KindRoot {
			return nil, fmt.Errorf("root cell needs a root certificate, have a %s certificate", c.Kind)
		}
		if usage != UsageDigitalSignature || t.CellUsage != asn.CellManagement {
			return nil, fmt.Errorf("root cells are digital-signature management cells")
		}
		return NewCell(UsageDigitalSignature, asn.CellManagement, c.EUI, c.PublicKey)
	}
	if c.Kind != smki.KindOrganisation || c.Role != role {
		return nil, fmt.Errorf("target is a %s cell, certificate is a %s certificate of role %s", role, c.Kind, c.Role)
	}
	if c.KeyUsage != x509Usage(usage) {
		return nil, fmt.Errorf("target cell key usage %s, certificate %s", usage, smki.KeyUsageString(c.KeyUsage))
	}
	if err := chainsToRoot(an, c, path); err != nil {
		return nil, err
	}
	return NewCellFromCertificate(c, t.CellUsage)
}

// chainsToRoot checks c against the meter's root anchor, if it holds one:
// c is signed by the root, or by a certification-path certificate that the
// root signed.
func chainsToRoot(an *Anchors, c *smki.Certificate, path [][]byte) error {
	root := an.anchor(smki.RoleRoot).first(UsageDigitalSignature, asn.CellManagement)
	if root == nil {
		return nil // no root anchor installed: the authorising party is the only check
	}
	rootCert := &smki.Certificate{PublicKey: root.sig}
	if c.CheckSignatureFrom(rootCert) == nil {
		return nil
	}
	for _, der := range path {
		issuer, err := smki.ParseCertificate(der)
		if err != nil {
			continue
		}
		// Only an issuing authority (an organisation CA: a CA certificate
		// with keyCertSign) issues organisation certificates; a device CA
		// or an end entity the root also signed may not.
		if issuer.Kind != smki.KindOCA || !issuer.IsCA || issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
			continue
		}
		if c.CheckSignatureFrom(issuer) == nil && issuer.CheckSignatureFrom(rootCert) == nil {
			return nil
		}
	}
	return fmt.Errorf("certificate of %s does not chain to the root anchor", c.EUI)
}

// find2 returns the cell of the given usages, whoever holds it, or nil.
func (a *Anchor) find2(ku KeyUsage, cu asn.CellUsage) *Cell {
	if a == nil {
		return nil
	}
	return a.first(ku, cu)
}

// replaceCell returns a copy of a with role r's cell of the same key usage
// and cell usage as cell replaced by it, in its place, or cell added at the
// end; the anchor is then installed.
func (a *Anchors) replaceCell(r smki.Role, cell *Cell) *Anchors {
	n := *a
	i, _ := anchorIndex(r)
	old := n.roles[i]
	cells := slices.Clone(old.Cells)
	j := slices.IndexFunc(cells, func(c *Cell) bool { return c.KeyUsage == cell.KeyUsage && c.Usage == cell.Usage })
	if j >= 0 {
		cells[j] = cell
	} else {
		cells = append(cells, cell)
	}
	n.roles[i] = Anchor{Status: AnchorInstalled, Sequence: old.Sequence, Cells: cells}
	return &n
}

// execIssueCredentials is CS02c (3.5): a new key pair of the asked usage
// and a device certificate request for it (smki.CreateCSR, device form,
// hwType smki.OIDHWTypeReferenceMeter). The key waits for CS02d; a second
// CS02c for the same usage replaces it. A key usage other than exactly
// digitalSignature or keyAgreement is answered invalidKeyUsage; a key store
// failure keyPairGenerationFailed, a request that cannot be made
// crProductionFailed.
func (m *Meter) execIssueCredentials(ctx context.Context, x *exchange) ([]byte, error) {
	c, err := asn.Parse[asn.IssueSecurityCredentialsCommand](x.msg.Payload)
	if err != nil {
		return nil, malformed(x.uc.name, err)
	}
	fail := func(code asn.IssueResponseCode) ([]byte, error) {
		return encodeASN(x.uc.name, &asn.IssueSecurityCredentialsResponse{ResponseCode: &code})
	}
	usage, ok := keyUsageOfASN(c.KeyUsage)
	if !ok {
		return fail(1)
	}
	key, err := m.env.keys.GenerateKey(ctx, usage)
	if err == nil && usage == UsageKeyAgreement {
		_, err = agreementKey(key)
	}
	if err != nil {
		m.env.log.WarnContext(ctx, "CS02c key generation failed", "eui", m.eui, "error", err)
		return fail(2)
	}
	csr, err := smki.CreateCSR(m.env.rand, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: m.eui,
		KeyUsage: x509Usage(usage), HWType: smki.OIDHWTypeReferenceMeter}, key)
	if err != nil {
		m.env.log.WarnContext(ctx, "CS02c certificate request failed", "eui", m.eui, "error", err)
		return fail(3)
	}
	if m.pending == nil {
		m.pending = &rekey{}
	}
	if usage == UsageDigitalSignature {
		m.pending.ds = key
	} else {
		m.pending.ka = key
	}
	m.env.log.InfoContext(ctx, "new device key pair generated", "eui", m.eui, "key_usage", usage.String())
	return encodeASN(x.uc.name, &asn.IssueSecurityCredentialsResponse{CertificationRequest: &asn.CertificationRequest{Raw: csr}})
}

// execInstallCertificate is CS02d (3.5): the certificate must be a device
// certificate for this meter that certifies a key CS02c generated; the
// answer is its result code (invalidCertificate, wrongDeviceIdentity,
// invalidKeyUsage, noCorrespondingKeyPairGenerated, wrongPublicKey or
// success). On success the new key replaces the meter's key of that usage
// once the response is built: the response is signed with the key the
// supplier knows (constructed vector 20).
func (m *Meter) execInstallCertificate(ctx context.Context, x *exchange) ([]byte, error) {
	c, err := asn.Parse[asn.UpdateDeviceCertificateCommand](x.msg.Payload)
	if err != nil {
		return nil, malformed(x.uc.name, err)
	}
	code := func(v asn.UpdateDeviceCertificateResponse) ([]byte, error) { return encodeASN(x.uc.name, &v) }
	cert, err := smki.ParseCertificate(c.Raw)
	if err != nil || cert.Kind != smki.KindDevice {
		return code(1) // invalidCertificate
	}
	if cert.EUI != m.eui {
		return code(2) // wrongDeviceIdentity
	}
	usage, ok := keyUsageOf(cert.KeyUsage)
	if !ok {
		return code(3) // invalidKeyUsage
	}
	var key crypto.Signer
	if m.pending != nil {
		key = m.pending.ds
		if usage == UsageKeyAgreement {
			key = m.pending.ka
		}
	}
	if key == nil {
		return code(4) // noCorrespondingKeyPairGenerated
	}
	if pub, _ := key.Public().(*ecdsa.PublicKey); pub == nil || !pub.Equal(cert.PublicKey) {
		return code(5) // wrongPublicKey
	}
	var ka KeyAgreement
	if usage == UsageKeyAgreement {
		if ka, err = agreementKey(key); err != nil {
			return code(7) // privateKeyChangeFailed
		}
	}
	raw := c.Raw
	x.after = append(x.after, func() {
		certs := &installedCerts{}
		if m.certs != nil {
			*certs = *m.certs
		}
		if usage == UsageDigitalSignature {
			m.ds, certs.ds, m.pending.ds = key, raw, nil
		} else {
			m.ka, certs.ka, m.pending.ka = ka, raw, nil
		}
		m.certs = certs
		if m.pending.ds == nil && m.pending.ka == nil {
			m.pending = nil
		}
		m.env.log.InfoContext(ctx, "device certificate installed", "eui", m.eui, "key_usage", usage.String())
	})
	return code(0)
}

// execProvideCertificate is CS02e (3.5): the device certificate the meter
// holds for the asked key usage, the one it signs or agrees keys with now
// (after a CS02d, the new one). A key usage other than exactly
// digitalSignature or keyAgreement is answered invalidKeyUsage (1); a
// usage the meter holds no certificate for, noCertificateHeld (2).
func (m *Meter) execProvideCertificate(_ context.Context, x *exchange) ([]byte, error) {
	c, err := asn.Parse[asn.ProvideDeviceCertificateCommand](x.msg.Payload)
	if err != nil {
		return nil, malformed(x.uc.name, err)
	}
	fail := func(code asn.ProvideResponseCode) ([]byte, error) {
		return encodeASN(x.uc.name, &asn.ProvideDeviceCertificateResponse{ResponseCode: &code})
	}
	usage, ok := keyUsageOfASN(c.KeyUsage)
	if !ok {
		return fail(1) // invalidKeyUsage
	}
	var der []byte
	if m.certs != nil {
		der = m.certs.ds
		if usage == UsageKeyAgreement {
			der = m.certs.ka
		}
	}
	if len(der) == 0 {
		return fail(2) // noCertificateHeld
	}
	return encodeASN(x.uc.name, &asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: bytes.Clone(der)}})
}
