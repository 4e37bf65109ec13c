package device

import (
	"errors"
	"testing"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
)

// TestRefusedThenMatchingGood shows, for each refusal the meter must make,
// the refused message and then the matching good one accepted by the same
// meter: only the property under test differs between the two.
func TestRefusedThenMatchingGood(t *testing.T) {
	type msgs struct{ bad, good func(w *world) []byte }
	disable := loadSwitch(t, CodeECS43)
	cin := apdu(t, dlms.CINRequest(testInvoke, []byte("3133")))
	status := apdu(t, dlms.LoadSwitchStatusRequest(testInvoke))
	balance := apdu(t, dlms.MeterBalanceRequest(testInvoke))
	urp := func(w *world) *commands.UnknownRemoteParty {
		return &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: w.counter}
	}
	tests := []struct {
		name string
		want Reason
		msgs
	}{
		{"bad MAC, then the ACB's MAC", ReasonBadMAC, msgs{
			func(w *world) []byte { return first(w.command(CodeECS43, disable, cmdOpts{macBy: w.attacker})) },
			func(w *world) []byte { return first(w.command(CodeECS43, disable, cmdOpts{})) }}},
		{"replayed counter, then a greater one", ReasonReplay, msgs{
			func(w *world) []byte {
				b, _ := w.command(CodeECS45, status, cmdOpts{})
				if _, err := w.meter.Handle(w.ctx, b); err != nil {
					w.t.Fatal(err)
				}
				return b
			},
			func(w *world) []byte {
				return first(w.command(CodeECS45, status, cmdOpts{}))
			}}},
		{"critical command signed by a key not in the anchors, then by the supplier's", ReasonBadSignature, msgs{
			func(w *world) []byte { return first(w.command(CodeECS43, disable, cmdOpts{signer: w.attacker})) },
			func(w *world) []byte { return first(w.command(CodeECS43, disable, cmdOpts{})) }}},
		{"critical command from a party in no anchor, then from the supplier", ReasonUnknownSigner, msgs{
			func(w *world) []byte { return first(w.command(CodeECS43, disable, cmdOpts{from: w.attacker})) },
			func(w *world) []byte { return first(w.command(CodeECS43, disable, cmdOpts{})) }}},
		{"non-critical CIN from the supplier, then from the other user", ReasonRoleNotAllowed, msgs{
			func(w *world) []byte { return first(w.command(CodeECS50, cin, cmdOpts{})) },
			func(w *world) []byte { return first(w.command(CodeECS50, cin, cmdOpts{from: w.acb, urp: urp(w)})) }}},
		{"non-critical balance read from the network operator, then from the supplier", ReasonRoleNotAllowed, msgs{
			func(w *world) []byte { return first(w.command(CodeECS82, balance, cmdOpts{from: w.netop})) },
			func(w *world) []byte { return first(w.command(CodeECS82, balance, cmdOpts{})) }}},
		{"CS02b with a stale sequence number, then a fresh one", ReasonStaleSequence, msgs{
			func(w *world) []byte {
				return first(w.command(0x0107, cs02b(t, asn.SupplierByTransCoS, 1, nil, replaceSupplier(t, w.newSup)...), cmdOpts{from: w.tcos}))
			},
			func(w *world) []byte {
				return first(w.command(0x0107, cs02b(t, asn.SupplierByTransCoS, 2, nil, replaceSupplier(t, w.newSup)...), cmdOpts{from: w.tcos}))
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Electricity)
			bad := tc.bad(w)
			if resp, err := w.meter.Handle(w.ctx, bad); resp != nil || !errors.Is(err, tc.want.Err()) {
				t.Fatalf("bad message: %d-byte response, err = %v; want none and %v", len(resp), err, tc.want)
			}
			good := tc.good(w)
			resp, err := w.meter.Handle(w.ctx, good)
			if err != nil || resp == nil {
				t.Fatalf("good message refused: %v", err)
			}
			s := w.meter.Stats()
			if s.DiscardedFor(tc.want) != 1 || s.TotalDiscarded() != 1 {
				t.Errorf("stats %+v: want exactly one %v discard", s, tc.want)
			}
		})
	}
}
