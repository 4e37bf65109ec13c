package asn

import "fmt"

// TrustAnchorCellIdentifier names a trust-anchor cell on a device:
//
//	TrustAnchorCellIdentifier ::= SEQUENCE {
//	    remotePartyRole RemotePartyRole, keyUsage KeyUsage,
//	    cellUsage CellUsage DEFAULT management }
type TrustAnchorCellIdentifier struct {
	RemotePartyRole RemotePartyRole `json:"remotePartyRole"`
	KeyUsage        KeyUsage        `json:"keyUsage"`
	CellUsage       CellUsage       `json:"cellUsage"`
	// CellUsageExplicit records that the DEFAULT management(0) was written
	// out; it has no effect when CellUsage is not management.
	CellUsageExplicit bool `json:"cellUsageExplicit,omitempty"`
}

// Cell is shorthand for a TrustAnchorCellIdentifier with the minimal DER key
// usage of one bit.
func Cell(role RemotePartyRole, bit KeyUsageBit, usage CellUsage) TrustAnchorCellIdentifier {
	return TrustAnchorCellIdentifier{RemotePartyRole: role, KeyUsage: NewKeyUsage(bit), CellUsage: usage}
}

// Same reports whether c and o name the same cell, whatever their encoding
// details (an explicit DEFAULT, a non-minimal key usage).
func (c TrustAnchorCellIdentifier) Same(o TrustAnchorCellIdentifier) bool {
	return c.RemotePartyRole == o.RemotePartyRole && c.KeyUsage.bits == o.KeyUsage.bits && c.CellUsage == o.CellUsage
}

// String formats the cell as {role, usage[, cellUsage]}.
func (c TrustAnchorCellIdentifier) String() string {
	if c.CellUsage == CellManagement {
		return fmt.Sprintf("{%v, %v}", c.RemotePartyRole, c.KeyUsage)
	}
	return fmt.Sprintf("{%v, %v, %v}", c.RemotePartyRole, c.KeyUsage, c.CellUsage)
}

func (c *TrustAnchorCellIdentifier) decode(r *reader, field string, tag byte) error {
	s, _, err := r.next(field, tag)
	if err != nil {
		return err
	}
	role, err := s.int("TrustAnchorCellIdentifier.remotePartyRole", tagInteger)
	if err != nil {
		return err
	}
	c.RemotePartyRole = RemotePartyRole(role)
	if c.KeyUsage, err = s.keyUsage("TrustAnchorCellIdentifier.keyUsage"); err != nil {
		return err
	}
	if err := decodeCellUsage(&s, "TrustAnchorCellIdentifier.cellUsage", &c.CellUsage, &c.CellUsageExplicit); err != nil {
		return err
	}
	return s.done("TrustAnchorCellIdentifier")
}

func (c *TrustAnchorCellIdentifier) encode(e *encoder, field string, tag byte) {
	e.tlv(field, tag, false, func() {
		e.int(tagInteger, int64(c.RemotePartyRole))
		e.keyUsage(field+".keyUsage", c.KeyUsage)
		encodeCellUsage(e, c.CellUsage, c.CellUsageExplicit)
	})
}

// decodeCellUsage reads an optional cellUsage with DEFAULT management.
func decodeCellUsage(r *reader, field string, u *CellUsage, explicit *bool) error {
	*u, *explicit = CellManagement, false
	if t, ok := r.peek(); !ok || t != tagInteger {
		return nil
	}
	v, err := r.int(field, tagInteger)
	if err != nil {
		return err
	}
	*u, *explicit = CellUsage(v), v == int64(CellManagement)
	return nil
}

func encodeCellUsage(e *encoder, u CellUsage, explicit bool) {
	if u != CellManagement || explicit {
		e.int(tagInteger, int64(u))
	}
}

// UpdateSecurityCredentialsCommand is the CS02b and CS02g command payload
// (message codes 0x0100 to 0x0109, 0x0125, 0x0126):
//
//	UpdateSecurityCredentialsCommand ::= SEQUENCE {
//	    authorisingRemotePartyControl AuthorisingRemotePartyControl,
//	    replacements                  SEQUENCE OF TrustAnchorReplacement,
//	    certificationPathCertificates SEQUENCE OF Certificate,
//	    executionDateTime             GeneralizedTime OPTIONAL }
type UpdateSecurityCredentialsCommand struct {
	AuthorisingRemotePartyControl AuthorisingRemotePartyControl `json:"authorisingRemotePartyControl"`
	Replacements                  []TrustAnchorReplacement      `json:"replacements"`
	CertificationPathCertificates []Certificate                 `json:"certificationPathCertificates"`
	// ExecutionDateTime is set for a future-dated command, and is
	// CancelTime() in a command that cancels one.
	ExecutionDateTime *GeneralizedTime `json:"executionDateTime,omitempty"`
	DERLengths        []string         `json:"derLengths,omitempty"`
}

// AuthorisingRemotePartyControl is the first part of a CS02b command:
//
//	AuthorisingRemotePartyControl ::= SEQUENCE {
//	    credentialsReplacementMode                 CredentialsReplacementMode,
//	    plaintextSymmetricKey                  [0] IMPLICIT OCTET STRING OPTIONAL,
//	    applyTimeBasedCPVChecks                [1] IMPLICIT INTEGER OPTIONAL,
//	    authorisingRemotePartyTACellIdentifier [2] IMPLICIT TrustAnchorCellIdentifier OPTIONAL,
//	    authorisingRemotePartySeqNumber        [3] IMPLICIT SeqNumber,
//	    newRemotePartyFloorSeqNumber           [4] IMPLICIT SeqNumber OPTIONAL,
//	    newRemotePartySpecialistFloorSeqNumber [5] IMPLICIT SEQUENCE OF SpecialistSeqNumber OPTIONAL,
//	    otherRemotePartySeqNumberChanges       [6] IMPLICIT SEQUENCE OF RemotePartySeqNumberChange OPTIONAL }
//
// An absent OPTIONAL is a nil pointer or a nil slice; a present, empty
// SEQUENCE OF is a non-nil empty slice.
type AuthorisingRemotePartyControl struct {
	CredentialsReplacementMode             CredentialsReplacementMode   `json:"credentialsReplacementMode"`
	PlaintextSymmetricKey                  Octets                       `json:"plaintextSymmetricKey,omitzero"`
	ApplyTimeBasedCPVChecks                *ApplyTimeBasedCPVChecks     `json:"applyTimeBasedCPVChecks,omitempty"`
	AuthorisingRemotePartyTACellIdentifier *TrustAnchorCellIdentifier   `json:"authorisingRemotePartyTACellIdentifier,omitempty"`
	AuthorisingRemotePartySeqNumber        SeqNumber                    `json:"authorisingRemotePartySeqNumber"`
	NewRemotePartyFloorSeqNumber           *SeqNumber                   `json:"newRemotePartyFloorSeqNumber,omitempty"`
	NewRemotePartySpecialistFloorSeqNumber []SpecialistSeqNumber        `json:"newRemotePartySpecialistFloorSeqNumber,omitzero"`
	OtherRemotePartySeqNumberChanges       []RemotePartySeqNumberChange `json:"otherRemotePartySeqNumberChanges,omitzero"`
	DERLengths                             []string                     `json:"derLengths,omitempty"`
}

// SpecialistSeqNumber is a floor for a specialist sequence number:
//
//	SpecialistSeqNumber ::= SEQUENCE { seqNumberUsage INTEGER, seqNumber SeqNumber }
type SpecialistSeqNumber struct {
	SeqNumberUsage SeqNumberUsage `json:"seqNumberUsage"`
	SeqNumber      SeqNumber      `json:"seqNumber"`
}

// RemotePartySeqNumberChange sets another role's floor sequence numbers:
//
//	RemotePartySeqNumberChange ::= SEQUENCE {
//	    remotePartyRole RemotePartyRole, floorSeqNumber SeqNumber,
//	    specialistFloorSeqNumber SEQUENCE OF SpecialistSeqNumber OPTIONAL }
type RemotePartySeqNumberChange struct {
	RemotePartyRole          RemotePartyRole       `json:"remotePartyRole"`
	FloorSeqNumber           SeqNumber             `json:"floorSeqNumber"`
	SpecialistFloorSeqNumber []SpecialistSeqNumber `json:"specialistFloorSeqNumber,omitzero"`
	DERLengths               []string              `json:"derLengths,omitempty"`
}

// TrustAnchorReplacement is one new trust anchor and the cell it goes in:
//
//	TrustAnchorReplacement ::= SEQUENCE {
//	    replacementCertificate Certificate, targetTrustAnchorCell TrustAnchorCellIdentifier }
type TrustAnchorReplacement struct {
	ReplacementCertificate Certificate               `json:"replacementCertificate"`
	TargetTrustAnchorCell  TrustAnchorCellIdentifier `json:"targetTrustAnchorCell"`
	DERLengths             []string                  `json:"derLengths,omitempty"`
}

// UpdateSecurityCredentialsResponse is the CS02b and CS02g response payload:
//
//	UpdateSecurityCredentialsResponse ::= SEQUENCE {
//	    commandAccepted NULL, executionOutcome ExecutionOutcome OPTIONAL }
//
// ExecutionOutcome is absent in the response to a future-dated or
// cancelling command.
type UpdateSecurityCredentialsResponse struct {
	CommandAccepted  Null              `json:"commandAccepted"`
	ExecutionOutcome *ExecutionOutcome `json:"executionOutcome,omitempty"`
	DERLengths       []string          `json:"derLengths,omitempty"`
}

// ExecutionOutcome is what a device did with a CS02b command:
//
//	ExecutionOutcome ::= SEQUENCE {
//	    authorisingRemotePartySeqNumber SeqNumber,
//	    credentialsReplacementMode      CredentialsReplacementMode,
//	    remotePartySeqNumberChanges     SEQUENCE OF RemotePartySeqNumberChange,
//	    replacementOutcomes             SEQUENCE OF ReplacementOutcome }
//
// The first two fields repeat the command's [3] sequence number and mode;
// see UpdateSecurityCredentialsCommand.NewExecutionOutcome and CheckOutcome.
type ExecutionOutcome struct {
	AuthorisingRemotePartySeqNumber SeqNumber                    `json:"authorisingRemotePartySeqNumber"`
	CredentialsReplacementMode      CredentialsReplacementMode   `json:"credentialsReplacementMode"`
	RemotePartySeqNumberChanges     []RemotePartySeqNumberChange `json:"remotePartySeqNumberChanges"`
	ReplacementOutcomes             []ReplacementOutcome         `json:"replacementOutcomes"`
	DERLengths                      []string                     `json:"derLengths,omitempty"`
}

// ReplacementOutcome is the result for one trust-anchor cell:
//
//	ReplacementOutcome ::= SEQUENCE {
//	    affectedTrustAnchorCell  TrustAnchorCellIdentifier, statusCode StatusCode,
//	    existingSubjectUniqueID  OCTET STRING (SIZE(8)), existingSubjectKeyID  OCTET STRING (SIZE(8)),
//	    replacingSubjectUniqueID OCTET STRING (SIZE(8)), replacingSubjectKeyID OCTET STRING (SIZE(8)) }
//
// The replacing fields equal the existing ones when the cell was not
// replaced.
type ReplacementOutcome struct {
	AffectedTrustAnchorCell  TrustAnchorCellIdentifier `json:"affectedTrustAnchorCell"`
	StatusCode               StatusCode                `json:"statusCode"`
	ExistingSubjectUniqueID  EntityID                  `json:"existingSubjectUniqueID"`
	ExistingSubjectKeyID     KeyID                     `json:"existingSubjectKeyID"`
	ReplacingSubjectUniqueID EntityID                  `json:"replacingSubjectUniqueID"`
	ReplacingSubjectKeyID    KeyID                     `json:"replacingSubjectKeyID"`
}

// Replaced reports whether the cell now holds a different anchor: the
// status is success and the subject or key identifier changed.
func (o ReplacementOutcome) Replaced() bool {
	return o.StatusCode == StatusSuccess &&
		(o.ExistingSubjectUniqueID != o.ReplacingSubjectUniqueID || o.ExistingSubjectKeyID != o.ReplacingSubjectKeyID)
}

// Existing returns the subject EUI and key identifier the cell held before.
func (o ReplacementOutcome) Existing() (EntityID, KeyID) {
	return o.ExistingSubjectUniqueID, o.ExistingSubjectKeyID
}

// Replacing returns the subject EUI and key identifier the cell holds now.
func (o ReplacementOutcome) Replacing() (EntityID, KeyID) {
	return o.ReplacingSubjectUniqueID, o.ReplacingSubjectKeyID
}

// UpdateSecurityCredentialsAlert is the payload of the CS02b (0x00CB) and
// CS02g (0x0124) future-dated execution alerts:
//
//	UpdateSecurityCredentialsAlert ::= SEQUENCE {
//	    alertCode AlertCode, executionDateTime GeneralizedTime,
//	    executionOutcome ExecutionOutcome }
type UpdateSecurityCredentialsAlert struct {
	AlertCode         AlertCode        `json:"alertCode"`
	ExecutionDateTime GeneralizedTime  `json:"executionDateTime"`
	ExecutionOutcome  ExecutionOutcome `json:"executionOutcome"`
	DERLengths        []string         `json:"derLengths,omitempty"`
}

// MessageCode returns the command's message code, fixed by its mode.
func (c *UpdateSecurityCredentialsCommand) MessageCode() (code uint16, ok bool) {
	return c.AuthorisingRemotePartyControl.CredentialsReplacementMode.MessageCode()
}

// CheckMessageCode reports an error wrapping ErrInvalid when code is not the
// message code of the command's replacement mode.
func (c *UpdateSecurityCredentialsCommand) CheckMessageCode(code uint16) error {
	mode := c.AuthorisingRemotePartyControl.CredentialsReplacementMode
	want, ok := mode.MessageCode()
	switch {
	case !ok:
		return invalid("AuthorisingRemotePartyControl.credentialsReplacementMode", "mode %d has no message code", int64(mode))
	case want != code:
		return invalid("AuthorisingRemotePartyControl.credentialsReplacementMode",
			"mode %v is sent as 0x%04X, not 0x%04X", mode, want, code)
	}
	return nil
}

// NewExecutionOutcome returns the outcome a device reports for the command,
// with the command's [3] sequence number and mode filled in and empty
// lists, for the device to append to.
func (c *UpdateSecurityCredentialsCommand) NewExecutionOutcome() ExecutionOutcome {
	return ExecutionOutcome{
		AuthorisingRemotePartySeqNumber: c.AuthorisingRemotePartyControl.AuthorisingRemotePartySeqNumber,
		CredentialsReplacementMode:      c.AuthorisingRemotePartyControl.CredentialsReplacementMode,
		RemotePartySeqNumberChanges:     []RemotePartySeqNumberChange{},
		ReplacementOutcomes:             []ReplacementOutcome{},
	}
}

// CheckOutcome reports an error wrapping ErrInvalid when the outcome does
// not repeat the command's [3] sequence number and replacement mode, as a
// response or alert to this command must.
func (c *UpdateSecurityCredentialsCommand) CheckOutcome(o *ExecutionOutcome) error {
	ctl := &c.AuthorisingRemotePartyControl
	if o.AuthorisingRemotePartySeqNumber != ctl.AuthorisingRemotePartySeqNumber {
		return invalid("ExecutionOutcome.authorisingRemotePartySeqNumber", "%d, but the command's is %d",
			o.AuthorisingRemotePartySeqNumber, ctl.AuthorisingRemotePartySeqNumber)
	}
	if o.CredentialsReplacementMode != ctl.CredentialsReplacementMode {
		return invalid("ExecutionOutcome.credentialsReplacementMode", "%v, but the command's is %v",
			o.CredentialsReplacementMode, ctl.CredentialsReplacementMode)
	}
	return nil
}

// ---- decoding ----

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *UpdateSecurityCredentialsCommand) Unmarshal(b []byte) error {
	*c = UpdateSecurityCredentialsCommand{}
	return decodeTop(b, "UpdateSecurityCredentialsCommand", tagSequence, &c.DERLengths, func(s *reader) error {
		if err := c.AuthorisingRemotePartyControl.decode(s); err != nil {
			return err
		}
		l, der81, err := s.next("UpdateSecurityCredentialsCommand.replacements", tagSequence)
		if err != nil {
			return err
		}
		record(&c.DERLengths, der81, "replacements")
		c.Replacements = []TrustAnchorReplacement{}
		for !l.empty() {
			var t TrustAnchorReplacement
			if err := t.decode(&l); err != nil {
				return err
			}
			c.Replacements = append(c.Replacements, t)
		}
		if c.CertificationPathCertificates, der81, err = decodeCertificates(s,
			"UpdateSecurityCredentialsCommand.certificationPathCertificates"); err != nil {
			return err
		}
		record(&c.DERLengths, der81, "certificationPathCertificates")
		if !s.empty() {
			t, err := s.time("UpdateSecurityCredentialsCommand.executionDateTime")
			if err != nil {
				return err
			}
			c.ExecutionDateTime = &t
		}
		return nil
	})
}

func (a *AuthorisingRemotePartyControl) decode(r *reader) error {
	const name = "AuthorisingRemotePartyControl"
	s, der81, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	record(&a.DERLengths, der81, self)
	mode, err := s.int(name+".credentialsReplacementMode", tagInteger)
	if err != nil {
		return err
	}
	a.CredentialsReplacementMode = CredentialsReplacementMode(mode)
	if t, _ := s.peek(); t == 0x80 {
		if a.PlaintextSymmetricKey, der81, err = s.octets(name+".plaintextSymmetricKey", 0x80); err != nil {
			return err
		}
		record(&a.DERLengths, der81, "plaintextSymmetricKey")
	}
	if t, _ := s.peek(); t == 0x81 {
		v, err := s.int(name+".applyTimeBasedCPVChecks", 0x81)
		if err != nil {
			return err
		}
		cpv := ApplyTimeBasedCPVChecks(v)
		a.ApplyTimeBasedCPVChecks = &cpv
	}
	if t, _ := s.peek(); t == 0xA2 {
		a.AuthorisingRemotePartyTACellIdentifier = new(TrustAnchorCellIdentifier)
		if err := a.AuthorisingRemotePartyTACellIdentifier.decode(&s, name+".authorisingRemotePartyTACellIdentifier", 0xA2); err != nil {
			return err
		}
	}
	seq, err := s.int(name+".authorisingRemotePartySeqNumber", 0x83)
	if err != nil {
		return err
	}
	a.AuthorisingRemotePartySeqNumber = SeqNumber(seq)
	if t, _ := s.peek(); t == 0x84 {
		v, err := s.int(name+".newRemotePartyFloorSeqNumber", 0x84)
		if err != nil {
			return err
		}
		floor := SeqNumber(v)
		a.NewRemotePartyFloorSeqNumber = &floor
	}
	if t, _ := s.peek(); t == 0xA5 {
		if a.NewRemotePartySpecialistFloorSeqNumber, der81, err = decodeSpecialist(&s,
			name+".newRemotePartySpecialistFloorSeqNumber", 0xA5); err != nil {
			return err
		}
		record(&a.DERLengths, der81, "newRemotePartySpecialistFloorSeqNumber")
	}
	if t, _ := s.peek(); t == 0xA6 {
		l, der81, err := s.next(name+".otherRemotePartySeqNumberChanges", 0xA6)
		if err != nil {
			return err
		}
		record(&a.DERLengths, der81, "otherRemotePartySeqNumberChanges")
		if a.OtherRemotePartySeqNumberChanges, err = decodeSeqNumberChanges(&l); err != nil {
			return err
		}
	}
	return s.done(name)
}

func decodeSpecialist(r *reader, field string, tag byte) ([]SpecialistSeqNumber, bool, error) {
	l, der81, err := r.next(field, tag)
	if err != nil {
		return nil, false, err
	}
	out := []SpecialistSeqNumber{}
	for !l.empty() {
		s, _, err := l.next("SpecialistSeqNumber", tagSequence)
		if err != nil {
			return nil, false, err
		}
		u, err := s.int("SpecialistSeqNumber.seqNumberUsage", tagInteger)
		if err != nil {
			return nil, false, err
		}
		n, err := s.int("SpecialistSeqNumber.seqNumber", tagInteger)
		if err != nil {
			return nil, false, err
		}
		if err := s.done("SpecialistSeqNumber"); err != nil {
			return nil, false, err
		}
		out = append(out, SpecialistSeqNumber{SeqNumberUsage: SeqNumberUsage(u), SeqNumber: SeqNumber(n)})
	}
	return out, der81, nil
}

// decodeSeqNumberChanges reads the elements of a SEQUENCE OF
// RemotePartySeqNumberChange from l, whose header the caller has read.
func decodeSeqNumberChanges(l *reader) ([]RemotePartySeqNumberChange, error) {
	const name = "RemotePartySeqNumberChange"
	out := []RemotePartySeqNumberChange{}
	for !l.empty() {
		var c RemotePartySeqNumberChange
		s, der81, err := l.next(name, tagSequence)
		if err != nil {
			return nil, err
		}
		record(&c.DERLengths, der81, self)
		role, err := s.int(name+".remotePartyRole", tagInteger)
		if err != nil {
			return nil, err
		}
		floor, err := s.int(name+".floorSeqNumber", tagInteger)
		if err != nil {
			return nil, err
		}
		c.RemotePartyRole, c.FloorSeqNumber = RemotePartyRole(role), SeqNumber(floor)
		if !s.empty() {
			if c.SpecialistFloorSeqNumber, der81, err = decodeSpecialist(&s, name+".specialistFloorSeqNumber", tagSequence); err != nil {
				return nil, err
			}
			record(&c.DERLengths, der81, "specialistFloorSeqNumber")
		}
		if err := s.done(name); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (t *TrustAnchorReplacement) decode(r *reader) error {
	const name = "TrustAnchorReplacement"
	s, der81, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	record(&t.DERLengths, der81, self)
	if t.ReplacementCertificate.Raw, err = s.raw(name+".replacementCertificate", tagSequence); err != nil {
		return err
	}
	if err := t.TargetTrustAnchorCell.decode(&s, name+".targetTrustAnchorCell", tagSequence); err != nil {
		return err
	}
	return s.done(name)
}

// decodeCertificates reads a SEQUENCE OF Certificate.
func decodeCertificates(r *reader, field string) ([]Certificate, bool, error) {
	l, der81, err := r.next(field, tagSequence)
	if err != nil {
		return nil, false, err
	}
	out := []Certificate{}
	for !l.empty() {
		raw, err := l.raw(field, tagSequence)
		if err != nil {
			return nil, false, err
		}
		out = append(out, Certificate{Raw: raw})
	}
	return out, der81, nil
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *UpdateSecurityCredentialsResponse) Unmarshal(b []byte) error {
	*p = UpdateSecurityCredentialsResponse{}
	return decodeTop(b, "UpdateSecurityCredentialsResponse", tagSequence, &p.DERLengths, func(s *reader) error {
		if err := s.null("UpdateSecurityCredentialsResponse.commandAccepted"); err != nil {
			return err
		}
		if !s.empty() {
			p.ExecutionOutcome = new(ExecutionOutcome)
			return p.ExecutionOutcome.decode(s)
		}
		return nil
	})
}

func (o *ExecutionOutcome) decode(r *reader) error {
	const name = "ExecutionOutcome"
	s, der81, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	record(&o.DERLengths, der81, self)
	seq, err := s.int(name+".authorisingRemotePartySeqNumber", tagInteger)
	if err != nil {
		return err
	}
	mode, err := s.int(name+".credentialsReplacementMode", tagInteger)
	if err != nil {
		return err
	}
	o.AuthorisingRemotePartySeqNumber, o.CredentialsReplacementMode = SeqNumber(seq), CredentialsReplacementMode(mode)
	l, der81, err := s.next(name+".remotePartySeqNumberChanges", tagSequence)
	if err != nil {
		return err
	}
	record(&o.DERLengths, der81, "remotePartySeqNumberChanges")
	if o.RemotePartySeqNumberChanges, err = decodeSeqNumberChanges(&l); err != nil {
		return err
	}
	l, der81, err = s.next(name+".replacementOutcomes", tagSequence)
	if err != nil {
		return err
	}
	record(&o.DERLengths, der81, "replacementOutcomes")
	o.ReplacementOutcomes = []ReplacementOutcome{}
	for !l.empty() {
		var ro ReplacementOutcome
		if err := ro.decode(&l); err != nil {
			return err
		}
		o.ReplacementOutcomes = append(o.ReplacementOutcomes, ro)
	}
	return s.done(name)
}

func (o *ReplacementOutcome) decode(r *reader) error {
	const name = "ReplacementOutcome"
	s, _, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	if err := o.AffectedTrustAnchorCell.decode(&s, name+".affectedTrustAnchorCell", tagSequence); err != nil {
		return err
	}
	st, err := s.int(name+".statusCode", tagEnumerated)
	if err != nil {
		return err
	}
	o.StatusCode = StatusCode(st)
	for _, f := range []struct {
		field string
		out   []byte
	}{
		{name + ".existingSubjectUniqueID", o.ExistingSubjectUniqueID[:]},
		{name + ".existingSubjectKeyID", o.ExistingSubjectKeyID[:]},
		{name + ".replacingSubjectUniqueID", o.ReplacingSubjectUniqueID[:]},
		{name + ".replacingSubjectKeyID", o.ReplacingSubjectKeyID[:]},
	} {
		if err := s.fixed(f.field, f.out); err != nil {
			return err
		}
	}
	return s.done(name)
}

// Unmarshal decodes b, which must hold exactly one payload, into a.
func (a *UpdateSecurityCredentialsAlert) Unmarshal(b []byte) error {
	*a = UpdateSecurityCredentialsAlert{}
	return decodeTop(b, "UpdateSecurityCredentialsAlert", tagSequence, &a.DERLengths, func(s *reader) error {
		code, err := s.int("UpdateSecurityCredentialsAlert.alertCode", tagInteger)
		if err != nil {
			return err
		}
		a.AlertCode = AlertCode(code)
		if a.ExecutionDateTime, err = s.time("UpdateSecurityCredentialsAlert.executionDateTime"); err != nil {
			return err
		}
		return a.ExecutionOutcome.decode(s)
	})
}

// ---- encoding ----

// Marshal encodes the payload.
func (c *UpdateSecurityCredentialsCommand) Marshal() ([]byte, error) {
	const name = "UpdateSecurityCredentialsCommand"
	var e encoder
	e.tlv(name, tagSequence, has(c.DERLengths, self), func() {
		c.AuthorisingRemotePartyControl.encode(&e)
		e.tlv(name+".replacements", tagSequence, has(c.DERLengths, "replacements"), func() {
			for i := range c.Replacements {
				c.Replacements[i].encode(&e)
			}
		})
		encodeCertificates(&e, name+".certificationPathCertificates",
			has(c.DERLengths, "certificationPathCertificates"), c.CertificationPathCertificates)
		if c.ExecutionDateTime != nil {
			e.time(name+".executionDateTime", *c.ExecutionDateTime)
		}
	})
	return e.finish()
}

func (a *AuthorisingRemotePartyControl) encode(e *encoder) {
	const name = "AuthorisingRemotePartyControl"
	e.tlv(name, tagSequence, has(a.DERLengths, self), func() {
		e.int(tagInteger, int64(a.CredentialsReplacementMode))
		if a.PlaintextSymmetricKey != nil {
			e.octets(name+".plaintextSymmetricKey", 0x80, has(a.DERLengths, "plaintextSymmetricKey"), a.PlaintextSymmetricKey)
		}
		if a.ApplyTimeBasedCPVChecks != nil {
			e.int(0x81, int64(*a.ApplyTimeBasedCPVChecks))
		}
		if a.AuthorisingRemotePartyTACellIdentifier != nil {
			a.AuthorisingRemotePartyTACellIdentifier.encode(e, name+".authorisingRemotePartyTACellIdentifier", 0xA2)
		}
		e.int(0x83, int64(a.AuthorisingRemotePartySeqNumber))
		if a.NewRemotePartyFloorSeqNumber != nil {
			e.int(0x84, int64(*a.NewRemotePartyFloorSeqNumber))
		}
		if a.NewRemotePartySpecialistFloorSeqNumber != nil {
			encodeSpecialist(e, name+".newRemotePartySpecialistFloorSeqNumber", 0xA5,
				has(a.DERLengths, "newRemotePartySpecialistFloorSeqNumber"), a.NewRemotePartySpecialistFloorSeqNumber)
		}
		if a.OtherRemotePartySeqNumberChanges != nil {
			e.tlv(name+".otherRemotePartySeqNumberChanges", 0xA6, has(a.DERLengths, "otherRemotePartySeqNumberChanges"), func() {
				for i := range a.OtherRemotePartySeqNumberChanges {
					a.OtherRemotePartySeqNumberChanges[i].encode(e)
				}
			})
		}
	})
}

func encodeSpecialist(e *encoder, field string, tag byte, der81 bool, list []SpecialistSeqNumber) {
	e.tlv(field, tag, der81, func() {
		for _, s := range list {
			e.tlv("SpecialistSeqNumber", tagSequence, false, func() {
				e.int(tagInteger, int64(s.SeqNumberUsage))
				e.int(tagInteger, int64(s.SeqNumber))
			})
		}
	})
}

func (c *RemotePartySeqNumberChange) encode(e *encoder) {
	const name = "RemotePartySeqNumberChange"
	e.tlv(name, tagSequence, has(c.DERLengths, self), func() {
		e.int(tagInteger, int64(c.RemotePartyRole))
		e.int(tagInteger, int64(c.FloorSeqNumber))
		if c.SpecialistFloorSeqNumber != nil {
			encodeSpecialist(e, name+".specialistFloorSeqNumber", tagSequence,
				has(c.DERLengths, "specialistFloorSeqNumber"), c.SpecialistFloorSeqNumber)
		}
	})
}

func (t *TrustAnchorReplacement) encode(e *encoder) {
	const name = "TrustAnchorReplacement"
	e.tlv(name, tagSequence, has(t.DERLengths, self), func() {
		e.raw(name+".replacementCertificate", tagSequence, t.ReplacementCertificate.Raw)
		t.TargetTrustAnchorCell.encode(e, name+".targetTrustAnchorCell", tagSequence)
	})
}

func encodeCertificates(e *encoder, field string, der81 bool, certs []Certificate) {
	e.tlv(field, tagSequence, der81, func() {
		for _, c := range certs {
			e.raw(field, tagSequence, c.Raw)
		}
	})
}

// Marshal encodes the payload.
func (p *UpdateSecurityCredentialsResponse) Marshal() ([]byte, error) {
	var e encoder
	e.tlv("UpdateSecurityCredentialsResponse", tagSequence, has(p.DERLengths, self), func() {
		e.null()
		if p.ExecutionOutcome != nil {
			p.ExecutionOutcome.encode(&e)
		}
	})
	return e.finish()
}

func (o *ExecutionOutcome) encode(e *encoder) {
	const name = "ExecutionOutcome"
	e.tlv(name, tagSequence, has(o.DERLengths, self), func() {
		e.int(tagInteger, int64(o.AuthorisingRemotePartySeqNumber))
		e.int(tagInteger, int64(o.CredentialsReplacementMode))
		e.tlv(name+".remotePartySeqNumberChanges", tagSequence, has(o.DERLengths, "remotePartySeqNumberChanges"), func() {
			for i := range o.RemotePartySeqNumberChanges {
				o.RemotePartySeqNumberChanges[i].encode(e)
			}
		})
		e.tlv(name+".replacementOutcomes", tagSequence, has(o.DERLengths, "replacementOutcomes"), func() {
			for i := range o.ReplacementOutcomes {
				o.ReplacementOutcomes[i].encode(e)
			}
		})
	})
}

func (o *ReplacementOutcome) encode(e *encoder) {
	const name = "ReplacementOutcome"
	e.tlv(name, tagSequence, false, func() {
		o.AffectedTrustAnchorCell.encode(e, name+".affectedTrustAnchorCell", tagSequence)
		e.int(tagEnumerated, int64(o.StatusCode))
		e.octets(name, tagOctetString, false, o.ExistingSubjectUniqueID[:])
		e.octets(name, tagOctetString, false, o.ExistingSubjectKeyID[:])
		e.octets(name, tagOctetString, false, o.ReplacingSubjectUniqueID[:])
		e.octets(name, tagOctetString, false, o.ReplacingSubjectKeyID[:])
	})
}

// Marshal encodes the payload.
func (a *UpdateSecurityCredentialsAlert) Marshal() ([]byte, error) {
	const name = "UpdateSecurityCredentialsAlert"
	var e encoder
	e.tlv(name, tagSequence, has(a.DERLengths, self), func() {
		e.int(tagInteger, int64(a.AlertCode))
		e.time(name+".executionDateTime", a.ExecutionDateTime)
		a.ExecutionOutcome.encode(&e)
	})
	return e.finish()
}

// CheckOwnRotation reports an error wrapping ErrInvalid when c is not a
// plain replacement of its signer's own cells (modes supplierBySupplier
// and networkOperatorByNetworkOperator): it may carry no other party's
// floor sequence numbers ([6]: only the transitional change of supplier,
// recovery and load-controller-by-supplier modes change another role's,
// gbcs-payloads.md 3.3), no plaintext symmetric key, a new floor [4] of
// zero if any, and for a supplier at most the prepayment top-up floor of
// zero ([5]). Otherwise a supplier signing its own rotation could raise
// the TCoS's floor and so refuse every change of supplier away from it,
// and a router building the CS02b could slip such a floor into what the
// owner signs.
func (c *UpdateSecurityCredentialsCommand) CheckOwnRotation() error {
	ctl := &c.AuthorisingRemotePartyControl
	switch ctl.CredentialsReplacementMode {
	case SupplierBySupplier, NetworkOperatorByNetworkOperator:
	default:
		return invalid("credentialsReplacementMode", "%v is not a rotation of the signer's own cells", ctl.CredentialsReplacementMode)
	}
	switch {
	case len(ctl.OtherRemotePartySeqNumberChanges) > 0:
		return invalid("otherRemotePartySeqNumberChanges", "%d changes of other roles' floors in a rotation of the signer's own cells",
			len(ctl.OtherRemotePartySeqNumberChanges))
	case len(ctl.PlaintextSymmetricKey) > 0:
		return invalid("plaintextSymmetricKey", "present in a rotation")
	case ctl.NewRemotePartyFloorSeqNumber != nil && *ctl.NewRemotePartyFloorSeqNumber != 0:
		return invalid("newRemotePartyFloorSeqNumber", "%d, want 0: the rotated role starts afresh", *ctl.NewRemotePartyFloorSeqNumber)
	}
	for _, f := range ctl.NewRemotePartySpecialistFloorSeqNumber {
		if ctl.CredentialsReplacementMode != SupplierBySupplier || f.SeqNumberUsage != SeqNumberPrepaymentTopUp || f.SeqNumber != 0 {
			return invalid("newRemotePartySpecialistFloorSeqNumber", "usage %d floor %d in mode %v; only a supplier's prepayment top-up floor of 0",
				f.SeqNumberUsage, f.SeqNumber, ctl.CredentialsReplacementMode)
		}
	}
	return nil
}
