package asn

import (
	"bytes"
	"fmt"
	"testing"
)

// toDER81 rewrites every length of 128 to 255 written 82 00 xx in a TLV
// tree into the strict DER form 81 xx, recursing into constructed
// elements. It stands for a payload written by an ordinary DER encoder.
func toDER81(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out []byte
	for len(b) > 0 {
		tag := b[0]
		n, hdr, _, err := readLength(b[1:], "test", 0)
		if err != nil || 1+hdr+n > len(b) {
			tb.Fatalf("toDER81: bad TLV %x: %v", b, err)
		}
		content := b[1+hdr : 1+hdr+n]
		if tag&0x20 != 0 {
			content = toDER81(tb, content)
		}
		out = append(out, tag)
		switch {
		case len(content) < 128:
			out = append(out, byte(len(content)))
		case len(content) < 256:
			out = append(out, 0x81, byte(len(content)))
		default:
			out = append(out, 0x82, byte(len(content)>>8), byte(len(content)))
		}
		out = append(out, content...)
		b = b[1+hdr+n:]
	}
	return out
}

// longValues have fields long enough for lengths of 128 to 255 in places
// the vectors do not reach.
func longValues() map[string]struct {
	code uint16
	cra  CRA
	p    Payload
} {
	spec := make([]SpecialistSeqNumber, 30)
	changes := []RemotePartySeqNumberChange{{RemotePartyRole: RoleSupplier, SpecialistFloorSeqNumber: spec}}
	log := make([]DeviceLogEntry, 14)
	return map[string]struct {
		code uint16
		cra  CRA
		p    Payload
	}{
		"CS02b command": {0x0102, Command, &UpdateSecurityCredentialsCommand{
			AuthorisingRemotePartyControl: AuthorisingRemotePartyControl{
				CredentialsReplacementMode:             SupplierBySupplier,
				PlaintextSymmetricKey:                  bytes.Repeat([]byte{0xAB}, 200),
				AuthorisingRemotePartySeqNumber:        -5,
				NewRemotePartySpecialistFloorSeqNumber: spec,
				OtherRemotePartySeqNumberChanges:       changes,
			},
			Replacements: []TrustAnchorReplacement{}, CertificationPathCertificates: []Certificate{}}},
		"CS08 response":  {0x0129, Response, &CS08Response{FirmwareVersion: bytes.Repeat([]byte{1}, 150)}},
		"CS08 alert":     {0x0129, Alert, &CS08Alert{FirmwareVersion: bytes.Repeat([]byte{1}, 140)}},
		"CS06 alert":     {0x00CA, Alert, &ActivateFirmwareAlert{ExecutionOutcome: ActivateFirmwareOutcome{FirmwareVersion: make(Octets, 128)}}},
		"CCS08 alert":    {0x0128, Alert, &FirmwareTransferAlert{EntityID: make(Octets, 130), FirmwareVersion: make(Octets, 129)}},
		"CS07 response":  {0x0013, Response, &ReadDeviceJoinDetailsResponse{DeviceLogEntries: log}},
		"GCS59 command":  {0x008C, Command, &GpfDeviceLogRestoreCommand{DeviceLogEntries: log}},
		"GCS59 response": {0x008C, Response, &GpfDeviceLogRestoreResponse{RestoreOutcomes: make([]RestoreOutcome, 10)}},
		"CS02a response": {0x0008, Response, &ProvideSecurityCredentialDetailsResponse{RemotePartyDetails: []RemotePartyDetails{{TrustAnchorCellDetails: make([]TrustAnchorCellContents, 5)}}}},
		"CS02a command":  {0x0008, Command, &ProvideSecurityCredentialDetailsCommand{RemotePartyRolesCredentialsRequired: make([]RemotePartyRole, 50)}},
	}
}

// TestDERLengthForms checks that payloads whose 128..255 lengths are in
// strict DER form 81 xx decode and re-encode unchanged (the form is
// recorded), while values built in Go use 82 00 xx.
func TestDERLengthForms(t *testing.T) {
	type input struct {
		code uint16
		cra  CRA
		b    []byte
	}
	inputs := map[string]input{}
	for _, v := range loadVectors(t) {
		inputs[v.File] = input{v.Code, v.CRA, unhex(t, v.PayloadHex)}
	}
	for name, v := range loadHandmade(t) {
		inputs[name] = input{v.Code, v.CRA, unhex(t, v.Hex)}
	}
	for name, v := range longValues() {
		b, err := v.p.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Contains(b, []byte{0x82, 0x00}) {
			t.Fatalf("%s: no 82 00 xx length in %x", name, b)
		}
		inputs[name] = input{v.code, v.cra, b}
	}
	rewritten := 0
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			checkRoundTrip(t, in.code, in.cra, in.b)
			der := toDER81(t, in.b)
			if !bytes.Equal(der, in.b) {
				rewritten++
			}
			checkRoundTrip(t, in.code, in.cra, der)
		})
	}
	if rewritten < 15 {
		t.Errorf("only %d inputs had a length to rewrite", rewritten)
	}
}

func TestIntegers(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 255, 256, -1, -128, -129, 0x8F66, 1<<63 - 1, -1 << 63} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			var e encoder
			e.int(tagInteger, v)
			r := reader{b: e.b}
			got, err := r.int("x", tagInteger)
			if err != nil || got != v || !r.empty() {
				t.Errorf("%x decodes to %d, %v", e.b, got, err)
			}
		})
	}
	var e encoder
	e.int(tagInteger, 0x8F66)
	if !bytes.Equal(e.b, []byte{0x02, 0x03, 0x00, 0x8F, 0x66}) {
		t.Errorf("0x8F66 encodes as %x, want 0203008f66 (gbcs-payloads.md 3.1)", e.b)
	}
	for _, v := range []uint64{0, 0x7F, 0x80, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
		var e encoder
		e.uint(v)
		r := reader{b: e.b}
		if got, err := r.uint("x"); err != nil || got != v {
			t.Errorf("%x decodes to %d, %v", e.b, got, err)
		}
	}
}

func TestKeyUsageForms(t *testing.T) {
	for _, tc := range []struct {
		ku   KeyUsage
		want string
	}{
		{NewKeyUsage(DigitalSignature), "03020780"},
		{NewKeyUsage(KeyAgreement), "03020308"},
		{NewKeyUsage(KeyCertSign), "03020204"},
		{NewKeyUsage(KeyCertSign, CRLSign), "03020106"},
		{NewKeyUsage(), "030100"},
		{NewKeyUsage(8), "0303070080"},
	} {
		var e encoder
		e.keyUsage("k", tc.ku)
		if got := hexString(e.b); got != tc.want {
			t.Errorf("%v encodes as %s, want %s", tc.ku, got, tc.want)
		}
	}
	// A non-minimal BIT STRING (trailing zero bits kept) round-trips as it
	// came and still reads as digitalSignature.
	r := reader{b: unhex(t, "0303008000")}
	k, err := r.keyUsage("k")
	if err != nil || !k.Only(DigitalSignature) || k.Unused() != 0 || k.Len() != 2 {
		t.Fatalf("keyUsage = %v (unused %d, len %d), %v", k, k.Unused(), k.Len(), err)
	}
	var e encoder
	e.keyUsage("k", k)
	if hexString(e.b) != "0303008000" {
		t.Errorf("re-encoded %x", e.b)
	}
	if KeyUsageFromX509(k.X509()) != NewKeyUsage(DigitalSignature) {
		t.Error("KeyUsageFromX509 is not minimal")
	}
}
