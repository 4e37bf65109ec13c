package asn

// The other ASN.1 payloads of gbcs-payloads.md section 3.6.

// DeviceLogEntry is one device in a device log:
//
//	DeviceLogEntry ::= SEQUENCE { deviceId OCTET STRING (SIZE(8)), deviceType DeviceType }
type DeviceLogEntry struct {
	DeviceID   EntityID   `json:"deviceId"`
	DeviceType DeviceType `json:"deviceType"`
}

func (d *DeviceLogEntry) decode(r *reader) error {
	const name = "DeviceLogEntry"
	s, _, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	if err := s.fixed(name+".deviceId", d.DeviceID[:]); err != nil {
		return err
	}
	t, err := s.int(name+".deviceType", tagInteger)
	if err != nil {
		return err
	}
	d.DeviceType = DeviceType(t)
	return s.done(name)
}

func (d *DeviceLogEntry) encode(e *encoder) {
	e.tlv("DeviceLogEntry", tagSequence, false, func() {
		e.octets("DeviceLogEntry.deviceId", tagOctetString, false, d.DeviceID[:])
		e.int(tagInteger, int64(d.DeviceType))
	})
}

func decodeDeviceLog(r *reader, field string) ([]DeviceLogEntry, bool, error) {
	l, der81, err := r.next(field, tagSequence)
	if err != nil {
		return nil, false, err
	}
	out := []DeviceLogEntry{}
	for !l.empty() {
		var d DeviceLogEntry
		if err := d.decode(&l); err != nil {
			return nil, false, err
		}
		out = append(out, d)
	}
	return out, der81, nil
}

func encodeDeviceLog(e *encoder, field string, der81 bool, list []DeviceLogEntry) {
	e.tlv(field, tagSequence, der81, func() {
		for i := range list {
			list[i].encode(e)
		}
	})
}

// JoinDeviceCommand is the CS03 join command payload (0x000D CS03A1, 0x00AB
// CS03A2, 0x000E CS03B, 0x00AF CS03C):
//
//	JoinDeviceCommand ::= SEQUENCE {
//	    joinMethodAndRole INTEGER, entityId OCTET STRING (SIZE(8)),
//	    deviceType DeviceType, certificate Certificate OPTIONAL }
//
// Certificate is the other device's key agreement certificate.
type JoinDeviceCommand struct {
	JoinMethodAndRole JoinMethodAndRole `json:"joinMethodAndRole"`
	EntityID          EntityID          `json:"entityId"`
	DeviceType        DeviceType        `json:"deviceType"`
	Certificate       *Certificate      `json:"certificate,omitempty"`
	DERLengths        []string          `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *JoinDeviceCommand) Unmarshal(b []byte) error {
	const name = "JoinDeviceCommand"
	*c = JoinDeviceCommand{}
	return decodeTop(b, name, tagSequence, &c.DERLengths, func(s *reader) error {
		m, err := s.int(name+".joinMethodAndRole", tagInteger)
		if err != nil {
			return err
		}
		c.JoinMethodAndRole = JoinMethodAndRole(m)
		if err := s.fixed(name+".entityId", c.EntityID[:]); err != nil {
			return err
		}
		t, err := s.int(name+".deviceType", tagInteger)
		if err != nil {
			return err
		}
		c.DeviceType = DeviceType(t)
		if !s.empty() {
			raw, err := s.raw(name+".certificate", tagSequence)
			if err != nil {
				return err
			}
			c.Certificate = &Certificate{Raw: raw}
		}
		return nil
	})
}

// Marshal encodes the payload.
func (c *JoinDeviceCommand) Marshal() ([]byte, error) {
	const name = "JoinDeviceCommand"
	var e encoder
	e.tlv(name, tagSequence, has(c.DERLengths, self), func() {
		e.int(tagInteger, int64(c.JoinMethodAndRole))
		e.octets(name+".entityId", tagOctetString, false, c.EntityID[:])
		e.int(tagInteger, int64(c.DeviceType))
		if c.Certificate != nil {
			e.raw(name+".certificate", tagSequence, c.Certificate.Raw)
		}
	})
	return e.finish()
}

// Unmarshal decodes b, which must hold exactly one payload, into v.
func (v *JoinDeviceResponse) Unmarshal(b []byte) error {
	return unmarshalInteger(b, "JoinDeviceResponse", (*int64)(v))
}

// Marshal encodes the payload.
func (v *JoinDeviceResponse) Marshal() ([]byte, error) { return marshalInteger(int64(*v)) }

// UnjoinDeviceCommand is the CS04 unjoin command payload (0x000F CS04AC,
// 0x0010 CS04B):
//
//	UnjoinDeviceCommand ::= OCTET STRING (SIZE(8))   -- the entity to remove
type UnjoinDeviceCommand struct {
	EntityID EntityID `json:"entityId"`
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *UnjoinDeviceCommand) Unmarshal(b []byte) error {
	r := reader{b: b}
	var id EntityID
	if err := r.fixed("UnjoinDeviceCommand", id[:]); err != nil {
		return err
	}
	if err := r.done("UnjoinDeviceCommand"); err != nil {
		return err
	}
	c.EntityID = id
	return nil
}

// Marshal encodes the payload.
func (c *UnjoinDeviceCommand) Marshal() ([]byte, error) {
	var e encoder
	e.octets("UnjoinDeviceCommand", tagOctetString, false, c.EntityID[:])
	return e.finish()
}

// Unmarshal decodes b, which must hold exactly one payload, into v.
func (v *UnjoinDeviceResponse) Unmarshal(b []byte) error {
	return unmarshalInteger(b, "UnjoinDeviceResponse", (*int64)(v))
}

// Marshal encodes the payload.
func (v *UnjoinDeviceResponse) Marshal() ([]byte, error) { return marshalInteger(int64(*v)) }

// ActivateFirmwareCommand is the CS06 (0x0012) command payload:
//
//	ActivateFirmwareCommand ::= SEQUENCE {
//	    manufacturerImageHash OCTET STRING (SIZE(32)), originatorCounter INTEGER,
//	    executionDateTime GeneralizedTime OPTIONAL }
type ActivateFirmwareCommand struct {
	ManufacturerImageHash Octets           `json:"manufacturerImageHash"`
	OriginatorCounter     uint64           `json:"originatorCounter"`
	ExecutionDateTime     *GeneralizedTime `json:"executionDateTime,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *ActivateFirmwareCommand) Unmarshal(b []byte) error {
	const name = "ActivateFirmwareCommand"
	*c = ActivateFirmwareCommand{}
	return decodeTop(b, name, tagSequence, nil, func(s *reader) error {
		hash := make(Octets, 32)
		if err := s.fixed(name+".manufacturerImageHash", hash); err != nil {
			return err
		}
		c.ManufacturerImageHash = hash
		var err error
		if c.OriginatorCounter, err = s.uint(name + ".originatorCounter"); err != nil {
			return err
		}
		if !s.empty() {
			t, err := s.time(name + ".executionDateTime")
			if err != nil {
				return err
			}
			c.ExecutionDateTime = &t
		}
		return nil
	})
}

// Marshal encodes the payload.
func (c *ActivateFirmwareCommand) Marshal() ([]byte, error) {
	const name = "ActivateFirmwareCommand"
	var e encoder
	if len(c.ManufacturerImageHash) != 32 {
		e.fail(name+".manufacturerImageHash", "want 32 bytes, have %d", len(c.ManufacturerImageHash))
	}
	e.tlv(name, tagSequence, false, func() {
		e.octets(name+".manufacturerImageHash", tagOctetString, false, c.ManufacturerImageHash)
		e.uint(c.OriginatorCounter)
		if c.ExecutionDateTime != nil {
			e.time(name+".executionDateTime", *c.ExecutionDateTime)
		}
	})
	return e.finish()
}

// ActivateFirmwareOutcome is the result of a firmware activation:
//
//	ActivateFirmwareOutcome ::= SEQUENCE {
//	    responseCode INTEGER { success(0), noImageHeld(1), hashMismatch(2), activationFailure(3) },
//	    firmwareVersion OCTET STRING }
type ActivateFirmwareOutcome struct {
	ResponseCode    ActivateFirmwareResponseCode `json:"responseCode"`
	FirmwareVersion Octets                       `json:"firmwareVersion"`
	DERLengths      []string                     `json:"derLengths,omitempty"`
}

func (o *ActivateFirmwareOutcome) decode(r *reader) error {
	const name = "ActivateFirmwareOutcome"
	s, der81, err := r.next(name, tagSequence)
	if err != nil {
		return err
	}
	record(&o.DERLengths, der81, self)
	c, err := s.int(name+".responseCode", tagInteger)
	if err != nil {
		return err
	}
	o.ResponseCode = ActivateFirmwareResponseCode(c)
	if o.FirmwareVersion, der81, err = s.octets(name+".firmwareVersion", tagOctetString); err != nil {
		return err
	}
	record(&o.DERLengths, der81, "firmwareVersion")
	return s.done(name)
}

func (o *ActivateFirmwareOutcome) encode(e *encoder) {
	const name = "ActivateFirmwareOutcome"
	e.tlv(name, tagSequence, has(o.DERLengths, self), func() {
		e.int(tagInteger, int64(o.ResponseCode))
		e.octets(name+".firmwareVersion", tagOctetString, has(o.DERLengths, "firmwareVersion"), o.FirmwareVersion)
	})
}

// ActivateFirmwareResponse is the CS06 response payload, a CHOICE: either
// CommandAccepted (NULL, for a future-dated command) or ExecutionOutcome.
//
//	ActivateFirmwareResponse ::= CHOICE {
//	    commandAccepted NULL, executionOutcome ActivateFirmwareOutcome }
type ActivateFirmwareResponse struct {
	CommandAccepted  bool                     `json:"commandAccepted,omitempty"`
	ExecutionOutcome *ActivateFirmwareOutcome `json:"executionOutcome,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *ActivateFirmwareResponse) Unmarshal(b []byte) error {
	const name = "ActivateFirmwareResponse"
	*p = ActivateFirmwareResponse{}
	r := reader{b: b}
	if t, ok := r.peek(); ok && t == tagNull {
		if err := r.null(name + ".commandAccepted"); err != nil {
			return err
		}
		p.CommandAccepted = true
		return r.done(name)
	}
	if t, ok := r.peek(); ok && t != tagSequence {
		return parseErr(name, 0, "want tag 0x05 (commandAccepted) or 0x30 (executionOutcome), have 0x%02X", t)
	}
	p.ExecutionOutcome = new(ActivateFirmwareOutcome)
	if err := p.ExecutionOutcome.decode(&r); err != nil {
		return err
	}
	return r.done(name)
}

// Marshal encodes the payload.
func (p *ActivateFirmwareResponse) Marshal() ([]byte, error) {
	const name = "ActivateFirmwareResponse"
	var e encoder
	switch {
	case p.CommandAccepted && p.ExecutionOutcome != nil:
		e.fail(name, "both commandAccepted and executionOutcome are set in a CHOICE")
	case p.CommandAccepted:
		e.null()
	case p.ExecutionOutcome != nil:
		p.ExecutionOutcome.encode(&e)
	default:
		e.fail(name, "neither commandAccepted nor executionOutcome is set in a CHOICE")
	}
	return e.finish()
}

// ActivateFirmwareAlert is the CS06 future-dated activation alert payload
// (0x00CA):
//
//	ActivateFirmwareAlert ::= SEQUENCE {
//	    alertCode AlertCode, executionDateTime GeneralizedTime,
//	    originatorCounter INTEGER, executionOutcome ActivateFirmwareOutcome }
type ActivateFirmwareAlert struct {
	AlertCode         AlertCode               `json:"alertCode"`
	ExecutionDateTime GeneralizedTime         `json:"executionDateTime"`
	OriginatorCounter uint64                  `json:"originatorCounter"`
	ExecutionOutcome  ActivateFirmwareOutcome `json:"executionOutcome"`
	DERLengths        []string                `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into a.
func (a *ActivateFirmwareAlert) Unmarshal(b []byte) error {
	const name = "ActivateFirmwareAlert"
	*a = ActivateFirmwareAlert{}
	return decodeTop(b, name, tagSequence, &a.DERLengths, func(s *reader) error {
		code, err := s.int(name+".alertCode", tagInteger)
		if err != nil {
			return err
		}
		a.AlertCode = AlertCode(code)
		if a.ExecutionDateTime, err = s.time(name + ".executionDateTime"); err != nil {
			return err
		}
		if a.OriginatorCounter, err = s.uint(name + ".originatorCounter"); err != nil {
			return err
		}
		return a.ExecutionOutcome.decode(s)
	})
}

// Marshal encodes the payload.
func (a *ActivateFirmwareAlert) Marshal() ([]byte, error) {
	const name = "ActivateFirmwareAlert"
	var e encoder
	e.tlv(name, tagSequence, has(a.DERLengths, self), func() {
		e.int(tagInteger, int64(a.AlertCode))
		e.time(name+".executionDateTime", a.ExecutionDateTime)
		e.uint(a.OriginatorCounter)
		a.ExecutionOutcome.encode(&e)
	})
	return e.finish()
}

// ReadDeviceJoinDetailsCommand is the CS07 (0x0013) command payload, NULL.
type ReadDeviceJoinDetailsCommand struct{}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *ReadDeviceJoinDetailsCommand) Unmarshal(b []byte) error {
	return unmarshalNull(b, "ReadDeviceJoinDetailsCommand")
}

// Marshal encodes the payload.
func (c *ReadDeviceJoinDetailsCommand) Marshal() ([]byte, error) { return []byte{tagNull, 0}, nil }

func unmarshalNull(b []byte, name string) error {
	r := reader{b: b}
	if err := r.null(name); err != nil {
		return err
	}
	return r.done(name)
}

// ReadDeviceJoinDetailsResponse is the CS07 response payload:
//
//	ReadDeviceJoinDetailsResponse ::= SEQUENCE {
//	    responseCode INTEGER { success(0), readFailure(1) },
//	    deviceLogEntries SEQUENCE OF DeviceLogEntry OPTIONAL }
type ReadDeviceJoinDetailsResponse struct {
	ResponseCode     ReadDeviceJoinDetailsResponseCode `json:"responseCode"`
	DeviceLogEntries []DeviceLogEntry                  `json:"deviceLogEntries,omitzero"`
	DERLengths       []string                          `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *ReadDeviceJoinDetailsResponse) Unmarshal(b []byte) error {
	const name = "ReadDeviceJoinDetailsResponse"
	*p = ReadDeviceJoinDetailsResponse{}
	return decodeTop(b, name, tagSequence, &p.DERLengths, func(s *reader) error {
		c, err := s.int(name+".responseCode", tagInteger)
		if err != nil {
			return err
		}
		p.ResponseCode = ReadDeviceJoinDetailsResponseCode(c)
		if !s.empty() {
			var der81 bool
			if p.DeviceLogEntries, der81, err = decodeDeviceLog(s, name+".deviceLogEntries"); err != nil {
				return err
			}
			record(&p.DERLengths, der81, "deviceLogEntries")
		}
		return nil
	})
}

// Marshal encodes the payload.
func (p *ReadDeviceJoinDetailsResponse) Marshal() ([]byte, error) {
	const name = "ReadDeviceJoinDetailsResponse"
	var e encoder
	e.tlv(name, tagSequence, has(p.DERLengths, self), func() {
		e.int(tagInteger, int64(p.ResponseCode))
		if p.DeviceLogEntries != nil {
			encodeDeviceLog(&e, name+".deviceLogEntries", has(p.DERLengths, "deviceLogEntries"), p.DeviceLogEntries)
		}
	})
	return e.finish()
}

// CS08Command is the CS08 (0x0129) Read PPMID/HCALCS Firmware Version
// command payload, NULL.
type CS08Command struct{}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *CS08Command) Unmarshal(b []byte) error { return unmarshalNull(b, "CS08Command") }

// Marshal encodes the payload.
func (c *CS08Command) Marshal() ([]byte, error) { return []byte{tagNull, 0}, nil }

// CS08Response is the CS08 response payload:
//
//	CS08Response ::= SEQUENCE {
//	    firmwareVersion OCTET STRING,
//	    responseCode INTEGER { readSuccess(0), readFailure(1) } }
type CS08Response struct {
	FirmwareVersion Octets           `json:"firmwareVersion"`
	ResponseCode    CS08ResponseCode `json:"responseCode"`
	DERLengths      []string         `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *CS08Response) Unmarshal(b []byte) error {
	const name = "CS08Response"
	*p = CS08Response{}
	return decodeTop(b, name, tagSequence, &p.DERLengths, func(s *reader) error {
		var der81 bool
		var err error
		if p.FirmwareVersion, der81, err = s.octets(name+".firmwareVersion", tagOctetString); err != nil {
			return err
		}
		record(&p.DERLengths, der81, "firmwareVersion")
		c, err := s.int(name+".responseCode", tagInteger)
		p.ResponseCode = CS08ResponseCode(c)
		return err
	})
}

// Marshal encodes the payload.
func (p *CS08Response) Marshal() ([]byte, error) {
	const name = "CS08Response"
	var e encoder
	e.tlv(name, tagSequence, has(p.DERLengths, self), func() {
		e.octets(name+".firmwareVersion", tagOctetString, has(p.DERLengths, "firmwareVersion"), p.FirmwareVersion)
		e.int(tagInteger, int64(p.ResponseCode))
	})
	return e.finish()
}

// CS08Alert is the payload of the CS08 alert (0x0129) and of the CS09 alert
// (0x012B), which has the same shape:
//
//	CS08Alert ::= SEQUENCE {
//	    alertCode AlertCode, executionDateTime GeneralizedTime,
//	    firmwareVersion OCTET STRING, activateImage INTEGER { success(0), failure(1) } }
type CS08Alert struct {
	AlertCode         AlertCode       `json:"alertCode"`
	ExecutionDateTime GeneralizedTime `json:"executionDateTime"`
	FirmwareVersion   Octets          `json:"firmwareVersion"`
	ActivateImage     ActivateImage   `json:"activateImage"`
	DERLengths        []string        `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into a.
func (a *CS08Alert) Unmarshal(b []byte) error {
	const name = "CS08Alert"
	*a = CS08Alert{}
	return decodeTop(b, name, tagSequence, &a.DERLengths, func(s *reader) error {
		code, err := s.int(name+".alertCode", tagInteger)
		if err != nil {
			return err
		}
		a.AlertCode = AlertCode(code)
		if a.ExecutionDateTime, err = s.time(name + ".executionDateTime"); err != nil {
			return err
		}
		var der81 bool
		if a.FirmwareVersion, der81, err = s.octets(name+".firmwareVersion", tagOctetString); err != nil {
			return err
		}
		record(&a.DERLengths, der81, "firmwareVersion")
		v, err := s.int(name+".activateImage", tagInteger)
		a.ActivateImage = ActivateImage(v)
		return err
	})
}

// Marshal encodes the payload.
func (a *CS08Alert) Marshal() ([]byte, error) {
	const name = "CS08Alert"
	var e encoder
	e.tlv(name, tagSequence, has(a.DERLengths, self), func() {
		e.int(tagInteger, int64(a.AlertCode))
		e.time(name+".executionDateTime", a.ExecutionDateTime)
		e.octets(name+".firmwareVersion", tagOctetString, has(a.DERLengths, "firmwareVersion"), a.FirmwareVersion)
		e.int(tagInteger, int64(a.ActivateImage))
	})
	return e.finish()
}

// FirmwareTransferAlert is the CCS08 Firmware Transfer Alert payload
// (0x0128):
//
//	FirmwareTransferAlert ::= SEQUENCE {
//	    alertCode AlertCode, executionDateTime GeneralizedTime, entityId OCTET STRING,
//	    firmwareVersion OCTET STRING, responseCode INTEGER { success(0), imageDiscarded(1),
//	    hardwareVersionMismatch(2), fileTransferFailure(3) } }
//
// entityId has no fixed size in this structure, so it is kept as Octets.
type FirmwareTransferAlert struct {
	AlertCode         AlertCode                    `json:"alertCode"`
	ExecutionDateTime GeneralizedTime              `json:"executionDateTime"`
	EntityID          Octets                       `json:"entityId"`
	FirmwareVersion   Octets                       `json:"firmwareVersion"`
	ResponseCode      FirmwareTransferResponseCode `json:"responseCode"`
	DERLengths        []string                     `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into a.
func (a *FirmwareTransferAlert) Unmarshal(b []byte) error {
	const name = "FirmwareTransferAlert"
	*a = FirmwareTransferAlert{}
	return decodeTop(b, name, tagSequence, &a.DERLengths, func(s *reader) error {
		code, err := s.int(name+".alertCode", tagInteger)
		if err != nil {
			return err
		}
		a.AlertCode = AlertCode(code)
		if a.ExecutionDateTime, err = s.time(name + ".executionDateTime"); err != nil {
			return err
		}
		var der81 bool
		if a.EntityID, der81, err = s.octets(name+".entityId", tagOctetString); err != nil {
			return err
		}
		record(&a.DERLengths, der81, "entityId")
		if a.FirmwareVersion, der81, err = s.octets(name+".firmwareVersion", tagOctetString); err != nil {
			return err
		}
		record(&a.DERLengths, der81, "firmwareVersion")
		v, err := s.int(name+".responseCode", tagInteger)
		a.ResponseCode = FirmwareTransferResponseCode(v)
		return err
	})
}

// Marshal encodes the payload.
func (a *FirmwareTransferAlert) Marshal() ([]byte, error) {
	const name = "FirmwareTransferAlert"
	var e encoder
	e.tlv(name, tagSequence, has(a.DERLengths, self), func() {
		e.int(tagInteger, int64(a.AlertCode))
		e.time(name+".executionDateTime", a.ExecutionDateTime)
		e.octets(name+".entityId", tagOctetString, has(a.DERLengths, "entityId"), a.EntityID)
		e.octets(name+".firmwareVersion", tagOctetString, has(a.DERLengths, "firmwareVersion"), a.FirmwareVersion)
		e.int(tagInteger, int64(a.ResponseCode))
	})
	return e.finish()
}

// SetTimeCommand is the GCS28 Set Clock on GSME command payload (0x007F):
//
//	SetTimeCommand ::= SEQUENCE {
//	    validityIntervalStart GeneralizedTime, validityIntervalEnd GeneralizedTime }
type SetTimeCommand struct {
	ValidityIntervalStart GeneralizedTime `json:"validityIntervalStart"`
	ValidityIntervalEnd   GeneralizedTime `json:"validityIntervalEnd"`
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *SetTimeCommand) Unmarshal(b []byte) error {
	const name = "SetTimeCommand"
	*c = SetTimeCommand{}
	return decodeTop(b, name, tagSequence, nil, func(s *reader) error {
		var err error
		if c.ValidityIntervalStart, err = s.time(name + ".validityIntervalStart"); err != nil {
			return err
		}
		c.ValidityIntervalEnd, err = s.time(name + ".validityIntervalEnd")
		return err
	})
}

// Marshal encodes the payload.
func (c *SetTimeCommand) Marshal() ([]byte, error) {
	const name = "SetTimeCommand"
	var e encoder
	e.tlv(name, tagSequence, false, func() {
		e.time(name+".validityIntervalStart", c.ValidityIntervalStart)
		e.time(name+".validityIntervalEnd", c.ValidityIntervalEnd)
	})
	return e.finish()
}

// SetTimeResponse is the GCS28 response payload:
//
//	SetTimeResponse ::= SEQUENCE {
//	    deviceTime GeneralizedTime,
//	    deviceTimeStatus INTEGER { reliable(0), invalid(1), unreliable(2) } }
type SetTimeResponse struct {
	DeviceTime       GeneralizedTime  `json:"deviceTime"`
	DeviceTimeStatus DeviceTimeStatus `json:"deviceTimeStatus"`
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *SetTimeResponse) Unmarshal(b []byte) error {
	const name = "SetTimeResponse"
	*p = SetTimeResponse{}
	return decodeTop(b, name, tagSequence, nil, func(s *reader) error {
		var err error
		if p.DeviceTime, err = s.time(name + ".deviceTime"); err != nil {
			return err
		}
		v, err := s.int(name+".deviceTimeStatus", tagInteger)
		p.DeviceTimeStatus = DeviceTimeStatus(v)
		return err
	})
}

// Marshal encodes the payload.
func (p *SetTimeResponse) Marshal() ([]byte, error) {
	const name = "SetTimeResponse"
	var e encoder
	e.tlv(name, tagSequence, false, func() {
		e.time(name+".deviceTime", p.DeviceTime)
		e.int(tagInteger, int64(p.DeviceTimeStatus))
	})
	return e.finish()
}

// GpfDeviceLogRestoreCommand is the GCS59 Restore GPF Device Log command
// payload (0x008C):
//
//	GpfDeviceLogRestoreCommand ::= SEQUENCE { deviceLogEntries SEQUENCE OF DeviceLogEntry }
type GpfDeviceLogRestoreCommand struct {
	DeviceLogEntries []DeviceLogEntry `json:"deviceLogEntries"`
	DERLengths       []string         `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into c.
func (c *GpfDeviceLogRestoreCommand) Unmarshal(b []byte) error {
	const name = "GpfDeviceLogRestoreCommand"
	*c = GpfDeviceLogRestoreCommand{}
	return decodeTop(b, name, tagSequence, &c.DERLengths, func(s *reader) error {
		var der81 bool
		var err error
		c.DeviceLogEntries, der81, err = decodeDeviceLog(s, name+".deviceLogEntries")
		record(&c.DERLengths, der81, "deviceLogEntries")
		return err
	})
}

// Marshal encodes the payload.
func (c *GpfDeviceLogRestoreCommand) Marshal() ([]byte, error) {
	const name = "GpfDeviceLogRestoreCommand"
	var e encoder
	e.tlv(name, tagSequence, has(c.DERLengths, self), func() {
		encodeDeviceLog(&e, name+".deviceLogEntries", has(c.DERLengths, "deviceLogEntries"), c.DeviceLogEntries)
	})
	return e.finish()
}

// RestoreOutcome is the result of restoring one device log entry.
//
//	RestoreOutcome ::= SEQUENCE { deviceLogEntry DeviceLogEntry, joinResponseCode INTEGER }
type RestoreOutcome struct {
	DeviceLogEntry   DeviceLogEntry     `json:"deviceLogEntry"`
	JoinResponseCode JoinDeviceResponse `json:"joinResponseCode"`
}

// GpfDeviceLogRestoreResponse is the GCS59 response payload:
//
//	GpfDeviceLogRestoreResponse ::= SEQUENCE { restoreOutcomes SEQUENCE OF RestoreOutcome }
type GpfDeviceLogRestoreResponse struct {
	RestoreOutcomes []RestoreOutcome `json:"restoreOutcomes"`
	DERLengths      []string         `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into p.
func (p *GpfDeviceLogRestoreResponse) Unmarshal(b []byte) error {
	const name = "GpfDeviceLogRestoreResponse"
	*p = GpfDeviceLogRestoreResponse{}
	return decodeTop(b, name, tagSequence, &p.DERLengths, func(s *reader) error {
		l, der81, err := s.next(name+".restoreOutcomes", tagSequence)
		if err != nil {
			return err
		}
		record(&p.DERLengths, der81, "restoreOutcomes")
		p.RestoreOutcomes = []RestoreOutcome{}
		for !l.empty() {
			o, _, err := l.next("RestoreOutcome", tagSequence)
			if err != nil {
				return err
			}
			var ro RestoreOutcome
			if err := ro.DeviceLogEntry.decode(&o); err != nil {
				return err
			}
			v, err := o.int("RestoreOutcome.joinResponseCode", tagInteger)
			if err != nil {
				return err
			}
			ro.JoinResponseCode = JoinDeviceResponse(v)
			if err := o.done("RestoreOutcome"); err != nil {
				return err
			}
			p.RestoreOutcomes = append(p.RestoreOutcomes, ro)
		}
		return nil
	})
}

// Marshal encodes the payload.
func (p *GpfDeviceLogRestoreResponse) Marshal() ([]byte, error) {
	const name = "GpfDeviceLogRestoreResponse"
	var e encoder
	e.tlv(name, tagSequence, has(p.DERLengths, self), func() {
		e.tlv(name+".restoreOutcomes", tagSequence, has(p.DERLengths, "restoreOutcomes"), func() {
			for i := range p.RestoreOutcomes {
				o := &p.RestoreOutcomes[i]
				e.tlv("RestoreOutcome", tagSequence, false, func() {
					o.DeviceLogEntry.encode(&e)
					e.int(tagInteger, int64(o.JoinResponseCode))
				})
			}
		})
	})
	return e.finish()
}

// GpfDeviceLogBackupAlert is the GCS62 Backup GPF Device Log alert payload
// (0x00B2):
//
//	GpfDeviceLogBackupAlert ::= SEQUENCE {
//	    alertCode AlertCode, backupDateTime GeneralizedTime,
//	    deviceLogEntries SEQUENCE OF DeviceLogEntry }
type GpfDeviceLogBackupAlert struct {
	AlertCode        AlertCode        `json:"alertCode"`
	BackupDateTime   GeneralizedTime  `json:"backupDateTime"`
	DeviceLogEntries []DeviceLogEntry `json:"deviceLogEntries"`
	DERLengths       []string         `json:"derLengths,omitempty"`
}

// Unmarshal decodes b, which must hold exactly one payload, into a.
func (a *GpfDeviceLogBackupAlert) Unmarshal(b []byte) error {
	const name = "GpfDeviceLogBackupAlert"
	*a = GpfDeviceLogBackupAlert{}
	return decodeTop(b, name, tagSequence, &a.DERLengths, func(s *reader) error {
		code, err := s.int(name+".alertCode", tagInteger)
		if err != nil {
			return err
		}
		a.AlertCode = AlertCode(code)
		if a.BackupDateTime, err = s.time(name + ".backupDateTime"); err != nil {
			return err
		}
		var der81 bool
		a.DeviceLogEntries, der81, err = decodeDeviceLog(s, name+".deviceLogEntries")
		record(&a.DERLengths, der81, "deviceLogEntries")
		return err
	})
}

// Marshal encodes the payload.
func (a *GpfDeviceLogBackupAlert) Marshal() ([]byte, error) {
	const name = "GpfDeviceLogBackupAlert"
	var e encoder
	e.tlv(name, tagSequence, has(a.DERLengths, self), func() {
		e.int(tagInteger, int64(a.AlertCode))
		e.time(name+".backupDateTime", a.BackupDateTime)
		encodeDeviceLog(&e, name+".deviceLogEntries", has(a.DERLengths, "deviceLogEntries"), a.DeviceLogEntries)
	})
	return e.finish()
}
