package commands

import (
	"bytes"
	"crypto/x509"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

type cs02Codec struct {
	name  string
	value interface{ Marshal() ([]byte, error) }
	parse func([]byte) (any, error)
}

func cs02Samples(t testing.TB) []cs02Codec {
	cert := testCertDER(t)
	return []cs02Codec{
		{"CS02a command, all roles", &ProvideCredentials{},
			func(b []byte) (any, error) { return ParseProvideCredentials(b) }},
		{"CS02a command, two roles", &ProvideCredentials{Roles: []smki.Role{smki.RoleSupplier, smki.RoleAccessControlBroker}},
			func(b []byte) (any, error) { return ParseProvideCredentials(b) }},
		{"CS02a response", &CredentialsDetails{Roles: []RoleAnchors{
			{Role: smki.RoleRoot, Status: StatusSuccess, Sequence: 0, Cells: []TrustAnchorCell{{KeyUsage: x509.KeyUsageCertSign, Usage: CellManagement, Subject: testACB, SubjectKeyID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}}},
			{Role: smki.RoleSupplier, Status: StatusSuccess, Sequence: 1 << 40, Cells: []TrustAnchorCell{
				{KeyUsage: x509.KeyUsageDigitalSignature, Usage: CellManagement, Subject: testSupplier, SubjectKeyID: [8]byte{9}},
				{KeyUsage: x509.KeyUsageKeyAgreement, Usage: CellManagement, Subject: testSupplier, SubjectKeyID: [8]byte{10}},
				{KeyUsage: x509.KeyUsageKeyAgreement, Usage: CellPrepaymentTopUp, Subject: testSupplier, SubjectKeyID: [8]byte{11}}}},
			{Role: smki.RoleWANProvider, Status: StatusTrustAnchorNotFound, Sequence: 3},
		}}, func(b []byte) (any, error) { return ParseCredentialsDetails(b) }},
		{"CS02b supplierByTransCoS with execution time", &UpdateCredentials{
			Control:           AuthorisingControl{Mode: SupplierByTransCoS, AuthorisingSequence: 7, FloorSequence: 8},
			Replacements:      []Replacement{{Certificate: cert, Target: CellID{Role: smki.RoleSupplier, KeyUsage: x509.KeyUsageDigitalSignature, Usage: CellManagement}}, {Certificate: cert, Target: CellID{Role: smki.RoleSupplier, KeyUsage: x509.KeyUsageKeyAgreement, Usage: CellPrepaymentTopUp}}},
			CertificationPath: [][]byte{cert, cert},
			ExecutionTime:     time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC),
		}, func(b []byte) (any, error) { return ParseUpdateCredentials(b) }},
		{"CS02b rootBySupplier without path", &UpdateCredentials{
			Control:      AuthorisingControl{Mode: RootBySupplier, AuthorisingSequence: 1, FloorSequence: 1},
			Replacements: []Replacement{{Certificate: cert, Target: CellID{Role: smki.RoleRoot, KeyUsage: x509.KeyUsageCertSign, Usage: CellManagement}}},
		}, func(b []byte) (any, error) { return ParseUpdateCredentials(b) }},
		{"CS02b response", &UpdateCredentialsResponse{Status: StatusBadCertificate, Results: []CellResult{
			{Target: CellID{Role: smki.RoleSupplier, KeyUsage: x509.KeyUsageDigitalSignature}, Status: StatusSuccess},
			{Target: CellID{Role: smki.RoleSupplier, KeyUsage: x509.KeyUsageKeyAgreement, Usage: CellPrepaymentTopUp}, Status: StatusBadCertificate}}},
			func(b []byte) (any, error) { return ParseUpdateCredentialsResponse(b) }},
		{"CS02c command", &IssueCredentials{KeyUsage: x509.KeyUsageKeyAgreement},
			func(b []byte) (any, error) { return ParseIssueCredentials(b) }},
		{"CS02c response with CSR", &IssueCredentialsResponse{Status: StatusSuccess, CSR: cert},
			func(b []byte) (any, error) { return ParseIssueCredentialsResponse(b) }},
		{"CS02c response busy", &IssueCredentialsResponse{Status: StatusResourcesBusy},
			func(b []byte) (any, error) { return ParseIssueCredentialsResponse(b) }},
		{"CS02d command", &UpdateDeviceCertificate{Certificate: cert},
			func(b []byte) (any, error) { return ParseUpdateDeviceCertificate(b) }},
		{"CS02d response", &UpdateDeviceCertificateResponse{Status: StatusInsufficientMemory},
			func(b []byte) (any, error) { return ParseUpdateDeviceCertificateResponse(b) }},
	}
}

func TestCS02RoundTrip(t *testing.T) {
	for _, c := range cs02Samples(t) {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.value.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := c.parse(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, c.value) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, c.value)
			}
			b2, err := got.(interface{ Marshal() ([]byte, error) }).Marshal()
			if err != nil || !bytes.Equal(b, b2) {
				t.Errorf("rebuilt bytes differ: %X vs %X (%v)", b, b2, err)
			}
			for i := range b {
				if _, err := c.parse(b[:i]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("truncated to %d bytes: error %v, want ErrMalformed", i, err)
				}
			}
			if _, err := c.parse(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
				t.Errorf("trailing byte: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestReplacementModes(t *testing.T) {
	for m := RootBySupplier; m <= AnyByContingency; m++ {
		t.Run(m.String(), func(t *testing.T) {
			code := m.MessageCode()
			back, ok := ReplacementModeOf(code)
			if !ok || back != m {
				t.Errorf("ReplacementModeOf(%s) = %v, %t", code, back, ok)
			}
			u, ok := LookupCode(code)
			// Table E: every CS02b command of the reference data is signed
			// but accessControlBrokerByACB's (0x0104), which is MAC'd only.
			if !ok || u.Name != "CS02b" || u.Critical() == (m == AccessControlBrokerByACB) {
				t.Errorf("catalogue has %+v for %s", u, code)
			}
			if want := "Update Security Credentials (" + m.String() + ")"; u.Title != want {
				t.Errorf("title %q, want %q", u.Title, want)
			}
		})
	}
	if _, ok := ReplacementModeOf(0x010A); ok {
		t.Error("0x010A accepted as a replacement mode")
	}
	if ReplacementMode(10).Valid() || Status(1).Valid() {
		t.Error("invalid values reported valid")
	}
}

func TestCS02Errors(t *testing.T) {
	cert := testCertDER(t)
	bad := []struct {
		name  string
		value interface{ Marshal() ([]byte, error) }
	}{
		{"bad mode", &UpdateCredentials{Control: AuthorisingControl{Mode: 10}, Replacements: []Replacement{{Certificate: cert}}}},
		{"no replacement", &UpdateCredentials{}},
		{"replacement certificate not DER", &UpdateCredentials{Replacements: []Replacement{{Certificate: []byte{1}, Target: CellID{KeyUsage: x509.KeyUsageDigitalSignature}}}}},
		{"empty key usage", &IssueCredentials{}},
		{"bad status", &UpdateDeviceCertificateResponse{Status: 3}},
		{"bad role status", &CredentialsDetails{Roles: []RoleAnchors{{Status: 4}}}},
		{"CSR not DER", &IssueCredentialsResponse{CSR: []byte{0x30}}},
	}
	for _, tt := range bad {
		t.Run("Marshal "+tt.name, func(t *testing.T) {
			if _, err := tt.value.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v, want ErrInvalid", err)
			}
		})
	}
	parse := []struct {
		name  string
		in    []byte
		parse func([]byte) error
		field string
	}{
		{"unknown role", []byte{0x30, 0x03, 0x02, 0x01, 0x09}, func(b []byte) error { _, err := ParseProvideCredentials(b); return err }, "cs02a-command.roles.role"},
		{"negative role", []byte{0x30, 0x03, 0x02, 0x01, 0xFF}, func(b []byte) error { _, err := ParseProvideCredentials(b); return err }, "cs02a-command.roles.role"},
		{"unknown status", []byte{0x30, 0x03, 0x0A, 0x01, 0x02}, func(b []byte) error { _, err := ParseUpdateDeviceCertificateResponse(b); return err }, "cs02d-response.status"},
		{"key usage not minimal", []byte{0x30, 0x04, 0x03, 0x02, 0x00, 0x08}, func(b []byte) error { _, err := ParseIssueCredentials(b); return err }, "cs02c.key-usage"},
		{"key usage unused bit set", []byte{0x30, 0x04, 0x03, 0x02, 0x03, 0x09}, func(b []byte) error { _, err := ParseIssueCredentials(b); return err }, "cs02c.key-usage"},
		{"mode out of range", []byte{0x30, 0x0D, 0x30, 0x09, 0x0A, 0x01, 0x0A, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x30, 0x00}, func(b []byte) error { _, err := ParseUpdateCredentials(b); return err }, "cs02b.authorising-party-control.replacement-mode"},
		{"no replacements", []byte{0x30, 0x0F, 0x30, 0x09, 0x0A, 0x01, 0x02, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00}, func(b []byte) error { _, err := ParseUpdateCredentials(b); return err }, "cs02b.replacements"},
	}
	for _, tt := range parse {
		t.Run("parse "+tt.name, func(t *testing.T) {
			err := tt.parse(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want *ParseError", err)
			}
			if pe.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", pe.Field, tt.field, err)
			}
		})
	}
}

// FuzzCS02 feeds every CS02 parser the same bytes; none may panic, and what
// one accepts must rebuild to the same bytes.
func FuzzCS02(f *testing.F) {
	for _, c := range cs02Samples(f) {
		b, err := c.value.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parsers := []func([]byte) (interface{ Marshal() ([]byte, error) }, error){
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) { return ParseProvideCredentials(b) },
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) { return ParseCredentialsDetails(b) },
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) { return ParseUpdateCredentials(b) },
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) {
				return ParseUpdateCredentialsResponse(b)
			},
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) { return ParseIssueCredentials(b) },
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) {
				return ParseIssueCredentialsResponse(b)
			},
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) { return ParseUpdateDeviceCertificate(b) },
			func(b []byte) (interface{ Marshal() ([]byte, error) }, error) {
				return ParseUpdateDeviceCertificateResponse(b)
			},
		}
		for i, p := range parsers {
			v, err := p(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("parser %d: error %v does not wrap ErrMalformed", i, err)
				}
				continue
			}
			out, err := v.Marshal()
			if err != nil {
				t.Fatalf("parser %d accepted what it cannot rebuild: %v", i, err)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("parser %d: rebuilt %X from %X", i, out, b)
			}
		}
	})
}

func TestDecodePayload(t *testing.T) {
	cert := testCertDER(t)
	upd := &UpdateCredentials{Control: AuthorisingControl{Mode: SupplierBySupplier, AuthorisingSequence: 2, FloorSequence: 2},
		Replacements: []Replacement{{Certificate: cert, Target: CellID{Role: smki.RoleSupplier, KeyUsage: x509.KeyUsageDigitalSignature}}}}
	updDER, _ := upd.Marshal()
	resp, _ := (&UpdateCredentialsResponse{Status: StatusSuccess}).Marshal()
	prov, _ := (&ProvideCredentials{}).Marshal()
	det, _ := (&CredentialsDetails{}).Marshal()
	iss, _ := (&IssueCredentials{KeyUsage: x509.KeyUsageKeyAgreement}).Marshal()
	issR, _ := (&IssueCredentialsResponse{Status: StatusResourcesBusy}).Marshal()
	inst, _ := (&UpdateDeviceCertificate{Certificate: cert}).Marshal()
	instR, _ := (&UpdateDeviceCertificateResponse{Status: StatusSuccess}).Marshal()
	tests := []struct {
		name    string
		cra     CRA
		code    MessageCode
		payload []byte
		want    any
		err     bool
	}{
		{"CS02b command", Command, 0x0102, updDER, &UpdateCredentials{}, false},
		{"CS02b command, code disagrees with mode", Command, 0x0107, updDER, nil, true},
		{"CS02b response", Response, 0x0102, resp, &UpdateCredentialsResponse{}, false},
		{"CS02a command", Command, CodeCS02a, prov, &ProvideCredentials{}, false},
		{"CS02a response", Response, CodeCS02a, det, &CredentialsDetails{}, false},
		{"CS02c command", Command, CodeCS02c, iss, &IssueCredentials{}, false},
		{"CS02c response", Response, CodeCS02c, issR, &IssueCredentialsResponse{}, false},
		{"CS02d command", Command, CodeCS02d, inst, &UpdateDeviceCertificate{}, false},
		{"CS02d response", Response, CodeCS02d, instR, &UpdateDeviceCertificateResponse{}, false},
		{"CS02d garbage", Command, CodeCS02d, []byte{1}, nil, true},
		{"other use case", Command, 0x00B3, []byte{1}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{CRA: tt.cra, Code: tt.code, Payload: tt.payload}
			got, err := DecodePayload(m)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %t", err, tt.err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(tt.want) {
				t.Errorf("decoded %T, want %T", got, tt.want)
			}
		})
	}
}
