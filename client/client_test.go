package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/inproc"
)

// system starts metertrust in one process (router and repository on
// loopback listeners, two meters) and returns it with the supplier's
// client.
func system(t *testing.T) (*inproc.System, *client.Client) {
	t.Helper()
	ctx := context.Background()
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 2, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	sup := sys.Party(inproc.PartySupplier)
	c, err := client.New(client.Config{Router: sys.RouterURL, Repository: sys.RepositoryURL,
		TLS:    &tls.Config{RootCAs: sys.DCCKIRoots, Certificates: []tls.Certificate{*sup.TLS}, ServerName: "localhost"},
		Signer: sup.DS, KeyAgreement: sup.KA})
	if err != nil {
		t.Fatal(err)
	}
	return sys, c
}

// TestSendAndOpen reads a meter's registers (not critical), waits for the
// response and opens it: the MAC checked under the supplier's key, the
// ciphered block decrypted; then disconnects it (critical: signed by the
// supplier) and sends the same signed command again, refused as a replay.
func TestSendAndOpen(t *testing.T) {
	sys, c := system(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meter := sys.Meters[0]
	if c.EUI() != inproc.EUISupplier || c.Role() != "IS" {
		t.Errorf("client is %s/%s, want the supplier", c.EUI(), c.Role())
	}
	rc, err := c.Send(ctx, "4.1.1", meter, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Wait(ctx, rc.ID, 0)
	if err != nil || d.Kind != client.KindResponse {
		t.Fatalf("Wait = %+v, %v", d, err)
	}
	r, err := c.Open(ctx, d.Body)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if r.Message.Originator != meter || len(r.Plaintexts) != 1 {
		t.Fatalf("response from %s with %d plaintexts", r.Message.Originator, len(r.Plaintexts))
	}
	if _, err := dlms.ParseData(r.Plaintexts[0]); err != nil {
		t.Errorf("the decrypted register read: %v", err)
	}

	pc, err := c.ServiceRequest(ctx, "7.2", meter, nil)
	if err != nil || !pc.Critical {
		t.Fatalf("7.2 pre-command: %+v, %v", pc, err)
	}
	signed, err := c.Sign(pc)
	if err != nil {
		t.Fatal(err)
	}
	rc, err = c.Submit(ctx, signed)
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err := c.Command(ctx, rc.ID); err != nil || cmd.Ref != "7.2" {
		t.Errorf("Command = %+v, %v", cmd, err)
	}
	_, err = c.Submit(ctx, signed)
	var e *client.Error
	if !errors.Is(err, client.ErrReplay) || !errors.As(err, &e) || e.Status != 409 {
		t.Errorf("the same command again: %v, want a replay refusal", err)
	}
	// A signed command whose counter the router did not give is not
	// signed by the client.
	pc.Counter++
	if _, err := c.Sign(pc); err == nil {
		t.Error("signed a command that is not what the router announced")
	}
}

// TestWatch follows the event stream: each response arrives once, and a
// second Watch from the last event's ID sees only what came after it.
func TestWatch(t *testing.T) {
	sys, c := system(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := c.Send(ctx, "4.1.1", sys.Meters[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	errDone := errors.New("done")
	err = c.Watch(ctx, "", func(ev client.Event) error {
		if ev.Delivery != nil && ev.Delivery.CommandID == first.ID {
			last = ev.ID
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) || last == "" {
		t.Fatalf("Watch = %v, last event %q", err, last)
	}
	second, err := c.Send(ctx, "4.1.1", sys.Meters[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	err = c.Watch(ctx, last, func(ev client.Event) error {
		if ev.Delivery != nil {
			seen = append(seen, ev.Delivery.CommandID)
			if ev.Delivery.CommandID == second.ID {
				return errDone
			}
		}
		return nil
	})
	if !errors.Is(err, errDone) || len(seen) != 1 || seen[0] != second.ID {
		t.Errorf("resumed Watch saw %q (%v), want only %s", seen, err, second.ID)
	}
}
