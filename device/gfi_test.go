package device

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands/dlms"
)

func TestGFIFraming(t *testing.T) {
	line := AppendGFI(nil, 0, []byte{0xDD, 0x00, 0xAB})
	if string(line) != "GBCS:DATA#0:3:DD00AB\r\n" {
		t.Fatalf("AppendGFI = %q", line)
	}
	f, err := ReadGFI(bufio.NewReader(bytes.NewReader(line)))
	if err != nil || f.Segment != 0 || !bytes.Equal(f.Message, []byte{0xDD, 0x00, 0xAB}) {
		t.Fatalf("ReadGFI = %+v, %v", f, err)
	}
	for _, bad := range []string{
		"GBCS:DATA#0:3:DD00\r\n",     // length says 3, hex has 2
		"GBCS:DATA#0:03:DD00AB\r\n",  // leading zero
		"GBCS:DATA#0:3:dd00ab\r\n",   // lower case
		"GBCS:DATA#0:3:DD00AB \r\n",  // anything else on the line
		"GBCS:DATA#-1:3:DD00AB\r\n",  // signed segment
		"GBCS:DATA#0:3:DD00AB\n",     // no CR
		"HELLO\r\n",                  // not a GFI line
		"GBCS:DATA#0:3:DD00AB",       // not ended
		"GBCS:DATA#0:2000000:AB\r\n", // over the limit
	} {
		if _, err := ReadGFI(bufio.NewReader(strings.NewReader(bad))); !errors.Is(err, ErrGFI) {
			t.Errorf("%q: err = %v, want ErrGFI", bad, err)
		}
	}
}

func FuzzGFILine(f *testing.F) {
	f.Add("GBCS:DATA#0:3:DD00AB")
	f.Add("GBCS:DATA#2:1:E0")
	f.Add("GBCS:DISCARD:bad-mac")
	f.Fuzz(func(t *testing.T, line string) {
		fr, err := ParseGFILine(line)
		if err != nil || fr.Discard != "" {
			return
		}
		// A line that parses is written back exactly.
		if got := string(AppendGFI(nil, fr.Segment, fr.Message)); got != line+"\r\n" {
			t.Fatalf("%q parsed to %+v, written back as %q", line, fr, got)
		}
	})
}

// TestGFIServer serves a meter over GFI: a command is answered with a data
// line, the same command again with a discard notice (replay), a malformed
// line with "malformed", and the connection stays usable throughout.
func TestGFIServer(t *testing.T) {
	w := newWorld(t, Electricity)
	f := NewFleet(Config{Now: func() time.Time { return w.now }})
	if _, err := f.Add(Provision{Identity: Identity{EUI: w.dev.eui, Kind: Electricity, Signer: w.dev.ds, KeyAgreement: w.dev.ka}}, w.anchors); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&GFIServer{Fleet: f}).Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	exchange := func(line []byte) GFIFrame {
		t.Helper()
		if _, err := c.Write(line); err != nil {
			t.Fatal(err)
		}
		fr, err := ReadGFI(r)
		if err != nil {
			t.Fatal(err)
		}
		return fr
	}
	b, cmd := w.command(CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{})
	fr := exchange(AppendGFI(nil, 0, b))
	if fr.Discard != "" || fr.Segment != 0 {
		t.Fatalf("command answered %+v", fr)
	}
	w.open(fr.Message, cmd, w.supplier)
	if fr := exchange(AppendGFI(nil, 0, b)); fr.Discard != "replay" {
		t.Errorf("replay answered %+v", fr)
	}
	if fr := exchange([]byte("GBCS:DATA#0:2:ABC\r\n")); fr.Discard != "malformed" {
		t.Errorf("malformed line answered %+v", fr)
	}
	b, _ = w.command(CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{})
	if fr := exchange(AppendGFI(nil, 0, b)); fr.Discard != "" {
		t.Errorf("fresh command after errors answered %+v", fr)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
