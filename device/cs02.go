package device

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// replacementMode is a CS02b replacement mode as the meter enforces it: who
// must sign (the authorising party) and which roles' anchors it may
// replace (GBCS section 9).
type replacementMode struct {
	mode    commands.ReplacementMode
	signer  smki.Role
	targets []smki.Role
}

var allButRoot = []smki.Role{smki.RoleRecovery, smki.RoleSupplier, smki.RoleNetworkOperator,
	smki.RoleAccessControlBroker, smki.RoleTransitionalCoS, smki.RoleWANProvider}

// replacementModes maps each CS02b message code to its mode. The
// contingency key sits in the root anchor.
var replacementModes = map[uint16]replacementMode{
	0x0100: {commands.RootBySupplier, smki.RoleSupplier, []smki.Role{smki.RoleRoot}},
	0x0101: {commands.RootByWANProvider, smki.RoleWANProvider, []smki.Role{smki.RoleRoot}},
	0x0102: {commands.SupplierBySupplier, smki.RoleSupplier, []smki.Role{smki.RoleSupplier}},
	0x0103: {commands.NetworkOperatorByNetworkOperator, smki.RoleNetworkOperator, []smki.Role{smki.RoleNetworkOperator}},
	0x0104: {commands.AccessControlBrokerByACB, smki.RoleAccessControlBroker, []smki.Role{smki.RoleAccessControlBroker}},
	0x0105: {commands.WANProviderByWANProvider, smki.RoleWANProvider, []smki.Role{smki.RoleWANProvider}},
	0x0106: {commands.TransCoSByTransCoS, smki.RoleTransitionalCoS, []smki.Role{smki.RoleTransitionalCoS}},
	0x0107: {commands.SupplierByTransCoS, smki.RoleTransitionalCoS, []smki.Role{smki.RoleSupplier}},
	0x0108: {commands.AnyExceptAbnormalRootByRecovery, smki.RoleRecovery, allButRoot},
	0x0109: {commands.AnyByContingency, smki.RoleRoot, anchorRoles[:]},
}

// credentialUpdate is a CS02b that passed its checks: the payload, and
// either the anchors to install or the failure status to report.
type credentialUpdate struct {
	req     *commands.UpdateCredentials
	next    *Anchors
	status  commands.Status
	results []commands.CellResult
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

// checkCredentialUpdate decodes a signed CS02b and checks what must hold
// before its counter is spent: the mode matches the message code, the
// authorising party's sequence number is greater than the one the meter
// holds for that role (else ReasonStaleSequence), and every target cell
// belongs to a role the mode may replace (else ReasonRoleNotAllowed). It
// then prepares the new anchors, or the failure status when a replacement
// certificate is unusable.
func (m *Meter) checkCredentialUpdate(_ context.Context, an *Anchors, cmd *command) error {
	mode := replacementModes[uint16(cmd.msg.Code)]
	req, err := commands.ParseUpdateCredentials(cmd.msg.Payload)
	if err != nil {
		return &DiscardError{Reason: ReasonMalformed, Err: err}
	}
	if req.Control.Mode != mode.mode {
		return discard(ReasonMalformed, "CS02b payload mode %s under message code %s (%s)", req.Control.Mode, cmd.msg.Code, mode.mode)
	}
	held := an.anchor(mode.signer).Sequence
	if req.Control.AuthorisingSequence <= held {
		return discard(ReasonStaleSequence, "CS02b %s: authorising sequence number %d, the meter holds %d for %s", mode.mode, req.Control.AuthorisingSequence, held, mode.signer)
	}
	for _, r := range req.Replacements {
		if !slices.Contains(mode.targets, r.Target.Role) {
			return discard(ReasonRoleNotAllowed, "CS02b %s may not replace a %s cell", mode.mode, r.Target.Role)
		}
	}
	u := &credentialUpdate{req: req, status: commands.StatusSuccess}
	cmd.cs02b = u
	if !req.ExecutionTime.IsZero() && req.ExecutionTime.After(m.env.now()) {
		// The reference meter applies replacements at once; it does not
		// schedule them.
		u.status = commands.StatusOther
		return nil
	}

	next := an.withSequence(mode.signer, req.Control.AuthorisingSequence)
	for _, r := range req.Replacements {
		res := commands.CellResult{Target: r.Target, Status: commands.StatusSuccess}
		cell, err := replacementCell(an, r, req.CertificationPath)
		if err != nil {
			m.env.log.Info("CS02b replacement certificate refused", "eui", m.eui, "role", r.Target.Role.String(), "error", err)
			res.Status, u.status = commands.StatusBadCertificate, commands.StatusBadCertificate
		} else {
			next = next.replaceCell(r.Target.Role, cell)
		}
		u.results = append(u.results, res)
	}
	for _, r := range req.Replacements {
		if a := next.anchor(r.Target.Role); a.Sequence < req.Control.FloorSequence {
			next = next.withSequence(r.Target.Role, req.Control.FloorSequence)
		}
	}
	if u.status == commands.StatusSuccess {
		u.next = next
	}
	return nil
}

// replacementCell reads and checks a CS02b replacement certificate against
// its target cell: a root certificate for the root anchor, otherwise an
// organisation certificate of the target role and key usage. When the meter
// holds a root anchor, the certificate must chain to it through the
// certification path (or be signed by the root itself).
func replacementCell(an *Anchors, r commands.Replacement, path [][]byte) (*Cell, error) {
	c, err := smki.ParseCertificate(r.Certificate)
	if err != nil {
		return nil, err
	}
	usage, ok := keyUsageOf(r.Target.KeyUsage)
	if r.Target.Role == smki.RoleRoot {
		if c.Kind != smki.KindRoot {
			return nil, fmt.Errorf("root cell needs a root certificate, have a %s certificate", c.Kind)
		}
		if usage != UsageDigitalSignature || r.Target.Usage != commands.CellManagement {
			return nil, fmt.Errorf("root cells are digital-signature management cells")
		}
		cell, err := NewCell(UsageDigitalSignature, Management, c.EUI, c.PublicKey)
		if err != nil {
			return nil, err
		}
		return cell, nil
	}
	if !ok {
		return nil, fmt.Errorf("target cell key usage %s", smki.KeyUsageString(r.Target.KeyUsage))
	}
	if c.Kind != smki.KindOrganisation || c.Role != r.Target.Role {
		return nil, fmt.Errorf("target is a %s cell, certificate is a %s certificate of role %s", r.Target.Role, c.Kind, c.Role)
	}
	if c.KeyUsage != r.Target.KeyUsage {
		return nil, fmt.Errorf("target cell key usage %s, certificate %s", smki.KeyUsageString(r.Target.KeyUsage), smki.KeyUsageString(c.KeyUsage))
	}
	if err := chainsToRoot(an, c, path); err != nil {
		return nil, err
	}
	return NewCellFromCertificate(c, CellUsage(r.Target.Usage))
}

// chainsToRoot checks c against the meter's root anchor, if it holds one:
// c is signed by the root, or by a certification-path certificate that the
// root signed.
func chainsToRoot(an *Anchors, c *smki.Certificate, path [][]byte) error {
	root := an.anchor(smki.RoleRoot).first(UsageDigitalSignature, Management)
	if root == nil {
		return nil // no root anchor installed: the authorising signature is the only check
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
		if c.CheckSignatureFrom(issuer) == nil && issuer.CheckSignatureFrom(rootCert) == nil {
			return nil
		}
	}
	return fmt.Errorf("certificate of %s does not chain to the root anchor", c.EUI)
}

// replaceCell returns a copy of a with the cell of role r that has the same
// key usage and cell usage as cell replaced by it (or cell added).
func (a *Anchors) replaceCell(r smki.Role, cell *Cell) *Anchors {
	n := *a
	i, _ := anchorIndex(r)
	old := n.roles[i]
	cells := make([]*Cell, 0, len(old.Cells)+1)
	for _, c := range old.Cells {
		if c.KeyUsage != cell.KeyUsage || c.Usage != cell.Usage {
			cells = append(cells, c)
		}
	}
	n.roles[i] = Anchor{Status: AnchorInstalled, Sequence: old.Sequence, Cells: append(cells, cell)}
	return &n
}

// executeCredentials runs CS02a to CS02d.
func (m *Meter) executeCredentials(ctx context.Context, cmd *command) ([]byte, error) {
	bad := func(err error) error { return &DiscardError{Reason: ReasonMalformed, Err: err} }
	switch cmd.uc.op {
	case opCredentialsList:
		req, err := commands.ParseProvideCredentials(cmd.msg.Payload)
		if err != nil {
			return nil, bad(err)
		}
		return m.credentialsDetails(req.Roles)
	case opCredentialsUpdate:
		u := cmd.cs02b
		if u.next != nil {
			m.anchors = u.next
			m.env.log.InfoContext(ctx, "trust anchors replaced", "eui", m.eui, "mode", u.req.Control.Mode.String(),
				"authorising_sequence", u.req.Control.AuthorisingSequence, "originator", cmd.msg.Originator)
		}
		resp := &commands.UpdateCredentialsResponse{Status: u.status, Results: u.results}
		return marshalled(resp.Marshal())
	case opRekey:
		req, err := commands.ParseIssueCredentials(cmd.msg.Payload)
		if err != nil {
			return nil, bad(err)
		}
		return m.issueCredentials(ctx, req)
	case opInstallCert:
		req, err := commands.ParseUpdateDeviceCertificate(cmd.msg.Payload)
		if err != nil {
			return nil, bad(err)
		}
		return m.installCertificate(ctx, req)
	}
	return nil, discard(ReasonUnsupported, "%s", cmd.uc.name)
}

func marshalled(b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: err}
	}
	return b, nil
}

// credentialsDetails lists the anchors of roles (every role when empty).
func (m *Meter) credentialsDetails(roles []smki.Role) ([]byte, error) {
	if len(roles) == 0 {
		roles = anchorRoles[:]
	}
	out := &commands.CredentialsDetails{}
	for _, r := range roles {
		ra := commands.RoleAnchors{Role: r, Status: commands.StatusTrustAnchorNotFound}
		if a := m.anchors.anchor(r); a != nil {
			ra.Sequence = a.Sequence
			if a.Status == AnchorInstalled {
				ra.Status = commands.StatusSuccess
			}
			for _, c := range a.Cells {
				ra.Cells = append(ra.Cells, commands.TrustAnchorCell{KeyUsage: x509Usage(c.KeyUsage),
					Usage: commands.CellUsage(c.Usage), Subject: c.Subject, SubjectKeyID: c.SubjectKeyID})
			}
		}
		out.Roles = append(out.Roles, ra)
	}
	return marshalled(out.Marshal())
}

// issueCredentials is CS02c: a new key pair of the asked usage and a device
// CSR for it (smki.CreateCSR, device form). The key waits in m.pending for
// CS02d; a second CS02c for the same usage replaces it.
func (m *Meter) issueCredentials(ctx context.Context, req *commands.IssueCredentials) ([]byte, error) {
	usage, ok := keyUsageOf(req.KeyUsage)
	if !ok {
		return marshalled((&commands.IssueCredentialsResponse{Status: commands.StatusOther}).Marshal())
	}
	key, err := m.env.keys.GenerateKey(ctx, usage)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: err}
	}
	if usage == UsageKeyAgreement {
		if _, err := agreementKey(key); err != nil {
			return nil, &DiscardError{Reason: ReasonInternal, Err: err}
		}
	}
	csr, err := smki.CreateCSR(m.env.rand, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: m.eui,
		KeyUsage: req.KeyUsage, HWType: smki.OIDHWTypeReferenceMeter}, key)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("CS02c certificate request: %w", err)}
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
	return marshalled((&commands.IssueCredentialsResponse{Status: commands.StatusSuccess, CSR: csr}).Marshal())
}

// installCertificate is CS02d: the certificate must be a device
// certificate for this meter that certifies a key CS02c generated; the key
// then replaces the meter's key of that usage.
func (m *Meter) installCertificate(ctx context.Context, req *commands.UpdateDeviceCertificate) ([]byte, error) {
	status := func(s commands.Status) ([]byte, error) {
		return marshalled((&commands.UpdateDeviceCertificateResponse{Status: s}).Marshal())
	}
	c, err := smki.ParseCertificate(req.Certificate)
	if err != nil || c.Kind != smki.KindDevice || c.EUI != m.eui {
		return status(commands.StatusBadCertificate)
	}
	usage, ok := keyUsageOf(c.KeyUsage)
	if !ok || m.pending == nil {
		return status(commands.StatusBadCertificate)
	}
	slot := &m.pending.ds
	if usage == UsageKeyAgreement {
		slot = &m.pending.ka
	}
	key := *slot
	if key == nil {
		return status(commands.StatusBadCertificate)
	}
	pub, _ := key.Public().(*ecdsa.PublicKey)
	if pub == nil || !pub.Equal(c.PublicKey) {
		return status(commands.StatusBadCertificate)
	}
	if m.certs == nil {
		m.certs = &installedCerts{}
	} else {
		cp := *m.certs
		m.certs = &cp
	}
	if usage == UsageDigitalSignature {
		m.ds = key
		m.certs.ds = c.Raw
	} else {
		ka, err := agreementKey(key)
		if err != nil {
			return nil, &DiscardError{Reason: ReasonInternal, Err: err}
		}
		m.ka = ka
		m.certs.ka = c.Raw
	}
	*slot = nil
	if m.pending.ds == nil && m.pending.ka == nil {
		m.pending = nil
	}
	m.env.log.InfoContext(ctx, "device certificate installed", "eui", m.eui, "key_usage", usage.String())
	return status(commands.StatusSuccess)
}
