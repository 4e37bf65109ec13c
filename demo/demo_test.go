package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/inproc"
)

// TestRun tells the whole story on a small batch and checks every number
// of the summary against what the story must have done: the supplier's 11
// commands and the third party's one are accepted, forwarded and executed;
// of the attack, the threshold less the supplier's 3 earlier
// disconnections go through and the rest are quarantined, then deleted by
// the operator; one refusal of each kind.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		meters, attack, threshold int
		keep                      bool
	}{
		{name: "full attack", meters: 10, attack: DefaultAttack, threshold: DefaultThreshold},
		{name: "kept data dir, attack under threshold", meters: StoryMeters, attack: 5, threshold: 20, keep: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, logs bytes.Buffer
			opts := Options{Meters: tc.meters, Attack: tc.attack, Threshold: tc.threshold, Out: &out,
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			if tc.keep {
				opts.DataDir = filepath.Join(t.TempDir(), "data")
			}
			sum, err := Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			checkJSONLog(t, logs.Bytes())
			const storyCommands = 3 + 1 + 3 + 3 + 1 + 2 + 3 + 2 + 2 // reads, profile, disconnects, reconnects, replayed reconnect, CIN, third party, its 13 months, CS02b and the new supplier's disconnection, the rotation's CS02b and the disconnection signed with the new key
			wantAttackAccepted := min(tc.attack, tc.threshold-StoryMeters)
			want := AttackSummary{Threshold: tc.threshold, Before: StoryMeters, Sent: tc.attack,
				Accepted: wantAttackAccepted, Quarantined: tc.attack - wantAttackAccepted}
			if sum.Attack != want {
				t.Errorf("attack %+v, want %+v", sum.Attack, want)
			}
			if sum.Failed != 0 || sum.Accepted != storyCommands+want.Accepted || sum.Forwarded != sum.Accepted || sum.Executed != uint64(sum.Accepted)+1 {
				t.Errorf("accepted %d, forwarded %d, executed %d, failed %d; want %d each, none failed", sum.Accepted, sum.Forwarded, sum.Executed, sum.Failed, storyCommands+want.Accepted)
			}
			if sum.Quarantined != want.Quarantined || sum.QuarantineDeleted != want.Quarantined {
				t.Errorf("quarantined %d, deleted %d; want %d", sum.Quarantined, sum.QuarantineDeleted, want.Quarantined)
			}
			if want.Quarantined > 0 && sum.Alerts < 1 {
				t.Errorf("no alert reached the supplier's event stream")
			}
			// The meters executed one command more than the router accepted:
			// the thief's forged read on the stolen meter.
			if st := sum.Stolen; !st.OpenedOwn || !st.RefusedOther {
				t.Errorf("stolen meter %+v", st)
			}
			if sw := sum.Switch; sw.Outcome != "applied" || !sw.RefusedByRouter || !sw.RefusedByMeter || !sw.NewSupplierExecuted ||
				sw.To != SwitchSupplier.EUI.String() {
				t.Errorf("change of supplier %+v", sw)
			}
			if rt := sum.Rotate; rt.Outcome != "applied" || !rt.NewKeyExecuted || !rt.OldKeyRefused || rt.NewKeyID == "" || rt.NewKeyID == rt.OldKeyID {
				t.Errorf("key rotation %+v", rt)
			}
			// 13 months of half hours less the one in progress: three reads
			// of at most 168 days, in order, the third party's alone.
			if h := sum.History; h.Requests != 3 || h.Intervals != int(h.To.Sub(h.From)/(30*time.Minute)) || h.Intervals < 18900 ||
				h.From.Before(h.To.AddDate(0, -13, 0)) || h.Largest > 0xFFFF || !h.RefusedEarlier ||
				!h.RouterCannotRead || !h.SupplierCannotRead || !h.StoredWithoutPlaintext || h.Bytes < 8*h.Intervals {
				t.Errorf("third party's history %+v", h)
			}
			wantRefused := map[string]int{"replay": 1, "role-not-eligible": 1, "signature": 2, "not-owner": 2, "consent-period": 1}
			if !maps.Equal(sum.Refused, wantRefused) {
				t.Errorf("refused %v, want %v", sum.Refused, wantRefused)
			}
			orgs := 0
			for _, p := range append(inproc.DefaultParties(), SwitchSupplier) {
				orgs += len(p.Usages)
			}
			if len(sum.OrgCertificates) != orgs || sum.DeviceCerts != 2*tc.meters || sum.Meters != tc.meters {
				t.Errorf("%d org and %d device certificates for %d meters", len(sum.OrgCertificates), sum.DeviceCerts, sum.Meters)
			}
			if sum.Verified != orgs+2*tc.meters-1 || !sum.RefusedRevoked || sum.CRLEntries != 1 ||
				sum.OCSPRevoked != "revoked" || sum.OCSPGood != "good" {
				t.Errorf("revocation: verified %d, refused revoked %v, CRL entries %d, OCSP %s/%s",
					sum.Verified, sum.RefusedRevoked, sum.CRLEntries, sum.OCSPRevoked, sum.OCSPGood)
			}
			if sum.BatchKey != "destroyed" || !sum.AuditChainIntact || sum.AuditEntries == 0 {
				t.Errorf("batch key %q, audit chain %v of %d entries", sum.BatchKey, sum.AuditChainIntact, sum.AuditEntries)
			}

			story := out.String()
			steps := regexp.MustCompile(`(?m)^\s*(\d+)\. `).FindAllStringSubmatch(story, -1)
			for i, s := range steps {
				if s[1] != strconv.Itoa(i+1) {
					t.Errorf("step %d numbered %s", i+1, s[1])
				}
			}
			if len(steps) < 15 {
				t.Errorf("%d numbered steps:\n%s", len(steps), story)
			}
			for _, must := range []string{"key destroyed", "chain verified", "cannot read it", "quarantine"} {
				if !strings.Contains(story, must) {
					t.Errorf("the story never says %q", must)
				}
			}
			if tc.keep {
				if sum.DataDir != opts.DataDir {
					t.Errorf("data dir %q, want %q", sum.DataDir, opts.DataDir)
				}
				if _, err := os.Stat(filepath.Join(opts.DataDir, "metertrust.db")); err != nil {
					t.Errorf("kept data dir: %v", err)
				}
				// A second run on the same directory is refused: the
				// story needs a fresh system.
				if _, err := Run(context.Background(), opts); !errors.Is(err, inproc.ErrConfig) {
					t.Errorf("second run on %s: %v, want inproc.ErrConfig", opts.DataDir, err)
				}
			}
		})
	}
}

func TestRunOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"too few meters", Options{Meters: StoryMeters - 1}},
		{"negative attack", Options{Meters: 5, Attack: -1}},
		{"threshold below the story's disconnections", Options{Meters: 5, Threshold: StoryMeters - 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.opts); !errors.Is(err, inproc.ErrConfig) {
				t.Errorf("Run: %v, want inproc.ErrConfig", err)
			}
		})
	}
}

func TestWriteSummary(t *testing.T) {
	s := Summary{Meters: 1000, Accepted: 59, Quarantined: 453, Refused: map[string]int{"replay": 1, "signature": 2},
		Attack: AttackSummary{Threshold: 50, Before: 3, Sent: 500, Accepted: 47, Quarantined: 453}, BatchKey: "destroyed"}
	var b bytes.Buffer
	if err := WriteTable(&b, s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	width := len(lines[1])
	for _, l := range lines[2:] {
		if len(l) != width {
			t.Errorf("line %q is %d wide, want %d (aligned)", l, len(l), width)
		}
	}
	for _, want := range []string{"refused", "  replay", "  signature", "attack: quarantined"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if !regexp.MustCompile(`(?m)^refused +3$`).MatchString(b.String()) {
		t.Errorf("refused total is not 3:\n%s", b.String())
	}
	b.Reset()
	if err := WriteJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Attack != s.Attack || back.Refused["signature"] != 2 || back.Quarantined != 453 {
		t.Errorf("JSON round trip: %+v", back)
	}
}

// checkJSONLog fails unless every line of log is one JSON object whose keys
// are not repeated at any level: a repeated key ("component" given by the
// caller and again by the package) is kept or dropped at the whim of
// whatever reads the log.
func checkJSONLog(t *testing.T, log []byte) {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	if len(lines) < 10 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for i, line := range lines {
		if err := uniqueKeys(json.NewDecoder(bytes.NewReader(line))); err != nil {
			t.Errorf("log line %d: %v: %s", i+1, err, line)
		}
	}
}

// uniqueKeys reads one JSON value from d and reports a key repeated within
// one of its objects.
func uniqueKeys(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q repeated", key)
			}
			seen[key] = true
			if err := uniqueKeys(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	case json.Delim('['):
		for d.More() {
			if err := uniqueKeys(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	}
	return nil
}
