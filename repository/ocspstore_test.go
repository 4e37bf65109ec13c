package repository

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/store"
)

// fakeOCSPSource holds CAs and stored responses for StoredOCSP.
type fakeOCSPSource struct {
	cas   []store.CA
	resps map[string]store.OCSPResponse // key: ca + "/" + serial bytes
	err   error
}

func (f *fakeOCSPSource) CAs(context.Context) ([]store.CA, error) { return f.cas, nil }

func (f *fakeOCSPSource) OCSPResponse(_ context.Context, ca string, serial []byte) (store.OCSPResponse, error) {
	if f.err != nil {
		return store.OCSPResponse{}, f.err
	}
	r, ok := f.resps[ca+"/"+string(serial)]
	if !ok {
		return r, fmt.Errorf("OCSP response: %w", store.ErrNotFound)
	}
	return r, nil
}

// TestStoredOCSP checks the answers of the keyless answerer: the stored
// response as is, and the unsigned error responses of RFC 6960 otherwise.
func TestStoredOCSP(t *testing.T) {
	p := newTestPKI(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sign := func(serial int64, status int, thisUpdate time.Time) store.OCSPResponse {
		der, err := ocsp.CreateResponse(p.dca.cert, p.dca.cert, ocsp.Response{SerialNumber: big.NewInt(serial), Status: status,
			ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour), RevokedAt: thisUpdate}, p.dca.key)
		if err != nil {
			t.Fatal(err)
		}
		return store.OCSPResponse{CA: "dca", Serial: big.NewInt(serial).Bytes(), Status: status, ThisUpdate: thisUpdate,
			NextUpdate: thisUpdate.Add(24 * time.Hour), DER: der}
	}
	good, revoked, stale := sign(1, ocsp.Good, now.Add(-time.Hour)), sign(2, ocsp.Revoked, now.Add(-time.Hour)), sign(3, ocsp.Good, now.Add(-25*time.Hour))
	src := &fakeOCSPSource{
		cas:   []store.CA{{Name: "root", CertDER: p.root.der}, {Name: "dca", CertDER: p.dca.der}, {Name: "junk", CertDER: []byte("x")}},
		resps: map[string]store.OCSPResponse{"dca/\x01": good, "dca/\x02": revoked, "dca/\x03": stale},
	}
	o := NewStoredOCSP(src, nil, func() time.Time { return now })
	request := func(issuer *x509.Certificate, serial int64) []byte {
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(serial)}, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	tests := []struct {
		name    string
		req     []byte
		srcErr  error
		want    []byte
		wantErr error
	}{
		{"good", request(p.dca.cert, 1), nil, good.DER, nil},
		{"revoked", request(p.dca.cert, 2), nil, revoked.DER, nil},
		{"expired", request(p.dca.cert, 3), nil, ocsp.TryLaterErrorResponse, ErrOCSPNotAnswered},
		{"never issued", request(p.dca.cert, 4), nil, ocsp.UnauthorizedErrorResponse, ErrOCSPNotAnswered},
		{"root-issued, none stored", request(p.root.cert, 1), nil, ocsp.UnauthorizedErrorResponse, ErrOCSPNotAnswered},
		{"unknown issuer", request(p.other.cert, 1), nil, ocsp.UnauthorizedErrorResponse, ErrOCSPNotAnswered},
		{"malformed", []byte("hello"), nil, ocsp.MalformedRequestErrorResponse, ErrOCSPNotAnswered},
		{"store fails", request(p.dca.cert, 1), errBoom, ocsp.InternalErrorErrorResponse, errBoom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src.err = tc.srcErr
			defer func() { src.err = nil }()
			got, err := o.Respond(context.Background(), tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("response %x, want %x", got, tc.want)
			}
		})
	}
}
