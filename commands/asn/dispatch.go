package asn

import "fmt"

// Payload is implemented by a pointer to each payload type of the package.
type Payload interface {
	// Marshal encodes the payload. It fails, with an error wrapping
	// ErrInvalid, only when a field cannot be encoded.
	Marshal() ([]byte, error)
	// Unmarshal replaces the value with the payload decoded from b, which
	// must be exactly one payload of this type. The value keeps no reference
	// to b. A decoded value encodes back to b byte for byte.
	Unmarshal(b []byte) error
}

// Parse decodes b as a payload of type T:
//
//	cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](payload)
func Parse[T any, P interface {
	*T
	Payload
}](b []byte) (*T, error) {
	v := P(new(T))
	if err := v.Unmarshal(b); err != nil {
		return nil, err
	}
	return (*T)(v), nil
}

// CRA is the command, response or alert flag of a GBCS message, the first
// byte of its transaction id.
type CRA uint8

// The CRA flag values.
const (
	Command  CRA = 1
	Response CRA = 2
	Alert    CRA = 3
)

// String returns "command", "response" or "alert", or the number.
func (c CRA) String() string {
	switch c {
	case Command:
		return "command"
	case Response:
		return "response"
	case Alert:
		return "alert"
	}
	return fmt.Sprintf("CRA(%d)", uint8(c))
}

// kinds holds, for one message code, the constructors of its command,
// response and alert payloads (nil where the code has none here).
type kinds [3]func() Payload

func cr(c, r func() Payload) kinds { return kinds{c, r, nil} }
func alert(a func() Payload) kinds { return kinds{nil, nil, a} }

func ctor[T any, P interface {
	*T
	Payload
}]() func() Payload {
	return func() Payload { return P(new(T)) }
}

var (
	cs02a = cr(ctor[ProvideSecurityCredentialDetailsCommand](), ctor[ProvideSecurityCredentialDetailsResponse]())
	cs02b = cr(ctor[UpdateSecurityCredentialsCommand](), ctor[UpdateSecurityCredentialsResponse]())
	cs03  = cr(ctor[JoinDeviceCommand](), ctor[JoinDeviceResponse]())
	cs04  = cr(ctor[UnjoinDeviceCommand](), ctor[UnjoinDeviceResponse]())
)

// byCode maps each message code with an ASN.1 payload (gbcs-payloads.md
// sections 3 and 9) to its payload types.
var byCode = map[uint16]kinds{
	0x0008: cs02a,                                                                                 // CS02a
	0x011B: cs02a,                                                                                 // CS02f
	0x000A: cr(ctor[IssueSecurityCredentialsCommand](), ctor[IssueSecurityCredentialsResponse]()), // CS02c
	0x000B: cr(ctor[UpdateDeviceCertificateCommand](), ctor[UpdateDeviceCertificateResponse]()),   // CS02d
	0x000C: cr(ctor[ProvideDeviceCertificateCommand](), ctor[ProvideDeviceCertificateResponse]()), // CS02e
	0x0100: cs02b, 0x0101: cs02b, 0x0102: cs02b, 0x0103: cs02b, 0x0104: cs02b,                     // CS02b
	0x0105: cs02b, 0x0106: cs02b, 0x0107: cs02b, 0x0108: cs02b, 0x0109: cs02b, // CS02b
	0x0125: cs02b, 0x0126: cs02b, // CS02g
	0x00CB: alert(ctor[UpdateSecurityCredentialsAlert]()),  // CS02b alert
	0x0124: alert(ctor[UpdateSecurityCredentialsAlert]()),  // CS02g alert
	0x000D: cs03, 0x00AB: cs03, 0x000E: cs03, 0x00AF: cs03, // CS03A1, CS03A2, CS03B, CS03C
	0x000F: cs04, 0x0010: cs04, // CS04AC, CS04B
	0x0012: cr(ctor[ActivateFirmwareCommand](), ctor[ActivateFirmwareResponse]()),           // CS06
	0x00CA: alert(ctor[ActivateFirmwareAlert]()),                                            // CS06 alert
	0x0013: cr(ctor[ReadDeviceJoinDetailsCommand](), ctor[ReadDeviceJoinDetailsResponse]()), // CS07
	0x0129: {ctor[CS08Command](), ctor[CS08Response](), ctor[CS08Alert]()},                  // CS08
	0x012B: alert(ctor[CS08Alert]()),                                                        // CS09 alert
	0x0128: alert(ctor[FirmwareTransferAlert]()),                                            // CCS08 alert
	0x007F: cr(ctor[SetTimeCommand](), ctor[SetTimeResponse]()),                             // GCS28
	0x008C: cr(ctor[GpfDeviceLogRestoreCommand](), ctor[GpfDeviceLogRestoreResponse]()),     // GCS59
	0x00B2: alert(ctor[GpfDeviceLogBackupAlert]()),                                          // GCS62 alert
}

// New returns a new zero value of the payload type of the message with this
// code and CRA flag, for json.Unmarshal or Unmarshal to fill. It returns an
// error wrapping ErrNotASN1 when that message has no ASN.1 payload here.
func New(code uint16, cra CRA) (Payload, error) {
	if cra >= Command && cra <= Alert {
		if f := byCode[code][cra-1]; f != nil {
			return f(), nil
		}
	}
	return nil, fmt.Errorf("%w: 0x%04X %v", ErrNotASN1, code, cra)
}

// Has reports whether the message with this code and CRA flag has one of
// the package's ASN.1 payloads.
func Has(code uint16, cra CRA) bool {
	return cra >= Command && cra <= Alert && byCode[code][cra-1] != nil
}

// Decode decodes the payload of the message with this code and CRA flag.
// The result is a pointer to the payload type, such as
// *UpdateSecurityCredentialsCommand. It returns an error wrapping ErrNotASN1
// when the message has no ASN.1 payload here, and one wrapping ErrMalformed
// when b is not a valid payload.
func Decode(code uint16, cra CRA, b []byte) (Payload, error) {
	p, err := New(code, cra)
	if err != nil {
		return nil, err
	}
	if err := p.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("decoding the payload of 0x%04X %v: %w", code, cra, err)
	}
	return p, nil
}

// Encode encodes any payload of the package; it is p.Marshal().
func Encode(p Payload) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil payload", ErrInvalid)
	}
	return p.Marshal()
}
