package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServicesSayWhichKeys starts "serve router" and "serve fleet" and
// reads the line each logs at start naming every private key it holds: the
// router holds the ACB's key-agreement key and its DCCKI TLS server key, and
// nothing else (no CA key, though they sit in the same data directory); the
// fleet holds its meters' own keys and no CA or ACB key.
func TestServicesSayWhichKeys(t *testing.T) {
	needBinary(t)
	w := newWorld(t, "sqlite", 2)

	r := w.startRouter(t, "router", "", "--log-level", "info")
	keys := keysLoaded(t, r.proc)
	want := []string{"acb-key-agreement " + w.acb.keyFiles["ka"], "dccki-tls-server " + w.srvKey}
	if !slices.Equal(keys, want) {
		t.Errorf("router holds %q, want %q", keys, want)
	}

	f := start(t, "fleet-info", append(w.fleetArgs, "--listen", freeAddr(t), "--log-level", "info")...)
	keys = keysLoaded(t, f)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "meters 2 ") {
		t.Errorf("fleet holds %q, want only its 2 meters' own keys", keys)
	}
	for _, k := range append(keys, want...) {
		if strings.Contains(k, "pin-value=") && !strings.Contains(k, "pin-value=REDACTED") {
			t.Errorf("a PIN in the log: %q", k)
		}
	}
}

// keysLoaded waits for p's "keys loaded" log line and returns its keys.
func keysLoaded(t *testing.T, p *proc) []string {
	t.Helper()
	var keys []string
	eventually(t, 20*time.Second, p.name+" says its keys", func() error {
		if p.exited() {
			t.Fatalf("%s exited: %v", p.name, p.err)
		}
		f, err := os.Open(p.log)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Msg  string   `json:"msg"`
				Keys []string `json:"keys"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "keys loaded" {
				keys = line.Keys
				return nil
			}
		}
		return os.ErrNotExist
	})
	return keys
}
