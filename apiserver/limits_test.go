package apiserver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs Serve on a loopback listener until the test ends and returns
// its address.
func serve(t *testing.T, h http.Handler, o Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o.Service, o.Name = "test", "test API"
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	go func() { done <- Serve(ctx, ln, h, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// shortLimits shortens Serve's timeouts for the test.
func shortLimits(t *testing.T, d time.Duration) {
	t.Helper()
	saved := limits
	limits.readHeader, limits.read, limits.write, limits.idle = d, d, d, d
	t.Cleanup(func() { limits = saved })
}

// closedWithin reports whether the server closes conn within d, reading
// and discarding whatever it sends before.
func closedWithin(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestServeTimeouts checks that a request body sent slowly is cut off at
// the read timeout and an idle connection closed at the idle timeout,
// whatever the client does.
func TestServeTimeouts(t *testing.T) {
	shortLimits(t, 300*time.Millisecond)
	bodyErr := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		select {
		case bodyErr <- err:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}), Options{})

	t.Run("body sent a byte at a time", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST /slow HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n")
		// 100 bytes at one each 50 ms would take 5 s.
		for i := 0; i < 100; i++ {
			if _, err := conn.Write([]byte{'x'}); err != nil {
				break
			}
			if time.Since(start) > 3*time.Second {
				t.Fatal("the server still reads the body after 3s")
			}
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-bodyErr:
				if err == nil {
					t.Fatal("the whole body was read")
				}
				if !closedWithin(conn, 2*time.Second) {
					t.Fatal("connection still open after the body read failed")
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("body read cut after %v, want about 300ms", d)
				}
				return
			default:
			}
		}
		t.Fatal("the body read never failed")
	})

	t.Run("idle connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /idle HTTP/1.1\r\nHost: test\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || res.StatusCode != http.StatusNoContent {
			t.Fatalf("response %v, %v", res, err)
		}
		if !closedWithin(conn, 2*time.Second) {
			t.Fatal("idle connection still open after 2s")
		}
	})

	t.Run("header never finished", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /hdr HTTP/1.1\r\nHost: test\r\nX-Slow: ")
		if !closedWithin(conn, 2*time.Second) {
			t.Fatal("connection with an unfinished header still open after 2s")
		}
	})
}

// TestServeHeaderLimit checks that a request line or header over 16 KiB
// never reaches the handler.
func TestServeHeaderLimit(t *testing.T) {
	reached := make(chan string, 4)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- r.URL.Path
		w.WriteHeader(http.StatusNoContent)
	}), Options{})
	for name, req := range map[string]string{
		"1 MB request line": "GET /" + strings.Repeat("a", 1<<20) + " HTTP/1.1\r\nHost: test\r\n\r\n",
		"32 KiB header":     "GET /h HTTP/1.1\r\nHost: test\r\nX-Big: " + strings.Repeat("b", 32<<10) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go io.WriteString(conn, req) // the server may stop reading part-way
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status %d, want 431", res.StatusCode)
			}
			select {
			case p := <-reached:
				t.Fatalf("the handler saw %.20s", p)
			default:
			}
		})
	}
}

// TestExtendDeadlines checks that a stream which extends its deadlines
// outlives the read and write timeouts, and that one which does not is
// ended by them (its context cancelled when the read deadline passes).
func TestExtendDeadlines(t *testing.T) {
	shortLimits(t, 300*time.Millisecond)
	stream := func(extend bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 10 {
				if extend {
					if err := ExtendDeadlines(w, 250*time.Millisecond); err != nil {
						return
					}
				}
				if r.Context().Err() != nil {
					return
				}
				if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
					return
				}
				http.NewResponseController(w).Flush()
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintf(w, "data: end\n\n")
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/extended", stream(true))
	mux.Handle("/plain", stream(false))
	addr := serve(t, mux, Options{})
	for path, wantEnd := range map[string]bool{"/extended": true, "/plain": false} {
		t.Run(path, func(t *testing.T) {
			res, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body) // about 1s of events
			if got := strings.Contains(string(b), "data: end"); got != wantEnd {
				t.Fatalf("stream reached its end: %v, want %v; got %q", got, wantEnd, b)
			}
		})
	}
}

// TestServeTLS checks that Serve with Options.TLS answers HTTPS, with the
// client certificate the configuration requires, over HTTP/1.1 and
// HTTP/2, and refuses a client without one at the handshake.
func TestServeTLS(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	leaf := func(serial int64, cn string, eku x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{eku},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	server, client := leaf(2, "server", x509.ExtKeyUsageServerAuth), leaf(3, "alice", x509.ExtKeyUsageClientAuth)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}), Options{TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}})

	get := func(certs []tls.Certificate, h2 bool) (*http.Response, string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}, ForceAttemptHTTP2: h2}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/who")
		if err != nil {
			return nil, "", err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b), nil
	}
	for _, h2 := range []bool{false, true} {
		res, body, err := get([]tls.Certificate{client}, h2)
		if err != nil {
			t.Fatalf("HTTP/2 %v: %v", h2, err)
		}
		if res.StatusCode != http.StatusOK || body != "alice" {
			t.Fatalf("HTTP/2 %v: %d %q", h2, res.StatusCode, body)
		}
		if want := map[bool]int{false: 1, true: 2}[h2]; res.ProtoMajor != want {
			t.Errorf("protocol %s, want HTTP/%d", res.Proto, want)
		}
	}
	if res, _, err := get(nil, false); err == nil {
		t.Fatalf("a client without a certificate got %s", res.Status)
	}
}
