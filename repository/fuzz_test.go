package repository

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// FuzzParseCertQuery checks that any query string gives either a query or
// a bad-request error naming a parameter, never a panic or an out-of-range
// limit.
func FuzzParseCertQuery(f *testing.F) {
	for _, s := range []string{
		"", "eui=90B3D51F30010000", "eui=90-B3-D5-1F-30-01-00-00&role=supplier&usage=ds",
		"role=0x02", "role=127&kind=org", "serial=0x0A:BC&ca=oca", "after=10&limit=1000",
		"limit=0", "limit=-5", "limit=99999999999999999999", "after=9223372036854775808",
		"eui=%zz", "role=2&role=3", "usage=pp-ka&status=good", "userRole=rsa", "x=1",
		"eui=90-B3-D5-1F-30-01-00", "serial=" + strings.Repeat("f", 41), "ca=a..b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseCertQuery(v, DefaultPageSize, MaxPageSize)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Kind != ErrBadRequest || re.Param == "" || !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not a bad request naming a parameter", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxPageSize || q.AfterID < 0 {
			t.Fatalf("query out of range: %+v", q)
		}
		if q.EUI != "" {
			if _, err := smki.ParseEUI(q.EUI); err != nil || q.EUI != strings.ToUpper(q.EUI) {
				t.Fatalf("EUI %q not canonical", q.EUI)
			}
		}
		if q.Serial != nil && (len(q.Serial) == 0 || len(q.Serial) > maxSerialBytes) {
			t.Fatalf("serial %x out of range", q.Serial)
		}
	})
}

// FuzzParsePublishBody checks the body reader of POST /v1/certificates.
func FuzzParsePublishBody(f *testing.F) {
	p := newTestPKI(f)
	der := p.oca.der
	pemText := "-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END CERTIFICATE-----\n"
	js, _ := json.Marshal(PublishRequest{Certificate: base64.StdEncoding.EncodeToString(der), PrepaymentTopUp: true})
	jp, _ := json.Marshal(PublishRequest{Certificate: pemText})
	for _, seed := range []struct{ ct, body string }{
		{MediaPKIXCert, string(der)},
		{MediaPEM, pemText},
		{MediaPEM + "; charset=us-ascii", pemText + pemText},
		{MediaJSON, string(js)},
		{MediaJSON, string(jp)},
		{MediaJSON, `{"certificate":"","x":1}`},
		{MediaJSON, `{"certificate":"AA=="} trailing`},
		{"text/plain", "hello"},
		{"", ""},
		{"application/json; charset=\"", "{}"},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		pub, err := parsePublishBody(ct, body)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || (re.Kind != ErrBadRequest && re.Kind != ErrUnsupportedMediaType) || re.Param == "" {
				t.Fatalf("error %v is not a 400/415 naming what is wrong", err)
			}
			return
		}
		if len(pub.der) == 0 {
			t.Fatal("accepted a body with no certificate")
		}
		// Whatever was accepted, reading it must not panic either.
		if sc, err := smki.ParseCertificate(pub.der); err == nil && !bytes.Equal(sc.Raw, pub.der) {
			t.Fatal("parsed certificate differs from its DER")
		}
	})
}

// FuzzDecodeOCSPPath checks the GET OCSP path decoder.
func FuzzDecodeOCSPPath(f *testing.F) {
	for _, s := range []string{"/ocsp/MAA=", "/ocsp/ab%2Fc+d%2B/ef==", "/ocsp/", "/ocsp/%", "/ocsp/" + strings.Repeat("A", 100), "/ocsp/-_-_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(p)
		if err != nil {
			return
		}
		der, ok := decodeOCSPPath(u)
		if ok && (len(der) == 0 || len(der) > 3*maxOCSPRequestBytes) {
			t.Fatalf("decoded %d bytes", len(der))
		}
	})
}

// FuzzServer sends arbitrary requests through the whole handler: nothing
// panics, nothing is a 500, and every error is problem+json.
func FuzzServer(f *testing.F) {
	for _, seed := range []struct{ method, target, ct, auth, body string }{
		{"GET", "/v1/certificates?eui=90B3D51F30010000", "", "", ""},
		{"GET", "/v1/certificates/oca/01.pem", "", "", ""},
		{"GET", "/v1/cas/oca/certificate", "", "", ""},
		{"GET", "/v1/crl/oca", "", "", ""},
		{"GET", "/ocsp/MAA=", "", "", ""},
		{"POST", "/ocsp", MediaOCSPRequest, "", "0\x00"},
		{"POST", "/v1/revocations", MediaJSON, "Bearer " + adminToken, `{"ca":"oca","serial":"01","reason":1}`}, // no route: revocation is serve ca's
		{"POST", "/v1/certificates", MediaPKIXCert, "Bearer " + adminToken, "0\x03\x01\x02\x03"},
		{"POST", "/v1/certificates", MediaJSON, "Bearer " + publishToken, `{"certificate":"AA=="}`},
		{"PUT", "/v1/cas", "", "", ""},
	} {
		f.Add(seed.method, seed.target, seed.ct, seed.auth, []byte(seed.body))
	}
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, method, target, ct, auth string, body []byte) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		switch method {
		case "GET", "POST", "PUT", "DELETE", "HEAD":
		default:
			return
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return
		}
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, target, w.Code, w.Body)
		}
		if w.Code >= 400 && method != "HEAD" && w.Header().Get("Content-Type") != MediaProblem {
			t.Fatalf("%s %s: error %d without problem+json", method, target, w.Code)
		}
	})
}

// FuzzStoredOCSP feeds outside bytes to the keyless OCSP answerer: it must
// never panic, and every answer is the stored response or an OCSP error
// response with an error.
func FuzzStoredOCSP(f *testing.F) {
	p := newTestPKI(f)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	der, err := ocsp.CreateResponse(p.dca.cert, p.dca.cert, ocsp.Response{SerialNumber: big.NewInt(1), Status: ocsp.Good,
		ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, p.dca.key)
	if err != nil {
		f.Fatal(err)
	}
	src := &fakeOCSPSource{cas: []store.CA{{Name: "dca", CertDER: p.dca.der}},
		resps: map[string]store.OCSPResponse{"dca/\x01": {CA: "dca", Serial: []byte{1}, NextUpdate: now.Add(time.Hour), DER: der}}}
	o := NewStoredOCSP(src, nil, func() time.Time { return now })
	for _, serial := range []int64{1, 2} {
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(serial)}, p.dca.cert, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(req)
		f.Add(req[:len(req)/2])
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, req []byte) {
		got, err := o.Respond(context.Background(), req)
		switch {
		case len(got) == 0:
			t.Fatalf("no response bytes (err %v)", err)
		case err == nil && !bytes.Equal(got, der):
			t.Fatalf("answered %x without an error", got)
		case err != nil && !errors.Is(err, ErrOCSPNotAnswered):
			t.Fatalf("error %v does not wrap ErrOCSPNotAnswered", err)
		}
	})
}
