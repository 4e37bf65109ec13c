package asn

// ProvideSecurityCredentialDetailsCommand is the CS02a (0x0008) and CS02f
// (0x011B) command payload:
//
//	ProvideSecurityCredentialDetailsCommand ::= SEQUENCE {
//	    authorisingRemotePartyTACellIdentifier TrustAnchorCellIdentifier,
//	    remotePartyRolesCredentialsRequired    SEQUENCE OF RemotePartyRole }
type ProvideSecurityCredentialDetailsCommand struct {
	AuthorisingRemotePartyTACellIdentifier TrustAnchorCellIdentifier `json:"authorisingRemotePartyTACellIdentifier"`
	RemotePartyRolesCredentialsRequired    []RemotePartyRole         `json:"remotePartyRolesCredentialsRequired"`
	DERLengths                             []string                  `json:"derLengths,omitempty"`
}

// ProvideSecurityCredentialDetailsResponse is the CS02a and CS02f response
// payload, one RemotePartyDetails per requested role, in the order asked:
//
//	ProvideSecurityCredentialDetailsResponse ::= SEQUENCE OF RemotePartyDetails
type ProvideSecurityCredentialDetailsResponse struct {
	RemotePartyDetails []RemotePartyDetails `json:"remotePartyDetails"`
	DERLengths         []string             `json:"derLengths,omitempty"`
}

// RemotePartyDetails is a device's trust anchors for one role:
//
//	RemotePartyDetails ::= SEQUENCE {
//	    remotePartyRole        RemotePartyRole,
//	    statusCode             StatusCode,
//	    currentSeqNumber       SeqNumber OPTIONAL,
//	    trustAnchorCellDetails SEQUENCE OF TrustAnchorCellContents OPTIONAL }
type RemotePartyDetails struct {
	RemotePartyRole        RemotePartyRole           `json:"remotePartyRole"`
	StatusCode             StatusCode                `json:"statusCode"`
	CurrentSeqNumber       *SeqNumber                `json:"currentSeqNumber,omitempty"`
	TrustAnchorCellDetails []TrustAnchorCellContents `json:"trustAnchorCellDetails,omitzero"`
	DERLengths             []string                  `json:"derLengths,omitempty"`
}

// TrustAnchorCellContents is one trust-anchor cell as a device reports it:
//
//	TrustAnchorCellContents ::= SEQUENCE {
//	    keyUsage KeyUsage, cellUsage CellUsage DEFAULT management,
//	    subjectUniqueID OCTET STRING (SIZE(8)), subjectKeyIdentifier OCTET STRING (SIZE(8)) }
type TrustAnchorCellContents struct {
	KeyUsage  KeyUsage  `json:"keyUsage"`
	CellUsage CellUsage `json:"cellUsage"`
	// CellUsageExplicit records that the DEFAULT management(0) was written
	// out; it has no effect when CellUsage is not management.
	CellUsageExplicit    bool     `json:"cellUsageExplicit,omitempty"`
	SubjectUniqueID      EntityID `json:"subjectUniqueID"`
	SubjectKeyIdentifier KeyID    `json:"subjectKeyIdentifier"`
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *ProvideSecurityCredentialDetailsCommand) Unmarshal(b []byte) error {
	const name = "ProvideSecurityCredentialDetailsCommand"
	*c = ProvideSecurityCredentialDetailsCommand{}
	return decodeTop(b, name, tagSequence, &c.DERLengths, func(s *reader) error {
		if err := c.AuthorisingRemotePartyTACellIdentifier.decode(s, name+".authorisingRemotePartyTACellIdentifier", tagSequence); err != nil {
			return err
		}
		l, der81, err := s.next(name+".remotePartyRolesCredentialsRequired", tagSequence)
		if err != nil {
			return err
		}
		record(&c.DERLengths, der81, "remotePartyRolesCredentialsRequired")
		c.RemotePartyRolesCredentialsRequired = []RemotePartyRole{}
		for !l.empty() {
			v, err := l.int(name+".remotePartyRolesCredentialsRequired", tagInteger)
			if err != nil {
				return err
			}
			c.RemotePartyRolesCredentialsRequired = append(c.RemotePartyRolesCredentialsRequired, RemotePartyRole(v))
		}
		return nil
	})
}

// Marshal encodes the payload.
func (c *ProvideSecurityCredentialDetailsCommand) Marshal() ([]byte, error) {
	const name = "ProvideSecurityCredentialDetailsCommand"
	var e encoder
	e.tlv(name, tagSequence, has(c.DERLengths, self), func() {
		c.AuthorisingRemotePartyTACellIdentifier.encode(&e, name+".authorisingRemotePartyTACellIdentifier", tagSequence)
		e.tlv(name+".remotePartyRolesCredentialsRequired", tagSequence,
			has(c.DERLengths, "remotePartyRolesCredentialsRequired"), func() {
				for _, r := range c.RemotePartyRolesCredentialsRequired {
					e.int(tagInteger, int64(r))
				}
			})
	})
	return e.finish()
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *ProvideSecurityCredentialDetailsResponse) Unmarshal(b []byte) error {
	*p = ProvideSecurityCredentialDetailsResponse{RemotePartyDetails: []RemotePartyDetails{}}
	return decodeTop(b, "ProvideSecurityCredentialDetailsResponse", tagSequence, &p.DERLengths, func(s *reader) error {
		for !s.empty() {
			var d RemotePartyDetails
			if err := d.decode(s); err != nil {
				return err
			}
			p.RemotePartyDetails = append(p.RemotePartyDetails, d)
		}
		return nil
	})
}

func (d *RemotePartyDetails) decode(r *reader) error {
	const name = "RemotePartyDetails"
	s, der81, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	record(&d.DERLengths, der81, self)
	role, err := s.int(name+".remotePartyRole", tagInteger)
	if err != nil {
		return err
	}
	st, err := s.int(name+".statusCode", tagEnumerated)
	if err != nil {
		return err
	}
	d.RemotePartyRole, d.StatusCode = RemotePartyRole(role), StatusCode(st)
	if t, _ := s.peek(); t == tagInteger {
		v, err := s.int(name+".currentSeqNumber", tagInteger)
		if err != nil {
			return err
		}
		seq := SeqNumber(v)
		d.CurrentSeqNumber = &seq
	}
	if !s.empty() {
		l, der81, err := s.next(name+".trustAnchorCellDetails", tagSequence)
		if err != nil {
			return err
		}
		record(&d.DERLengths, der81, "trustAnchorCellDetails")
		d.TrustAnchorCellDetails = []TrustAnchorCellContents{}
		for !l.empty() {
			var c TrustAnchorCellContents
			if err := c.decode(&l); err != nil {
				return err
			}
			d.TrustAnchorCellDetails = append(d.TrustAnchorCellDetails, c)
		}
	}
	return s.done(name)
}

func (c *TrustAnchorCellContents) decode(r *reader) error {
	const name = "TrustAnchorCellContents"
	s, _, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	if c.KeyUsage, err = s.keyUsage(name + ".keyUsage"); err != nil {
		return err
	}
	if err := decodeCellUsage(&s, name+".cellUsage", &c.CellUsage, &c.CellUsageExplicit); err != nil {
		return err
	}
	if err := s.fixed(name+".subjectUniqueID", c.SubjectUniqueID[:]); err != nil {
		return err
	}
	if err := s.fixed(name+".subjectKeyIdentifier", c.SubjectKeyIdentifier[:]); err != nil {
		return err
	}
	return s.done(name)
}

// Marshal encodes the payload.
func (p *ProvideSecurityCredentialDetailsResponse) Marshal() ([]byte, error) {
	const name = "RemotePartyDetails"
	var e encoder
	e.tlv("ProvideSecurityCredentialDetailsResponse", tagSequence, has(p.DERLengths, self), func() {
		for _, d := range p.RemotePartyDetails {
			e.tlv(name, tagSequence, has(d.DERLengths, self), func() {
				e.int(tagInteger, int64(d.RemotePartyRole))
				e.int(tagEnumerated, int64(d.StatusCode))
				if d.CurrentSeqNumber != nil {
					e.int(tagInteger, int64(*d.CurrentSeqNumber))
				}
				if d.TrustAnchorCellDetails != nil {
					e.tlv(name+".trustAnchorCellDetails", tagSequence, has(d.DERLengths, "trustAnchorCellDetails"), func() {
						for _, c := range d.TrustAnchorCellDetails {
							e.tlv("TrustAnchorCellContents", tagSequence, false, func() {
								e.keyUsage("TrustAnchorCellContents.keyUsage", c.KeyUsage)
								encodeCellUsage(&e, c.CellUsage, c.CellUsageExplicit)
								e.octets("TrustAnchorCellContents.subjectUniqueID", tagOctetString, false, c.SubjectUniqueID[:])
								e.octets("TrustAnchorCellContents.subjectKeyIdentifier", tagOctetString, false, c.SubjectKeyIdentifier[:])
							})
						}
					})
				}
			})
		}
	})
	return e.finish()
}
