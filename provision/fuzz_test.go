package provision_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/provision"
)

// FuzzRead feeds outside bytes to Read, in both modes: no panic; a refusal
// wraps ErrFormat, ErrLimit or ErrEntry; an accepted file has as many
// entries and refusals as its header says, and every entry's requests name
// its EUI-64.
func FuzzRead(f *testing.F) {
	good := readFile(f, "devices.jsonl")
	f.Add(good)
	lines := strings.SplitAfter(string(good), "\n")
	f.Add([]byte(lines[0]))
	f.Add([]byte(lines[0] + lines[1] + lines[1]))
	f.Add([]byte(strings.Replace(string(good), "ESME", "IHD", 1)))
	f.Add([]byte(strings.Replace(string(good), `"devices":3`, `"devices":2`, 1)))
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add([]byte(`{"format":"metertrust-provisioning/1","manufacturer":"90B3D51F300A0001","created":"2026-11-30T09:00:00Z","devices":1}` +
		"\n" + `{"eui":"00DB123456780001","deviceType":"GSME","csrs":["MA=="]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := provision.Options{MaxLineBytes: 4096, MaxDevices: 16, MaxBytes: 1 << 16}
		for _, skip := range []bool{false, true} {
			opts.SkipBad = skip
			file, err := provision.Read(bytes.NewReader(data), opts)
			if err != nil {
				if !errors.Is(err, provision.ErrFormat) && !errors.Is(err, provision.ErrLimit) && !errors.Is(err, provision.ErrEntry) {
					t.Fatalf("refusal of unknown kind: %v", err)
				}
				if skip && errors.Is(err, provision.ErrEntry) {
					t.Fatalf("skip-bad mode failed on an entry: %v", err)
				}
				continue
			}
			if len(file.Entries)+len(file.Refused) != file.Header.Devices {
				t.Fatalf("%d entries + %d refused, header says %d", len(file.Entries), len(file.Refused), file.Header.Devices)
			}
			if !skip && len(file.Refused) > 0 {
				t.Fatalf("refusals without skip-bad")
			}
			for _, e := range file.Entries {
				for _, c := range e.CSRs {
					if c.EUI != e.EUI {
						t.Fatalf("line %d: request for %s in entry %s", e.Line, c.EUI, e.EUI)
					}
				}
			}
		}
	})
}
