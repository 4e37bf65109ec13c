package smki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	p := newTestPKI(t)
	csr, err := CreateCSR(rand.Reader, &CSRTemplate{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageDigitalSignature, HWType: OIDHWTypeReferenceMeter}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.orgKA.der})
	pemCSR := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	tests := []struct {
		name  string
		in    []byte
		types []string
		text  []string
		err   error
	}{
		{"org PEM", pemCert, []string{"certificate"}, []string{"profile org-ka (organisation)", "OU=02", "role:", "supplier (02)", "90-B3-D5-1F-30-01-00-00", "keyAgreement", "certificatePolicies (critical)"}, nil},
		{"device DER", p.devDS.der, []string{"certificate"}, []string{"profile device-ds", "subject:", "(empty)", "hwSerialNum 00DB1234567890A0", "(no expiry)", "subjectAltName (critical)"}, nil},
		{"CSR DER", csr, []string{"csr"}, []string{"certificate request, profile device-ds", "00DB1234567890A0"}, nil},
		{"CSR and cert PEM", append(append([]byte{}, pemCSR...), pemCert...), []string{"csr", "certificate"}, []string{"certificate request", "org-ka"}, nil},
		{"CA chain DER", append(append([]byte{}, p.root.der...), p.dca.der...), []string{"certificate", "certificate"}, []string{"CA:", "true, pathLen 0", "keyCertSign, cRLSign"}, nil},
		{"private key PEM", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), nil, nil, nil},
		{"junk", []byte("junk"), nil, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sums, err := Describe(tt.in)
			if tt.types == nil {
				if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			for i, s := range sums {
				if s.Type != tt.types[i] {
					t.Errorf("object %d type %s, want %s", i, s.Type, tt.types[i])
				}
				if err := s.WriteText(&buf); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range tt.text {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, buf.String())
				}
			}
		})
	}
}

// TestSummaryJSONFields pins the JSON field names `smki show --json`
// promises.
func TestSummaryJSONFields(t *testing.T) {
	p := newTestPKI(t)
	for _, is := range []*issued{p.orgDS, p.devKA, p.oca} {
		t.Run(string(is.cert.Profile), func(t *testing.T) {
			b, err := json.Marshal(is.cert.Summary())
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"type", "profile", "kind", "serial", "subject", "issuer", "keyUsage", "isCA",
				"subjectKeyId", "authorityKeyId", "policies", "notBefore", "notAfter", "publicKey", "signatureAlgorithm", "extensions", "sha256"} {
				if _, ok := m[k]; !ok {
					t.Errorf("JSON lacks %q: %s", k, b)
				}
			}
			switch is.cert.Kind {
			case KindOrganisation:
				if m["eui"] != "90B3D51F30010000" || m["role"] != "supplier" || m["roleCode"] != float64(2) {
					t.Errorf("eui %v role %v roleCode %v", m["eui"], m["role"], m["roleCode"])
				}
			case KindDevice:
				if m["eui"] != "00DB1234567890A0" || m["hwSerial"] != "00DB1234567890A0" || m["neverExpires"] != true {
					t.Errorf("eui %v hwSerial %v neverExpires %v", m["eui"], m["hwSerial"], m["neverExpires"])
				}
			case KindOCA:
				if m["maxPathLen"] != float64(0) || m["isCA"] != true {
					t.Errorf("maxPathLen %v isCA %v", m["maxPathLen"], m["isCA"])
				}
			}
		})
	}
}
