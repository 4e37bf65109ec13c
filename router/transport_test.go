package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/metertrust/metertrust/smki"
)

func TestHTTPTransport(t *testing.T) {
	target := smki.MustParseEUI("0012A3FFFE000001")
	msg := []byte{0xDD, 0x00, 0x01}
	tests := []struct {
		name      string
		status    int
		body      []byte
		wantResp  []byte
		wantFinal bool // ErrDeviceRefused
		wantErr   bool
		// wantKind, when set, is also wrapped (ErrDeviceReplay, ErrDeviceMAC).
		wantKind error
	}{
		{"synchronous response", http.StatusOK, []byte{0xDD, 0x02}, []byte{0xDD, 0x02}, false, false, nil},
		{"accepted, response later", http.StatusAccepted, nil, nil, false, false, nil},
		{"refused by the provider", http.StatusUnprocessableEntity, []byte("bad MAC"), nil, true, true, nil},
		{"replay reported", http.StatusUnprocessableEntity, []byte(`{"code":"replay","status":422}`), nil, true, true, ErrDeviceReplay},
		{"bad MAC reported", http.StatusUnprocessableEntity, []byte(`{"code":"bad-mac","status":422}`), nil, true, true, ErrDeviceMAC},
		{"unknown device", http.StatusNotFound, nil, nil, true, true, nil},
		{"overloaded: retry", http.StatusTooManyRequests, nil, nil, false, true, nil},
		{"timeout: retry", http.StatusRequestTimeout, nil, nil, false, true, nil},
		{"server error: retry", http.StatusServiceUnavailable, nil, nil, false, true, nil},
		{"oversized response", http.StatusOK, make([]byte, MaxResponseBytes+1), nil, true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.URL.Path != "/csp/v1/devices/"+target.String()+"/commands" ||
					r.Header.Get("Content-Type") != "application/octet-stream" || !bytes.Equal(b, msg) {
					http.Error(w, "unexpected request", http.StatusTeapot)
					return
				}
				w.WriteHeader(tt.status)
				w.Write(tt.body)
			}))
			defer srv.Close()
			tr, err := NewHTTPTransport(srv.URL+"/csp", srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.Send(context.Background(), target, msg)
			if (err != nil) != tt.wantErr || errors.Is(err, ErrDeviceRefused) != tt.wantFinal {
				t.Fatalf("Send: %v; want error %t, final %t", err, tt.wantErr, tt.wantFinal)
			}
			for _, k := range []error{ErrDeviceReplay, ErrDeviceMAC} {
				if errors.Is(err, k) != (tt.wantKind == k) {
					t.Errorf("Send: %v; wraps %v: %t", err, k, errors.Is(err, k))
				}
			}
			if !bytes.Equal(resp, tt.wantResp) {
				t.Fatalf("response %x, want %x", resp, tt.wantResp)
			}
		})
	}
	t.Run("unreachable: retry", func(t *testing.T) {
		tr, _ := NewHTTPTransport("http://127.0.0.1:1", nil)
		if _, err := tr.Send(context.Background(), target, msg); err == nil || errors.Is(err, ErrDeviceRefused) {
			t.Fatalf("Send: %v", err)
		}
	})
	t.Run("bad endpoints", func(t *testing.T) {
		for _, u := range []string{"", "ftp://x", "https://", "::"} {
			if _, err := NewHTTPTransport(u, nil); !errors.Is(err, ErrConfig) {
				t.Errorf("NewHTTPTransport(%q): %v", u, err)
			}
		}
	})
}
