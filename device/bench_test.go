package device

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// BenchmarkHandleCritical measures one critical command (ECS43, disable
// supply) end to end: parse, MAC check, counter, signature check,
// execution, then a signed response.
func BenchmarkHandleCritical(b *testing.B) {
	w := newWorld(b, Electricity)
	payload := loadSwitch(b, CodeECS43)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i], _ = w.command(CodeECS43, payload, cmdOpts{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := w.meter.Handle(w.ctx, msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawCryptoCritical is the cryptography BenchmarkHandleCritical
// cannot avoid, done directly with package commands: the command's MAC
// (ECDH, KDF, GMAC), its signature (ECDSA verify), and the response's
// signature (ECDSA sign).
func BenchmarkRawCryptoCritical(b *testing.B) {
	w := newWorld(b, Electricity)
	_, cmd := w.command(CodeECS43, loadSwitch(b, CodeECS43), cmdOpts{})
	resp := &commands.Message{CRA: commands.Response, Counter: cmd.Counter, Originator: w.meter.EUI(), Recipient: cmd.Originator,
		Code: cmd.Code, Payload: apdu(b, dlms.NewActionResponse(testInvoke, 0))}
	acbKA := w.acb.ka.PublicKey()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := commands.CheckMAC(w.ctx, w.dev.ka, acbKA, cmd); err != nil {
			b.Fatal(err)
		}
		if err := commands.VerifySignature(&w.supplier.ds.PublicKey, cmd); err != nil {
			b.Fatal(err)
		}
		if err := commands.Sign(rand.Reader, w.dev.ds, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleSensitiveRead measures a non-critical register read whose
// response is encrypted: MAC check, execution, encryption and MAC.
func BenchmarkHandleSensitiveRead(b *testing.B) {
	w := newWorld(b, Electricity)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i], _ = w.command(CodeECS17b, apdu(b, dlms.ImportEnergyRequest(testInvoke, pp(w, w.supplier.eui))), cmdOpts{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := w.meter.Handle(w.ctx, msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFleetDeliverParallel delivers non-critical status reads to 64
// meters of a fleet from GOMAXPROCS goroutines, as the router's in-process
// transport does.
func BenchmarkFleetDeliverParallel(b *testing.B) {
	w := newWorld(b, Electricity)
	f := NewFleet(Config{})
	euis, err := f.Generate(context.Background(), 64, smki.MustParseEUI("0012A3FFFE400000"), Electricity, w.anchors)
	if err != nil {
		b.Fatal(err)
	}
	type item struct {
		eui smki.EUI
		msg []byte
	}
	payload := apdu(b, dlms.LoadSwitchStatusRequest(testInvoke))
	items := make([]item, b.N)
	for i := range items {
		eui := euis[i%len(euis)]
		m, _ := f.Meter(eui)
		items[i] = item{eui, buildFor(b, w, m, CodeECS45, payload, uint64(i+1))}
	}
	var next, refused atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			it := items[next.Add(1)-1]
			// Counters rise per meter, but a goroutine that falls 64 items
			// behind another may deliver an older counter to the same
			// meter: a replay refusal, counted and reported.
			if _, err := f.Deliver(context.Background(), it.eui, it.msg); err != nil {
				refused.Add(1)
			}
		}
	})
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
}
