package asn

// IssueSecurityCredentialsCommand is the CS02c (0x000A) command payload: the
// device is to generate a key pair for this usage and return a request.
//
//	IssueSecurityCredentialsCommand ::= SEQUENCE { keyUsage KeyUsage }
type IssueSecurityCredentialsCommand struct {
	KeyUsage KeyUsage `json:"keyUsage"`
}

// IssueSecurityCredentialsResponse is the CS02c response payload, a CHOICE:
// exactly one of the fields is set.
//
//	IssueSecurityCredentialsResponse ::= CHOICE {
//	    certificationRequest CertificationRequest,   -- PKCS#10, tag 30
//	    responseCode         INTEGER { invalidKeyUsage(1), keyPairGenerationFailed(2),
//	                                   crProductionFailed(3) } }
type IssueSecurityCredentialsResponse struct {
	CertificationRequest *CertificationRequest `json:"certificationRequest,omitempty"`
	ResponseCode         *IssueResponseCode    `json:"responseCode,omitempty"`
}

// UpdateDeviceCertificateCommand is the CS02d (0x000B) command payload, the
// new device certificate:
//
//	UpdateDeviceCertificateCommand ::= Certificate
type UpdateDeviceCertificateCommand struct {
	Certificate
}

// ProvideDeviceCertificateCommand is the CS02e (0x000C) command payload:
//
//	ProvideDeviceCertificateCommand ::= SEQUENCE { keyUsage KeyUsage }
type ProvideDeviceCertificateCommand struct {
	KeyUsage KeyUsage `json:"keyUsage"`
}

// ProvideDeviceCertificateResponse is the CS02e response payload, a CHOICE:
// exactly one of the fields is set.
//
//	ProvideDeviceCertificateResponse ::= CHOICE {
//	    certificate  Certificate,                    -- tag 30
//	    responseCode INTEGER { invalidKeyUsage(1), noCertificateHeld(2),
//	                           certificateRetrievalFailure(3) } }
type ProvideDeviceCertificateResponse struct {
	Certificate  *Certificate         `json:"certificate,omitempty"`
	ResponseCode *ProvideResponseCode `json:"responseCode,omitempty"`
}

func unmarshalKeyUsageSequence(b []byte, name string, out *KeyUsage) error {
	return decodeTop(b, name, tagSequence, nil, func(s *reader) error {
		var err error
		*out, err = s.keyUsage(name + ".keyUsage")
		return err
	})
}

func marshalKeyUsageSequence(name string, k KeyUsage) ([]byte, error) {
	var e encoder
	e.tlv(name, tagSequence, false, func() { e.keyUsage(name+".keyUsage", k) })
	return e.finish()
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *IssueSecurityCredentialsCommand) Unmarshal(b []byte) error {
	*c = IssueSecurityCredentialsCommand{}
	return unmarshalKeyUsageSequence(b, "IssueSecurityCredentialsCommand", &c.KeyUsage)
}

// Marshal encodes the payload.
func (c *IssueSecurityCredentialsCommand) Marshal() ([]byte, error) {
	return marshalKeyUsageSequence("IssueSecurityCredentialsCommand", c.KeyUsage)
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *ProvideDeviceCertificateCommand) Unmarshal(b []byte) error {
	*c = ProvideDeviceCertificateCommand{}
	return unmarshalKeyUsageSequence(b, "ProvideDeviceCertificateCommand", &c.KeyUsage)
}

// Marshal encodes the payload.
func (c *ProvideDeviceCertificateCommand) Marshal() ([]byte, error) {
	return marshalKeyUsageSequence("ProvideDeviceCertificateCommand", c.KeyUsage)
}

// decodeCertOrCode decodes a CHOICE of a DER element with tag 30 and an
// INTEGER code, chosen by the first byte.
func decodeCertOrCode(b []byte, name, certField string) (raw []byte, code *int64, err error) {
	r := reader{b: b}
	if t, ok := r.peek(); ok && t == tagInteger {
		v, err := r.int(name+".responseCode", tagInteger)
		if err != nil {
			return nil, nil, err
		}
		return nil, &v, r.done(name)
	}
	if t, ok := r.peek(); ok && t != tagSequence {
		return nil, nil, parseErr(name, 0, "want tag 0x30 (%s) or 0x02 (responseCode), have 0x%02X", certField, t)
	}
	if raw, err = r.raw(name+"."+certField, tagSequence); err != nil {
		return nil, nil, err
	}
	return raw, nil, r.done(name)
}

func marshalCertOrCode(name, certField string, raw []byte, code *int64) ([]byte, error) {
	var e encoder
	switch {
	case raw != nil && code != nil:
		e.fail(name, "both %s and responseCode are set in a CHOICE", certField)
	case raw != nil:
		e.raw(name+"."+certField, tagSequence, raw)
	case code != nil:
		e.int(tagInteger, *code)
	default:
		e.fail(name, "neither %s nor responseCode is set in a CHOICE", certField)
	}
	return e.finish()
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *IssueSecurityCredentialsResponse) Unmarshal(b []byte) error {
	*p = IssueSecurityCredentialsResponse{}
	raw, code, err := decodeCertOrCode(b, "IssueSecurityCredentialsResponse", "certificationRequest")
	if err != nil {
		return err
	}
	if code != nil {
		c := IssueResponseCode(*code)
		p.ResponseCode = &c
	} else {
		p.CertificationRequest = &CertificationRequest{Raw: raw}
	}
	return nil
}

// Marshal encodes the payload.
func (p *IssueSecurityCredentialsResponse) Marshal() ([]byte, error) {
	var raw []byte
	var code *int64
	if p.CertificationRequest != nil {
		raw = p.CertificationRequest.Raw
		if raw == nil {
			raw = []byte{}
		}
	}
	if p.ResponseCode != nil {
		v := int64(*p.ResponseCode)
		code = &v
	}
	return marshalCertOrCode("IssueSecurityCredentialsResponse", "certificationRequest", raw, code)
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *ProvideDeviceCertificateResponse) Unmarshal(b []byte) error {
	*p = ProvideDeviceCertificateResponse{}
	raw, code, err := decodeCertOrCode(b, "ProvideDeviceCertificateResponse", "certificate")
	if err != nil {
		return err
	}
	if code != nil {
		c := ProvideResponseCode(*code)
		p.ResponseCode = &c
	} else {
		p.Certificate = &Certificate{Raw: raw}
	}
	return nil
}

// Marshal encodes the payload.
func (p *ProvideDeviceCertificateResponse) Marshal() ([]byte, error) {
	var raw []byte
	var code *int64
	if p.Certificate != nil {
		raw = p.Certificate.Raw
		if raw == nil {
			raw = []byte{}
		}
	}
	if p.ResponseCode != nil {
		v := int64(*p.ResponseCode)
		code = &v
	}
	return marshalCertOrCode("ProvideDeviceCertificateResponse", "certificate", raw, code)
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *UpdateDeviceCertificateCommand) Unmarshal(b []byte) error {
	*c = UpdateDeviceCertificateCommand{}
	r := reader{b: b}
	raw, err := r.raw("UpdateDeviceCertificateCommand", tagSequence)
	if err != nil {
		return err
	}
	c.Raw = raw
	return r.done("UpdateDeviceCertificateCommand")
}

// Marshal encodes the payload.
func (c *UpdateDeviceCertificateCommand) Marshal() ([]byte, error) {
	var e encoder
	e.raw("UpdateDeviceCertificateCommand", tagSequence, c.Raw)
	return e.finish()
}

// Unmarshal decodes b, which must hold exactly one payload, into v.
func (v *UpdateDeviceCertificateResponse) Unmarshal(b []byte) error {
	return unmarshalInteger(b, "UpdateDeviceCertificateResponse", (*int64)(v))
}

// Marshal encodes the payload.
func (v *UpdateDeviceCertificateResponse) Marshal() ([]byte, error) { return marshalInteger(int64(*v)) }

// unmarshalInteger decodes a payload that is one INTEGER.
func unmarshalInteger(b []byte, name string, out *int64) error {
	r := reader{b: b}
	v, err := r.int(name, tagInteger)
	if err != nil {
		return err
	}
	if err := r.done(name); err != nil {
		return err
	}
	*out = v
	return nil
}

func marshalInteger(v int64) ([]byte, error) {
	var e encoder
	e.int(tagInteger, v)
	return e.finish()
}
