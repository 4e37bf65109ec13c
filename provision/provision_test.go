package provision_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/provision/provisiontest"
	"github.com/metertrust/metertrust/smki"
)

func TestReadGood(t *testing.T) {
	lines := fileLines(t, 3)
	f, err := provision.Read(strings.NewReader(join(lines)), provision.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.Manufacturer != manufacturerEUI || !f.Header.Created.Equal(created) || f.Header.Devices != 3 || f.Header.Format != provision.Format {
		t.Errorf("header %+v", f.Header)
	}
	if len(f.Entries) != 3 || f.Certificates() != 6 || len(f.Refused) != 0 {
		t.Fatalf("%d entries, %d certificates, %d refused", len(f.Entries), f.Certificates(), len(f.Refused))
	}
	for i, e := range f.Entries {
		if e.Line != i+2 || e.EUI != provisiontest.Add(firstDevice, uint64(i)) || e.DeviceType != provision.ESME {
			t.Errorf("entry %d: %+v", i, e)
		}
		if e.CSRs[0].KeyUsage != x509.KeyUsageDigitalSignature || e.CSRs[1].KeyUsage != x509.KeyUsageKeyAgreement {
			t.Errorf("entry %d: usages %v %v", i, e.CSRs[0].KeyUsage, e.CSRs[1].KeyUsage)
		}
	}
	if f.Size != int64(len(join(lines))) {
		t.Errorf("size %d", f.Size)
	}
	// No final LF, CRLF line ends, one request only: all accepted.
	for name, s := range map[string]string{
		"no final LF": strings.TrimSuffix(join(lines), "\n"),
		"CRLF":        strings.Join(lines, "\r\n") + "\r\n",
		"DS only":     join(setField(t, lines, 2, "csrs", csrsOf(t, lines[1])[:1])),
	} {
		if _, err := provision.Read(strings.NewReader(s), provision.Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// setField returns lines with field k of line n (1-based) set to v.
func setField(t testing.TB, lines []string, n int, k string, v any) []string {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal([]byte(lines[n-1]), &m); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]string(nil), lines...)
	out[n-1] = string(b)
	return out
}

func csrsOf(t testing.TB, line string) []string {
	t.Helper()
	var e struct {
		CSRs []string `json:"csrs"`
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatal(err)
	}
	return e.CSRs
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestReadRefusesFile(t *testing.T) {
	lines := fileLines(t, 3)
	hdr := func(k string, v any) string { return join(setField(t, lines, 1, k, v)) }
	small := provision.Options{MaxDevices: 2}
	for _, tc := range []struct {
		name string
		file string
		opts provision.Options
		want error
		msg  string
	}{
		{"empty", "", provision.Options{}, provision.ErrFormat, "empty file"},
		{"header not JSON", "format: x\n" + join(lines[1:]), provision.Options{}, provision.ErrFormat, "line 1"},
		{"header array", "[]\n" + join(lines[1:]), provision.Options{}, provision.ErrFormat, "not a JSON object"},
		{"format", hdr("format", "metertrust-provisioning/2"), provision.Options{}, provision.ErrFormat, "format"},
		{"unknown field", hdr("comment", "hi"), provision.Options{}, provision.ErrFormat, `unknown field "comment"`},
		{"field case", strings.Replace(join(lines), `"format"`, `"Format"`, 1), provision.Options{}, provision.ErrFormat, `unknown field "Format"`},
		{"repeated field", strings.Replace(join(lines), `{"format":"metertrust-provisioning/1"`, `{"format":"metertrust-provisioning/1","format":"metertrust-provisioning/1"`, 1), provision.Options{}, provision.ErrFormat, "repeated"},
		{"missing created", hdr("created", nil), provision.Options{}, provision.ErrFormat, `"created" missing`},
		{"manufacturer", hdr("manufacturer", "90-B3-D5-1F-30-0A-00-01"), provision.Options{}, provision.ErrFormat, "manufacturer"},
		{"created", hdr("created", "30/11/2026"), provision.Options{}, provision.ErrFormat, "RFC 3339"},
		{"devices type", hdr("devices", "3"), provision.Options{}, provision.ErrFormat, `field "devices"`},
		{"devices negative", hdr("devices", -1), provision.Options{}, provision.ErrFormat, "negative"},
		{"trailing data", strings.Replace(join(lines), "\n", " {}\n", 1), provision.Options{}, provision.ErrFormat, "after the JSON object"},
		{"count low", hdr("devices", 2), provision.Options{SkipBad: true}, provision.ErrFormat, "says 2 devices, the file has 3"},
		{"count high", hdr("devices", 4), provision.Options{}, provision.ErrFormat, "says 4 devices, the file has 3"},
		{"header over MaxDevices", join(lines), small, provision.ErrLimit, "at most 2"},
		{"lines over MaxDevices", hdr("devices", 2), small, provision.ErrLimit, "line 4: more than 2 devices"},
		{"long line", join(lines), provision.Options{MaxLineBytes: 200}, provision.ErrLimit, "line 2: longer than 200 bytes"},
		// The limit is one byte under the longest line, whichever line that
		// is (CSR signatures vary in length), with no final newline.
		{"long last line", strings.TrimSuffix(join(lines), "\n"), provision.Options{MaxLineBytes: longest(lines) - 1}, provision.ErrLimit, "bytes"},
		{"large file", join(lines), provision.Options{MaxBytes: int64(len(join(lines)) - 1)}, provision.ErrLimit, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provision.Read(strings.NewReader(tc.file), tc.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if errors.Is(err, provision.ErrEntry) {
				t.Errorf("a whole-file refusal reads as an entry refusal: %v", err)
			}
		})
	}
	// Exactly at the limits: accepted.
	f := join(lines)
	if _, err := provision.Read(strings.NewReader(f), provision.Options{MaxBytes: int64(len(f)), MaxDevices: 3}); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

func TestReadRefusesEntry(t *testing.T) {
	lines := fileLines(t, 3)
	csrs := csrsOf(t, lines[2]) // device 2's DS and KA requests
	eui2 := provisiontest.Add(firstDevice, 1).String()
	other, err := provisiontest.CSR(smki.MustParseEUI("00DB1234567899FF"), x509.KeyUsageDigitalSignature)
	if err != nil {
		t.Fatal(err)
	}
	org, err := smki.CreateCSR(nil, &smki.CSRTemplate{Kind: smki.KindOrganisation, Role: smki.RoleOther, EUI: manufacturerEUI,
		KeyUsage: x509.KeyUsageDigitalSignature}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ds2, err := provisiontest.CSR(smki.MustParseEUI(eui2), x509.KeyUsageDigitalSignature)
	if err != nil {
		t.Fatal(err)
	}
	tampered, _ := base64.StdEncoding.DecodeString(csrs[0])
	tampered[len(tampered)-5] ^= 1
	set := func(k string, v any) []string { return setField(t, lines, 3, k, v) }
	with := func(l string) []string { out := append([]string(nil), lines...); out[2] = l; return out }
	for _, tc := range []struct {
		name  string
		lines []string
		eui   string
		want  error
		msg   string
	}{
		{"not JSON", with("eui=" + eui2), "", nil, "not a JSON object"},
		{"empty line", with(""), "", nil, "not a JSON object"},
		{"unknown field", set("serial", "x"), eui2, nil, `unknown field "serial"`},
		{"missing csrs", set("csrs", nil), eui2, nil, `"csrs" missing`},
		{"eui grouped", set("eui", "00-DB-12-34-56-78-00-02"), "00-DB-12-34-56-78-00-02", nil, "16 hex digits"},
		{"eui not hex", set("eui", "00DB12345678000G"), "00DB12345678000G", nil, "invalid EUI-64"},
		{"eui zero", set("eui", "0000000000000000"), "0000000000000000", nil, "zero EUI-64"},
		{"eui number", set("eui", 1), "", nil, `field "eui"`},
		{"device type", set("deviceType", "IHD"), eui2, nil, `deviceType "IHD"`},
		{"device type case", set("deviceType", "esme"), eui2, nil, `deviceType "esme"`},
		{"no requests", set("csrs", []string{}), eui2, nil, "0 requests"},
		{"three requests", set("csrs", []string{csrs[0], csrs[1], csrs[0]}), eui2, nil, "3 requests"},
		{"not base64", set("csrs", []string{"!!" + csrs[0]}), eui2, nil, "csrs[0]: not base64"},
		{"not a request", set("csrs", []string{b64([]byte("hello"))}), eui2, smki.ErrMalformed, "csrs[0]"},
		{"bad signature", set("csrs", []string{b64(tampered)}), eui2, smki.ErrCSR, "csrs[0]"},
		{"organisation request", set("csrs", []string{b64(org)}), eui2, nil, "organisation request"},
		{"other device", set("csrs", []string{csrs[0], b64(other)}), eui2, nil, "csrs[1]: requested for device 00DB1234567899FF"},
		{"two DS", set("csrs", []string{csrs[0], b64(ds2)}), eui2, nil, "a second digitalSignature request"},
		{"duplicate", with(lines[1]), "00DB123456780001", provision.ErrDuplicate, "already on line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provision.Read(strings.NewReader(join(tc.lines)), provision.Options{})
			var ee *provision.EntryError
			if !errors.As(err, &ee) || !errors.Is(err, provision.ErrEntry) {
				t.Fatalf("got %v, want an *EntryError", err)
			}
			if ee.Line != 3 || ee.EUI != tc.eui || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "line 3") {
				t.Errorf("got line %d EUI %q: %v; want line 3 EUI %q, %q", ee.Line, ee.EUI, err, tc.eui, tc.msg)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			// In skip-bad mode the line is refused, the others kept.
			f, err := provision.Read(strings.NewReader(join(tc.lines)), provision.Options{SkipBad: true})
			if err != nil {
				t.Fatalf("skip-bad: %v", err)
			}
			if len(f.Entries) != 2 || len(f.Refused) != 1 || f.Refused[0].Line != 3 || f.Entries[1].Line != 4 {
				t.Errorf("skip-bad: %d entries, refused %v", len(f.Entries), f.Refused)
			}
		})
	}
}

func TestEntryErrorJSON(t *testing.T) {
	e := &provision.EntryError{Line: 7, EUI: "00DB123456780001", Err: errors.New("bad")}
	b, err := json.Marshal(e)
	if err != nil || string(b) != `{"line":7,"eui":"00DB123456780001","reason":"bad"}` {
		t.Errorf("%s %v", b, err)
	}
}

func TestVerify(t *testing.T) {
	data := []byte(join(fileLines(t, 2)))
	cert, key := orgCert(t, manufacturerEUI, x509.KeyUsageDigitalSignature)
	sig := sign(t, data, key)
	if err := provision.Verify(data, sig, cert); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	f, err := provision.Open(data, sig, cert, provision.Options{})
	if err != nil || len(f.Entries) != 2 {
		t.Fatalf("Open: %v", err)
	}
	// Line breaks in the base64 (base64 without -w0 wraps at 76) are fine.
	der, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sig)))
	wrapped := b64(der)[:40] + "\n" + b64(der)[40:] + "\n"
	if err := provision.Verify(data, []byte(wrapped), cert); err != nil {
		t.Errorf("wrapped base64: %v", err)
	}
	kaCert, kaKey := orgCert(t, manufacturerEUI, x509.KeyUsageKeyAgreement)
	otherCert, otherKey := orgCert(t, smki.MustParseEUI("90B3D51F300A0002"), x509.KeyUsageDigitalSignature)
	devCert := deviceCert(t)
	for _, tc := range []struct {
		name string
		data []byte
		sig  []byte
		cert *smki.Certificate
		want error
		msg  string
	}{
		{"tampered", flip(data, len(data)/2), sig, cert, provision.ErrSignature, "over these"},
		{"truncated", data[:len(data)-1], sig, cert, provision.ErrSignature, ""},
		{"other key", data, sign(t, data, otherKey), cert, provision.ErrSignature, ""},
		{"not base64", data, []byte("%%%"), cert, provision.ErrSignature, "not base64"},
		{"empty", data, nil, cert, provision.ErrSignature, "empty"},
		{"raw DER", data, der, cert, provision.ErrSignature, ""},
		{"KA certificate", data, sign(t, data, kaKey), kaCert, provision.ErrCertificate, "key agreement"},
		{"device certificate", data, sig, devCert, provision.ErrCertificate, "organisation certificate"},
		{"no certificate", data, sig, nil, provision.ErrCertificate, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := provision.Verify(tc.data, tc.sig, tc.cert)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if _, err := provision.Open(tc.data, tc.sig, tc.cert, provision.Options{SkipBad: true}); !errors.Is(err, tc.want) {
				t.Errorf("Open in skip-bad mode: got %v, want %v", err, tc.want)
			}
		})
	}
	// Signed by another manufacturer than the header names.
	if _, err := provision.Open(data, sign(t, data, otherKey), otherCert, provision.Options{}); !errors.Is(err, provision.ErrFormat) ||
		!strings.Contains(err.Error(), "signed by 90B3D51F300A0002") {
		t.Errorf("other manufacturer: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 1
	return out
}

func deviceCert(t testing.TB) *smki.Certificate {
	t.Helper()
	b, err := os.ReadFile("../smki/testdata/device-ds.pem")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := smki.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

// TestVerifyOpenSSL checks the documented command: a signature made by
// `openssl dgst -sha256 -sign key.pem FILE | base64` verifies, and one
// Sign makes verifies with `openssl dgst -sha256 -verify`.
func TestVerifyOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	data := []byte(join(fileLines(t, 1)))
	cert, key := orgCert(t, manufacturerEUI, x509.KeyUsageDigitalSignature)
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	file, keyPEM, pubPEM, sigFile := filepath.Join(dir, "devices.jsonl"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem"), filepath.Join(dir, "sig.der")
	must(t, os.WriteFile(file, data, 0o600))
	must(t, os.WriteFile(keyPEM, pemBlock("PRIVATE KEY", p8), 0o600))
	must(t, os.WriteFile(pubPEM, pemBlock("PUBLIC KEY", pub), 0o600))
	out, err := exec.Command("sh", "-c", "openssl dgst -sha256 -sign "+keyPEM+" "+file+" | base64").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	if err := provision.Verify(data, out, cert); err != nil {
		t.Errorf("openssl's signature: %v", err)
	}
	der, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sign(t, data, key))))
	must(t, os.WriteFile(sigFile, der, 0o600))
	if out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pubPEM, "-signature", sigFile, file).CombinedOutput(); err != nil {
		t.Errorf("openssl -verify of Sign's signature: %v: %s", err, out)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// longest returns the length of the longest line.
func longest(lines []string) int {
	n := 0
	for _, l := range lines {
		n = max(n, len(l))
	}
	return n
}
