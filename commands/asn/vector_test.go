package asn

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// vector is one entry of testdata/vectors.json: a payload cut out of a
// constructed message of shared/spec/vectors/constructed and the tree the
// independent decoder read from it (see the file's "source").
type vector struct {
	File           string `json:"file"`
	Code           uint16 `json:"code"`
	CRA            CRA    `json:"cra"`
	Description    string `json:"description"`
	PayloadHex     string `json:"payload_hex"`
	DecodedPayload any    `json:"decoded_payload"`
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Vectors) != 12 {
		tb.Fatalf("testdata/vectors.json holds %d vectors, want 12", len(f.Vectors))
	}
	return f.Vectors
}

func vectorByPrefix(tb testing.TB, prefix string) vector {
	tb.Helper()
	for _, v := range loadVectors(tb) {
		if strings.HasPrefix(v.File, prefix) {
			return v
		}
	}
	tb.Fatalf("no vector %s", prefix)
	return vector{}
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkRoundTrip decodes b as the payload of (code, cra) and checks the
// exact round trip directly and through JSON. It returns the decoded value
// and its JSON.
func checkRoundTrip(t *testing.T, code uint16, cra CRA, b []byte) (Payload, []byte) {
	t.Helper()
	p, err := Decode(code, cra, b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	out, err := Encode(p)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("re-encoding changed the bytes:\nhave %x\nwant %x", out, b)
	}
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	q, err := New(code, cra)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, q); err != nil {
		t.Fatalf("json.Unmarshal: %v\n%s", err, j)
	}
	if !reflect.DeepEqual(p, q) {
		t.Errorf("JSON round trip changed the value:\nhave %#v\nwant %#v", q, p)
	}
	out, err = Encode(q)
	if err != nil {
		t.Fatalf("Encode after JSON: %v", err)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("re-encoding after JSON changed the bytes:\nhave %x\nwant %x", out, b)
	}
	return p, j
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			_, j := checkRoundTrip(t, v.Code, v.CRA, unhex(t, v.PayloadHex))
			var mine any
			if err := json.Unmarshal(j, &mine); err != nil {
				t.Fatal(err)
			}
			if err := sameTree("payload", v.DecodedPayload, mine); err != nil {
				t.Errorf("differs from the independent decoder's tree: %v\nours: %s", err, j)
			}
		})
	}
}

// sameTree checks that every field of the independent decoder's tree theirs
// has the same value in our JSON tree mine. Our tree may add fields (names,
// recorded encodings). Its conventions differ from ours in three ways, which
// sameTree bridges: a CHOICE is {"choice": name, "value": v} there and
// {name: v} here; an enumerated number is bare there and {"value": n, ...}
// here; a top-level SEQUENCE OF is a bare list there and a struct with one
// list field here.
func sameTree(path string, theirs, mine any) error {
	if m, ok := mine.(map[string]any); ok {
		if v, ok := m["value"]; ok {
			if _, isNum := theirs.(float64); isNum {
				mine = v
			}
		}
	}
	switch th := theirs.(type) {
	case map[string]any:
		m, ok := mine.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, have %v", path, mine)
		}
		if c, ok := th["choice"].(string); ok && len(th) == 2 {
			return sameTree(path+"."+c, th["value"], m[c])
		}
		keys := make([]string, 0, len(th))
		for k := range th {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			mv, ok := m[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if err := sameTree(path+"."+k, th[k], mv); err != nil {
				return err
			}
		}
		return nil
	case []any:
		if m, ok := mine.(map[string]any); ok {
			var lists []any
			for k, v := range m {
				if _, ok := v.([]any); ok && k != "derLengths" {
					lists = append(lists, v)
				}
			}
			if len(lists) != 1 {
				return fmt.Errorf("%s: want a list, have %v", path, mine)
			}
			mine = lists[0]
		}
		ml, ok := mine.([]any)
		if !ok || len(ml) != len(th) {
			return fmt.Errorf("%s: want a list of %d, have %v", path, len(th), mine)
		}
		for i := range th {
			if err := sameTree(fmt.Sprintf("%s[%d]", path, i), th[i], ml[i]); err != nil {
				return err
			}
		}
		return nil
	default:
		if !reflect.DeepEqual(theirs, mine) {
			return fmt.Errorf("%s: want %v, have %v", path, theirs, mine)
		}
		return nil
	}
}

// rawAt digs a certificate's DER out of the independent decoder's tree, so
// the typed values below can carry the vectors' certificates.
func rawAt(tb testing.TB, tree any, path ...any) Octets {
	tb.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			tree = tree.(map[string]any)[k]
		case int:
			tree = tree.([]any)[k]
		}
	}
	return unhex(tb, tree.(map[string]any)["raw"].(string))
}

func ptr[T any](v T) *T { return &v }

var (
	ds       = NewKeyUsage(DigitalSignature)
	ka       = NewKeyUsage(KeyAgreement)
	supplier = EntityID{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x01}
	gaining  = EntityID{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x02}
	acb      = EntityID{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x00, 0x00, 0x02}
	tcos     = EntityID{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x00, 0x00, 0x05}
	netop    = EntityID{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0x00, 0x01}
)

func keyID(tb testing.TB, s string) KeyID {
	var k KeyID
	if err := k.UnmarshalText([]byte(s)); err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestVectorsFromGo builds each vector's payload from typed Go values, as a
// device or a remote party would, and compares the bytes.
func TestVectorsFromGo(t *testing.T) {
	supplierFloor := []RemotePartySeqNumberChange{{
		RemotePartyRole: RoleSupplier, FloorSeqNumber: 0,
		SpecialistFloorSeqNumber: []SpecialistSeqNumber{{SeqNumberUsage: SeqNumberPrepaymentTopUp, SeqNumber: 0}},
	}}
	build := map[string]func(tree any) Payload{
		"11": func(tree any) Payload {
			return &UpdateSecurityCredentialsCommand{
				AuthorisingRemotePartyControl: AuthorisingRemotePartyControl{
					CredentialsReplacementMode:             SupplierByTransCoS,
					AuthorisingRemotePartyTACellIdentifier: ptr(Cell(RoleTransitionalCoS, DigitalSignature, CellManagement)),
					AuthorisingRemotePartySeqNumber:        12,
					OtherRemotePartySeqNumberChanges:       supplierFloor,
				},
				Replacements: []TrustAnchorReplacement{
					{ReplacementCertificate: Certificate{rawAt(t, tree, "replacements", 0, "replacementCertificate")},
						TargetTrustAnchorCell: Cell(RoleSupplier, DigitalSignature, CellManagement)},
					{ReplacementCertificate: Certificate{rawAt(t, tree, "replacements", 1, "replacementCertificate")},
						TargetTrustAnchorCell: Cell(RoleSupplier, KeyAgreement, CellManagement)},
					{ReplacementCertificate: Certificate{rawAt(t, tree, "replacements", 2, "replacementCertificate")},
						TargetTrustAnchorCell: Cell(RoleSupplier, KeyAgreement, CellPrePaymentTopUp)},
				},
				CertificationPathCertificates: []Certificate{{rawAt(t, tree, "certificationPathCertificates", 0)}},
			}
		},
		"12": func(any) Payload {
			o := ExecutionOutcome{
				AuthorisingRemotePartySeqNumber: 12, CredentialsReplacementMode: SupplierByTransCoS,
				RemotePartySeqNumberChanges: supplierFloor,
				ReplacementOutcomes: []ReplacementOutcome{
					{Cell(RoleSupplier, DigitalSignature, CellManagement), StatusSuccess,
						supplier, keyID(t, "469baf4d9c773750"), gaining, keyID(t, "41240b3af4e70be0")},
					{Cell(RoleSupplier, KeyAgreement, CellManagement), StatusSuccess,
						supplier, keyID(t, "4f300b539053c6e1"), gaining, keyID(t, "4f89556085e0852e")},
					{Cell(RoleSupplier, KeyAgreement, CellPrePaymentTopUp), StatusSuccess,
						supplier, keyID(t, "4e6bd99550d5bf5f"), gaining, keyID(t, "4b5884d4e3fe1a40")},
				},
			}
			return &UpdateSecurityCredentialsResponse{ExecutionOutcome: &o}
		},
		"13": func(any) Payload {
			return &ProvideSecurityCredentialDetailsCommand{
				AuthorisingRemotePartyTACellIdentifier: Cell(RoleAccessControlBroker, KeyAgreement, CellManagement),
				RemotePartyRolesCredentialsRequired:    []RemotePartyRole{RoleSupplier, RoleNetworkOperator},
			}
		},
		"14": func(any) Payload {
			return &ProvideSecurityCredentialDetailsResponse{RemotePartyDetails: []RemotePartyDetails{
				{RemotePartyRole: RoleSupplier, StatusCode: StatusSuccess, CurrentSeqNumber: ptr(SeqNumber(5)),
					TrustAnchorCellDetails: []TrustAnchorCellContents{
						{KeyUsage: ds, SubjectUniqueID: supplier, SubjectKeyIdentifier: keyID(t, "469baf4d9c773750")},
						{KeyUsage: ka, SubjectUniqueID: supplier, SubjectKeyIdentifier: keyID(t, "4f300b539053c6e1")},
						{KeyUsage: ka, CellUsage: CellPrePaymentTopUp, SubjectUniqueID: supplier,
							SubjectKeyIdentifier: keyID(t, "4e6bd99550d5bf5f")},
					}},
				{RemotePartyRole: RoleNetworkOperator, StatusCode: StatusSuccess, CurrentSeqNumber: ptr(SeqNumber(1)),
					TrustAnchorCellDetails: []TrustAnchorCellContents{
						{KeyUsage: ds, SubjectUniqueID: netop, SubjectKeyIdentifier: keyID(t, "4c0f213a827702dd")},
						{KeyUsage: ka, SubjectUniqueID: netop, SubjectKeyIdentifier: keyID(t, "44fc84f1e3bd5280")},
					}},
			}}
		},
		"15": func(any) Payload {
			return &ProvideSecurityCredentialDetailsCommand{
				AuthorisingRemotePartyTACellIdentifier: Cell(RoleTransitionalCoS, DigitalSignature, CellManagement),
				RemotePartyRolesCredentialsRequired:    []RemotePartyRole{RoleTransitionalCoS, RoleAccessControlBroker},
			}
		},
		"16": func(any) Payload {
			return &ProvideSecurityCredentialDetailsResponse{RemotePartyDetails: []RemotePartyDetails{
				{RemotePartyRole: RoleTransitionalCoS, CurrentSeqNumber: ptr(SeqNumber(12)),
					TrustAnchorCellDetails: []TrustAnchorCellContents{
						{KeyUsage: ds, SubjectUniqueID: tcos, SubjectKeyIdentifier: keyID(t, "41535e821cf919b3")}}},
				{RemotePartyRole: RoleAccessControlBroker, CurrentSeqNumber: ptr(SeqNumber(0)),
					TrustAnchorCellDetails: []TrustAnchorCellContents{
						{KeyUsage: ka, SubjectUniqueID: acb, SubjectKeyIdentifier: keyID(t, "45f8465ff8b03e0c")}}},
			}}
		},
		"17": func(any) Payload { return &IssueSecurityCredentialsCommand{KeyUsage: ds} },
		"18": func(tree any) Payload {
			return &IssueSecurityCredentialsResponse{CertificationRequest: &CertificationRequest{rawAt(t, tree, "value")}}
		},
		"19": func(tree any) Payload {
			return &UpdateDeviceCertificateCommand{Certificate{rawAt(t, tree)}}
		},
		"20": func(any) Payload { return ptr(UpdateDeviceCertificateResponse(0)) },
		"24": func(tree any) Payload {
			return &UpdateSecurityCredentialsCommand{
				AuthorisingRemotePartyControl: AuthorisingRemotePartyControl{
					CredentialsReplacementMode:      AccessControlBrokerByACB,
					AuthorisingRemotePartySeqNumber: 3,
					NewRemotePartyFloorSeqNumber:    ptr(SeqNumber(0)),
				},
				Replacements: []TrustAnchorReplacement{{
					ReplacementCertificate: Certificate{rawAt(t, tree, "replacements", 0, "replacementCertificate")},
					TargetTrustAnchorCell:  Cell(RoleAccessControlBroker, KeyAgreement, CellManagement)}},
				CertificationPathCertificates: []Certificate{{rawAt(t, tree, "certificationPathCertificates", 0)}},
			}
		},
		"25": func(any) Payload {
			cmd := UpdateSecurityCredentialsCommand{AuthorisingRemotePartyControl: AuthorisingRemotePartyControl{
				CredentialsReplacementMode: AccessControlBrokerByACB, AuthorisingRemotePartySeqNumber: 3}}
			o := cmd.NewExecutionOutcome()
			o.ReplacementOutcomes = append(o.ReplacementOutcomes, ReplacementOutcome{
				Cell(RoleAccessControlBroker, KeyAgreement, CellManagement), StatusSuccess,
				acb, keyID(t, "45f8465ff8b03e0c"), acb, keyID(t, "475cb82428ea924f")})
			return &UpdateSecurityCredentialsResponse{ExecutionOutcome: &o}
		},
	}
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			f, ok := build[v.File[:2]]
			if !ok {
				t.Fatalf("no typed value for %s", v.File)
			}
			p := f(v.DecodedPayload)
			want := unhex(t, v.PayloadHex)
			got, err := p.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("built from Go values:\nhave %x\nwant %x", got, want)
			}
			if _, err := New(v.Code, v.CRA); err != nil {
				t.Fatal(err)
			}
			if d, _ := Decode(v.Code, v.CRA, want); reflect.TypeOf(d) != reflect.TypeOf(p) {
				t.Errorf("Decode gives %T, the typed value is %T", d, p)
			}
		})
	}
}

// TestSpecExamples checks the constructed examples printed in
// gbcs-payloads.md 3.4 (CS02a request) and 3.5 (CS02c request).
func TestSpecExamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		p    Payload
	}{
		{"3.4 CS02a ACB request", "30 11 30 07 02 01 04 03 02 03 08 30 06 02 01 02 02 01 03",
			&ProvideSecurityCredentialDetailsCommand{
				AuthorisingRemotePartyTACellIdentifier: Cell(RoleAccessControlBroker, KeyAgreement, CellManagement),
				RemotePartyRolesCredentialsRequired:    []RemotePartyRole{RoleSupplier, RoleNetworkOperator}}},
		{"3.5 CS02c DS request", "30 04 03 02 07 80", &IssueSecurityCredentialsCommand{KeyUsage: ds}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := tc.p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("have %x, want %x", got, want)
			}
			q := reflect.New(reflect.TypeOf(tc.p).Elem()).Interface().(Payload)
			if err := q.Unmarshal(want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, tc.p) {
				t.Errorf("decoded %#v, want %#v", q, tc.p)
			}
		})
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
