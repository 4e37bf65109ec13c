package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// Reply is what a device answered to one message: a response, or nothing
// (a discard; a real meter signals it by silence).
type Reply struct {
	// Response is the device's response, whole (segments reassembled);
	// nil when it answered nothing.
	Response []byte
	// Reason is the discard reason the device's endpoint gave, when it
	// gives one ("bad-mac", ...); informative only: the suite judges by
	// the absence of a response, not by the reason.
	Reason string
}

// Transport carries messages to a device under test.
type Transport interface {
	// Send delivers msg to the device eui and returns its reply. An error
	// means the transport failed (the device could not be reached), not
	// that the device refused.
	Send(ctx context.Context, eui smki.EUI, msg []byte) (Reply, error)
}

// HTTPTransport delivers messages by HTTP POST of the GBCS bytes
// (application/octet-stream) to URL/v1/devices/{EUI}/commands, the endpoint
// of package device (docs/api/device.yaml). A 200 with a body is a
// response; a 200 or 204 without body, or a 422 problem (whose code is the
// discard reason), is a discard; anything else is a transport error.
type HTTPTransport struct {
	// URL is the endpoint's base URL, http(s)://host:port.
	URL string
	// Client makes the requests; http.DefaultClient when nil.
	Client *http.Client
}

// Send implements Transport.
func (t *HTTPTransport) Send(ctx context.Context, eui smki.EUI, msg []byte) (Reply, error) {
	u := strings.TrimSuffix(t.URL, "/") + "/v1/devices/" + eui.String() + "/commands"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(msg))
	if err != nil {
		return Reply{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	c := t.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("conformance: POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, device.MaxGFIMessage))
	if err != nil {
		return Reply{}, fmt.Errorf("conformance: reading the answer of %s: %w", u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		if len(body) == 0 {
			return Reply{}, nil
		}
		return reassembled(body)
	case http.StatusUnprocessableEntity:
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(body, &p)
		return Reply{Reason: p.Code}, nil
	default:
		return Reply{}, fmt.Errorf("conformance: POST %s: status %d: %.200s", u, resp.StatusCode, body)
	}
}

func reassembled(b []byte) (Reply, error) {
	if !commands.IsBlockTransfer(b) {
		return Reply{Response: b}, nil
	}
	whole, err := commands.ReassembleStream(b)
	if err != nil {
		return Reply{}, fmt.Errorf("conformance: the device's segmented response: %w", err)
	}
	return Reply{Response: whole}, nil
}

// GFITransport delivers messages over TCP in the GFI text framing
// (gbcs-security.md section 12): one data line per message, segment 0. The
// device answers with data lines (segment 0, or segments 1 to n of a general
// block transfer), with a metertrust discard notice (device.GFIDiscardPrefix),
// or with silence, which the transport waits Timeout for.
type GFITransport struct {
	// Addr is the device's host:port.
	Addr string
	// Timeout is how long silence lasts before it counts as a discard; 2
	// seconds when 0.
	Timeout time.Duration

	conn net.Conn
	r    *bufio.Reader
}

// Send implements Transport.
func (t *GFITransport) Send(ctx context.Context, _ smki.EUI, msg []byte) (Reply, error) {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if t.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", t.Addr)
		if err != nil {
			return Reply{}, fmt.Errorf("conformance: GFI: %w", err)
		}
		t.conn, t.r = c, bufio.NewReaderSize(c, 64<<10)
	}
	fail := func(err error) (Reply, error) {
		t.Close()
		return Reply{}, fmt.Errorf("conformance: GFI %s: %w", t.Addr, err)
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := t.conn.Write(device.AppendGFI(nil, 0, msg)); err != nil {
		return fail(err)
	}
	var segs [][]byte
	for {
		_ = t.conn.SetReadDeadline(time.Now().Add(timeout))
		f, err := device.ReadGFI(t.r)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout() && len(segs) == 0:
			// Silence: the device discarded the message. The connection
			// stays usable only if nothing was half read; start afresh.
			t.Close()
			return Reply{}, nil
		case err != nil:
			return fail(err)
		case f.Discard != "":
			return Reply{Reason: f.Discard}, nil
		case f.Segment == 0 && len(segs) == 0:
			return Reply{Response: f.Message}, nil
		case f.Segment != len(segs)+1:
			return fail(fmt.Errorf("segment %d after %d segments", f.Segment, len(segs)))
		}
		segs = append(segs, f.Message)
		b, err := commands.ParseBlock(f.Message)
		if err != nil {
			return fail(err)
		}
		if b.Last {
			whole, err := commands.Reassemble(segs)
			if err != nil {
				return fail(err)
			}
			return Reply{Response: whole}, nil
		}
	}
}

// Close closes the transport's connection, if any.
func (t *GFITransport) Close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn, t.r = nil, nil
	return err
}
