package device

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands/asn"
)

// TestLogsHoldNoSecrets runs refusals, reads and a re-key with a debug
// logger and checks the records say what happened without any private key,
// shared secret or derived key in them.
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	w := newWorld(t, Electricity)
	m, err := New(Identity{EUI: w.dev.eui, Kind: Electricity, Signer: w.dev.ds, KeyAgreement: w.dev.ka}, w.anchors,
		Config{Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	w.meter = m
	for _, b := range [][]byte{
		first(w.command(CodeECS43, loadSwitch(t, CodeECS43), cmdOpts{macBy: w.attacker})),
		first(w.command(CodeECS43, loadSwitch(t, CodeECS43), cmdOpts{signer: w.attacker})),
		first(w.command(CodeECS17b, apdu(t, importEnergyRequest(w, w.supplier)), cmdOpts{})),
		first(w.command(CodeCS02c, asnBytes(t, &asn.IssueSecurityCredentialsCommand{KeyUsage: asn.NewKeyUsage(asn.KeyAgreement)}), cmdOpts{})),
	} {
		_, _ = m.Handle(w.ctx, b)
	}
	out := buf.String()
	for _, want := range []string{`"msg":"discarded message"`, `"reason":"bad-mac"`, `"reason":"bad-signature"`, `"msg":"new device key pair generated"`, `"component":"device"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	z, _ := w.dev.ka.ECDH(context.Background(), w.acb.ka.PublicKey())
	zs, _ := w.dev.ka.ECDH(context.Background(), w.supplier.ka.PublicKey())
	secrets := map[string][]byte{"device DS key": w.dev.ds.D.Bytes(), "device KA key": w.dev.kaS.D.Bytes(), "Z with the ACB": z, "Z with the supplier": zs}
	for name, s := range secrets {
		for _, form := range []string{hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)), base64.StdEncoding.EncodeToString(s)} {
			if strings.Contains(out, form) {
				t.Errorf("log holds the %s", name)
			}
		}
	}
}
