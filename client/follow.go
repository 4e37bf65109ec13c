package client

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// The kinds of delivery.
const (
	// KindResponse is a device's response to one of the user's commands.
	KindResponse = "response"
	// KindFailure is a command the router could not deliver, for good.
	KindFailure = "failure"
	// KindAlert is an alert a device raised for the user.
	KindAlert = "alert"
)

// Delivery is what reaches the user: a device response, a failure or a
// device alert, numbered (Seq) in the user's own sequence.
type Delivery struct {
	Seq       int64
	CommandID string
	Kind      string
	// Body is the GBCS message (a response or an alert), to check and
	// read with Open.
	Body   []byte
	Detail string
	At     time.Time
	// Alert is set on a device alert (Kind KindAlert): the router's reading
	// of its header. OpenAlert checks it against the device's signature.
	Alert *AlertInfo
}

// AlertInfo is what the router says of a device alert it delivers: the
// device, the alert's message code and the device's own counter, the header
// recipient, and whether the router rerouted it to the user, the device's
// current supplier, because the recipient no longer is (decision 018).
type AlertInfo struct {
	Device    smki.EUI `json:"device"`
	Code      string   `json:"messageCode"`
	Counter   uint64   `json:"counter"`
	Recipient smki.EUI `json:"recipient"`
	Rerouted  bool     `json:"rerouted"`
}

// UnmarshalJSON reads a delivery as the router sends it, its body in hex.
func (d *Delivery) UnmarshalJSON(b []byte) error {
	var v struct {
		Seq       int64      `json:"seq"`
		CommandID string     `json:"commandId"`
		Kind      string     `json:"kind"`
		Body      string     `json:"body"`
		Detail    string     `json:"detail"`
		At        time.Time  `json:"at"`
		Alert     *AlertInfo `json:"alert"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	body, err := hex.DecodeString(v.Body)
	if err != nil {
		return fmt.Errorf("client: delivery %d: body is not hex: %w", v.Seq, err)
	}
	*d = Delivery{Seq: v.Seq, CommandID: v.CommandID, Kind: v.Kind, Body: body, Detail: v.Detail, At: v.At, Alert: v.Alert}
	return nil
}

// Responses returns up to limit (1 to 1000) of the user's deliveries after
// cursor (0 for the first), oldest first, and the cursor to ask from next.
// A limit out of range is ErrBadRequest.
func (c *Client) Responses(ctx context.Context, after int64, limit int) ([]Delivery, int64, error) {
	var page struct {
		Deliveries []Delivery `json:"deliveries"`
		Next       int64      `json:"next"`
	}
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if err := c.call(ctx, http.MethodGet, "/v1/responses", q, "", nil, &page); err != nil {
		return nil, after, err
	}
	next := max(page.Next, after)
	for _, d := range page.Deliveries {
		next = max(next, d.Seq)
	}
	return page.Deliveries, next, nil
}

// Command is the router's record of one of the user's commands.
type Command struct {
	ID       string    `json:"id"`
	Target   string    `json:"target"`
	Counter  uint64    `json:"counter"`
	Code     string    `json:"messageCode"`
	Ref      string    `json:"serviceReference"`
	State    string    `json:"state"`
	Accepted time.Time `json:"accepted"`
	Updated  time.Time `json:"updated"`
	Error    string    `json:"error,omitempty"`
}

// Command returns the router's record of one of the user's commands;
// another user's, or none, is ErrNotFound.
func (c *Client) Command(ctx context.Context, id string) (Command, error) {
	var out Command
	err := c.call(ctx, http.MethodGet, "/v1/commands/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// Wait waits for the delivery of command id (its response, or its failure)
// among the deliveries after cursor, polling until ctx ends; it then
// returns an error wrapping ctx's. A refusal of the polling is returned as
// it is (an *Error).
func (c *Client) Wait(ctx context.Context, id string, after int64) (Delivery, error) {
	for {
		ds, next, err := c.Responses(ctx, after, 1000)
		if err != nil {
			return Delivery{}, err
		}
		for _, d := range ds {
			if d.CommandID == id {
				return d, nil
			}
		}
		after = next
		if len(ds) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return Delivery{}, fmt.Errorf("client: no delivery for command %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Event is one event of the user's stream: a delivery (responses,
// failures and device alerts, with an ID to resume from) or an anomaly
// alert about the user's own commands (Alert, the JSON the router sends;
// these have no ID and are not replayed after a reconnection).
type Event struct {
	// ID is the delivery's sequence number, as the stream sends it.
	ID       string
	Kind     string
	Delivery *Delivery
	Alert    json.RawMessage
}

// Watch follows the user's event stream, calling fn with each event in
// order, until ctx ends (it then returns ctx's error) or fn returns an
// error (returned). since is the ID of the last event already handled (""
// for all). When the connection breaks, goes silent for longer than
// StreamIdle (the router sends a heartbeat well within it) or the router
// answers 429 or 5xx (a restart), Watch reconnects after a pause growing to
// 30 s and resumes after the last event fn handled, so nothing is missed or
// repeated. Another refusal (an *Error: the certificate refused, ...) or an
// event it cannot read ends it.
func (c *Client) Watch(ctx context.Context, since string, fn func(Event) error) error {
	pause := time.Second
	for {
		err := c.watchOnce(ctx, &since, fn, func() { pause = time.Second })
		var rerr *Error
		var ferr fnError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ferr):
			return ferr.err
		case errors.As(err, &rerr) && rerr.Status != http.StatusTooManyRequests && rerr.Status < 500:
			return err
		case errors.Is(err, errBadEvent):
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// StreamIdle is how long Watch waits for anything on the stream (an event
// or the router's heartbeat) before it takes the connection for dead and
// reconnects.
const StreamIdle = 2 * time.Minute

// errBadEvent marks an event Watch cannot read: reconnecting would read it
// again.
var errBadEvent = errors.New("client: unreadable event")

// fnError carries an error of Watch's callback out of the stream.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// watchOnce reads one connection of the stream.
func (c *Client) watchOnce(ctx context.Context, since *string, fn func(Event) error, connected func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A connection silent for StreamIdle is dead: cancel it.
	idle := time.AfterFunc(StreamIdle, cancel)
	defer idle.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.router.JoinPath("/v1/events").String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *since != "" {
		req.Header.Set("Last-Event-ID", *since)
	}
	res, err := c.stream.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return errorOf(res.StatusCode, b)
	}
	connected()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, maxAnswer)
	var id, kind string
	var data strings.Builder
	for sc.Scan() {
		idle.Reset(StreamIdle)
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				id, kind = "", ""
				continue
			}
			ev := Event{ID: id, Kind: kind}
			if kind == "alert" && id == "" {
				ev.Alert = json.RawMessage(data.String())
			} else {
				var d Delivery
				if err := json.Unmarshal([]byte(data.String()), &d); err != nil {
					return fmt.Errorf("%w %s: %w", errBadEvent, id, err)
				}
				ev.Delivery = &d
			}
			if err := fn(ev); err != nil {
				return fnError{err}
			}
			if id != "" {
				*since = id
			}
			id, kind = "", ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len()+len(line) > maxAnswer {
				return fmt.Errorf("%w: an event over %d bytes", errBadEvent, maxAnswer)
			}
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("client: event stream closed")
}
