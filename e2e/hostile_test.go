package e2e

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// TestHostileInputs sends a corpus of malformed and hostile commands to a
// router process over mutual TLS: each gets its own refusal (status and
// problem+json code, DESIGN.md principle 3) and leaves no state behind: no
// command, counter, outbox, delivery, anomaly count or quarantine row in
// the store, no last-forwarded counter moved, nothing sent to a meter.
func TestHostileInputs(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, backend, 3)
			r := w.startRouter(t, "router", "")
			m0, m1 := w.meters[0], w.meters[1]
			base := uint64(time.Now().UnixMilli())

			// One command goes through first, so that replays have
			// something to replay.
			read := w.preCommand(t, r, w.supplier, "4.1.1", m0, base)
			if st, _, pr, err := r.submit(w.supplier, read); err != nil || st != http.StatusAccepted {
				t.Fatalf("first command: %d %+v %v", st, pr, err)
			}
			w.awaitOutboxEmpty(t, 15*time.Second)
			eventually(t, 10*time.Second, "first command executed", func() error {
				fs, err := w.fleetStats()
				if err == nil && fs.Executed != 1 {
					return errorf("meters executed %d commands", fs.Executed)
				}
				return err
			})

			disconnect := w.preCommand(t, r, w.supplier, "7.2", m1, base+10) // signed by the supplier
			unsigned := unsign(t, disconnect)
			next := withCounter(t, read, base+20)
			flippedSig := bytes.Clone(disconnect)
			flippedSig[len(flippedSig)-1] ^= 0x01
			dtLen := bytes.Clone(next)
			dtLen[29] = 12 // DF 09 CRA counter(8) 08 EUI 08 EUI: the date-time length, claiming 12 absent bytes
			oiLen := bytes.Clone(next)
			oiLen[30] = 0x7F // the other-information length, far past the end
			netopOrig := reoriginate(t, next, w.netop.eui)
			response := recra(t, next, commands.Response)
			unknownTarget := retarget(t, next, smki.MustParseEUI("0012A3FFFE00FFFF"))
			macd := withMAC(t, next)
			netopDisconnect := reoriginate(t, unsigned, w.netop.eui)

			type tc struct {
				name   string
				as     *party
				ctype  string
				body   []byte
				status int
				code   string
			}
			tests := []tc{
				{"empty body", w.supplier, "application/octet-stream", nil, 400, "malformed"},
				{"truncated", w.supplier, "application/octet-stream", next[:len(next)/2], 400, "malformed"},
				{"one byte", w.supplier, "application/octet-stream", []byte{0xDF}, 400, "malformed"},
				{"trailing byte", w.supplier, "application/octet-stream", append(bytes.Clone(next), 0x00, 0x00), 400, "malformed"}, // a signature field 00, then one byte too many
				{"date-time length wrong", w.supplier, "application/octet-stream", dtLen, 400, "malformed"},
				{"other-information length past the end", w.supplier, "application/octet-stream", oiLen, 400, "malformed"},
				{"oversized", w.supplier, "application/octet-stream", bytes.Repeat([]byte{0xDF}, 4<<20), 413, "too-large"},
				{"hex that is not hex", w.supplier, "text/plain", []byte("DF09zz"), 400, "malformed"},
				{"JSON instead of GBCS", w.supplier, "application/json", []byte(`{"command":"DF"}`), 415, "unsupported-media-type"},
				{"no content type", w.supplier, "", next, 415, "unsupported-media-type"},
				{"a response, not a command", w.supplier, "application/octet-stream", response, 400, "malformed"},
				{"wrong originator", w.supplier, "application/octet-stream", netopOrig, 403, "originator-mismatch"},
				{"unknown device", w.supplier, "application/octet-stream", unknownTarget, 404, "unknown-device"},
				{"replay", w.supplier, "application/octet-stream", read, 409, "replay"},
				{"lower counter", w.supplier, "application/octet-stream", withCounter(t, read, base-1), 409, "replay"},
				{"counter 2^64-1", w.supplier, "application/octet-stream", withCounter(t, read, 1<<64-1), 409, "counter-ahead"},
				{"counter 2^32+1 above the last", w.supplier, "application/octet-stream", withCounter(t, read, base+1<<32+1), 409, "counter-ahead"},
				{"first command to a meter two days ahead of the clock", w.supplier, "application/octet-stream", withCounter(t, retarget(t, next, m1), base+2*86_400_000), 409, "counter-ahead"},
				{"forged MAC", w.supplier, "application/octet-stream", macd, 400, "malformed"},
				{"critical unsigned", w.supplier, "application/octet-stream", unsigned, 403, "signature"},
				{"critical signed by the network operator's key", w.supplier, "application/octet-stream", signWith(t, unsigned, w.netop.ds), 403, "signature"},
				{"critical signed with the supplier's KA key", w.supplier, "application/octet-stream", signWith(t, unsigned, w.supplier.ka), 403, "signature"},
				{"critical with a flipped signature bit", w.supplier, "application/octet-stream", flippedSig, 403, "signature"},
				{"critical from a role not eligible", w.netop, "application/octet-stream", signWith(t, netopDisconnect, w.netop.ds), 403, "role-not-eligible"},
			}
			before := w.rowCounts(t)
			lastBefore, _, err := w.db.Router().LastCounter(ctx, w.supplier.eui, m0)
			if err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T) {
				t.Helper()
				after := w.rowCounts(t)
				for tb, n := range before {
					if after[tb] != n {
						t.Errorf("%s: %d rows, %d before", tb, after[tb], n)
					}
				}
				if last, _, err := w.db.Router().LastCounter(ctx, w.supplier.eui, m0); err != nil || last != lastBefore {
					t.Errorf("last counter to %s: %d (%v), %d before", m0, last, err, lastBefore)
				}
			}
			run := func(c tc) {
				t.Run(c.name, func(t *testing.T) {
					st, _, pr, err := c.as.post(r.url+"/v1/commands", c.ctype, c.body)
					if err != nil {
						t.Fatalf("%v", err)
					}
					t.Logf("%d %s: %s", st, pr.Code, pr.Detail)
					if st != c.status || pr.Code != c.code || pr.Detail == "" {
						t.Errorf("%d %+v, want %d %q with a detail", st, pr, c.status, c.code)
					}
					check(t)
				})
			}
			for _, c := range tests {
				run(c)
			}

			// A revoked signing certificate: revoked with the CLI, refused
			// at the certificate path stage from the next command on.
			cli(t, "ca", "revoke", "--data", w.data, "--actor", "e2e", "--serial", w.supplier.dsSerial, "--reason", "keyCompromise")
			run(tc{"critical signed by a revoked key", w.supplier, "application/octet-stream", disconnect, 403, "certificate-path"})

			// No client certificate: refused at the TLS handshake.
			t.Run("no client certificate", func(t *testing.T) {
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.roots}}}
				if res, err := c.Post(r.url+"/v1/commands", "application/octet-stream", bytes.NewReader(next)); err == nil {
					res.Body.Close()
					t.Fatalf("answered %s without a client certificate", res.Status)
				}
				check(t)
			})

			fs, err := w.fleetStats()
			if err != nil {
				t.Fatal(err)
			}
			if fs.Executed != 1 || len(fs.Discarded) != 0 {
				t.Errorf("meters executed %d commands and discarded %v, want 1 and none", fs.Executed, fs.Discarded)
			}
		})
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// edit parses raw, applies f and marshals the result.
func edit(t *testing.T, raw []byte, f func(m *commands.Message)) []byte {
	t.Helper()
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func unsign(t *testing.T, raw []byte) []byte {
	return edit(t, raw, func(m *commands.Message) { m.Signature = nil })
}

func reoriginate(t *testing.T, raw []byte, o smki.EUI) []byte {
	return edit(t, raw, func(m *commands.Message) { m.Originator = o })
}

func retarget(t *testing.T, raw []byte, to smki.EUI) []byte {
	return edit(t, raw, func(m *commands.Message) { m.Recipient = to })
}

func recra(t *testing.T, raw []byte, c commands.CRA) []byte {
	return edit(t, raw, func(m *commands.Message) {
		m.CRA = c
		// Only a command can end after its payload; a hostile response
		// carries the signature field 00.
		m.EmptySignatureField = c != commands.Command && !m.Signed() && !m.HasMAC()
	})
}

// withMAC returns raw with a MAC header and a MAC made with a key that is
// not the ACB's: what an attacker who skips the router would send.
func withMAC(t *testing.T, raw []byte) []byte {
	t.Helper()
	k1, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := commands.NewECDHKey(k1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := commands.AddMAC(context.Background(), ka, k2.PublicKey(), m); err != nil {
		t.Fatal(err)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
