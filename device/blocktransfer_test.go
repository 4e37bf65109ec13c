package device

import (
	"bytes"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
)

// TestLargeResponseSegmented: a response larger than MaxMessage leaves the
// meter as general block transfer segments, back to back, none larger than
// MaxMessage plus the block header, which reassemble into the response a
// meter with no limit sends.
func TestLargeResponseSegmented(t *testing.T) {
	w := newWorld(t, Electricity)
	small, err := New(Identity{EUI: w.dev.eui, Kind: Electricity, Signer: w.dev.ds, KeyAgreement: w.dev.ka}, w.anchors,
		Config{Now: func() time.Time { return w.now }, MaxMessage: 200})
	if err != nil {
		t.Fatal(err)
	}
	w.meter = small
	raw, cmd := w.command(CodeECS22b, profileRequest(t, w, w.supplier, testNow.Add(-24*time.Hour), testNow), cmdOpts{})
	resp, err := small.Handle(w.ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !commands.IsBlockTransfer(resp) {
		t.Fatalf("a %d-byte response was not segmented", len(resp))
	}
	segs, err := commands.SplitSegments(resp)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 2 {
		t.Fatalf("%d segments", len(segs))
	}
	for i, s := range segs {
		if len(s) > 200+10 {
			t.Errorf("segment %d of %d bytes", i, len(s))
		}
	}
	whole, err := commands.ReassembleStream(resp)
	if err != nil {
		t.Fatal(err)
	}
	r := w.open(whole, cmd, w.supplier)
	if pts := w.plaintexts(r, w.supplier); len(pts) != 1 || len(pts[0]) < 48*8 {
		t.Fatalf("reassembled profile: %d blocks", len(pts))
	}
	// A response within the limit goes whole.
	raw, _ = w.command(CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{})
	if resp, err := small.Handle(w.ctx, raw); err != nil || commands.IsBlockTransfer(resp) || bytes.HasPrefix(resp, []byte{0xE0}) {
		t.Fatalf("a small response: %v, segmented %t", err, commands.IsBlockTransfer(resp))
	}
}
