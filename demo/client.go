package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// ErrAPI is returned when a service answers something the demo did not
// expect; the message names the call and the answer.
var ErrAPI = errors.New("demo: unexpected answer")

// maxBody bounds what the demo reads of an answer.
const maxBody = 8 << 20

// userClient is a DCC user calling the router's API over mutual TLS, as a
// real user's system would: the DUIS two-step (service request, sign when
// critical, submit), then responses by polling.
type userClient struct {
	base   string
	http   *http.Client
	eui    smki.EUI
	signer crypto.Signer
	rand   io.Reader

	mu     sync.Mutex
	cursor int64
	seen   map[string]router.Delivery
	// useCases counts the responses received by GBCS use case ("ECS17b
	// 0x0027"), shared by the demo's users.
	useCases *useCaseCounter
}

// useCaseCounter counts device responses by use case.
type useCaseCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// add counts the use case of a device response.
func (c *useCaseCounter) add(body []byte) {
	m, err := commands.Parse(body)
	if err != nil {
		return
	}
	name := m.Code.String()
	if u, ok := commands.LookupCode(m.Code); ok {
		name = u.Name + " " + name
	}
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

// refusal is a router refusal: its problem body.
type refusal struct {
	status  int
	problem router.Problem
}

func (r *refusal) Error() string {
	return fmt.Sprintf("router refused (%d %s): %s", r.status, r.problem.Code, r.problem.Detail)
}

// call makes one API call; a status of 300 or more is returned as a
// *refusal when the body is a problem, else as ErrAPI.
func call(ctx context.Context, c *http.Client, method, u, ctype string, header http.Header, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if res.StatusCode >= 300 {
		var p router.Problem
		if json.Unmarshal(b, &p) == nil && p.Code != "" {
			return &refusal{status: res.StatusCode, problem: p}
		}
		return fmt.Errorf("%w: %s %s: %s: %.200s", ErrAPI, method, u, res.Status, b)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrAPI, method, u, err)
	}
	return nil
}

// serviceRequest asks the router for the command of a service request.
func (u *userClient) serviceRequest(ctx context.Context, ref string, target smki.EUI, params any) (router.PreCommand, []byte, error) {
	in := map[string]any{"serviceReference": ref, "target": target.String()}
	if params != nil {
		in["parameters"] = params
	}
	body, err := json.Marshal(in)
	if err != nil {
		return router.PreCommand{}, nil, err
	}
	var pc router.PreCommand
	if err := call(ctx, u.http, "POST", u.base+"/v1/service-requests", "application/json", nil, body, &pc); err != nil {
		return pc, nil, fmt.Errorf("service request %s for %s: %w", ref, target, err)
	}
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		return pc, nil, fmt.Errorf("%w: service request %s: message is not hex", ErrAPI, ref)
	}
	return pc, raw, nil
}

// sign signs a pre-command with the user's DS key.
func (u *userClient) sign(raw []byte) ([]byte, error) {
	m, err := commands.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("reading the pre-command: %w", err)
	}
	if err := commands.SignPreCommand(u.rand, u.signer, m); err != nil {
		return nil, fmt.Errorf("signing the pre-command: %w", err)
	}
	return m.Marshal()
}

// submit posts GBCS bytes.
func (u *userClient) submit(ctx context.Context, raw []byte) (router.Receipt, error) {
	var rc router.Receipt
	err := call(ctx, u.http, "POST", u.base+"/v1/commands", "application/octet-stream", nil, raw, &rc)
	return rc, err
}

// request runs the two-step: service request, signature when critical,
// submission. It returns the submitted bytes too.
func (u *userClient) request(ctx context.Context, ref string, target smki.EUI, params any) (router.Receipt, []byte, error) {
	pc, raw, err := u.serviceRequest(ctx, ref, target, params)
	if err != nil {
		return router.Receipt{}, nil, err
	}
	if pc.Critical {
		if raw, err = u.sign(raw); err != nil {
			return router.Receipt{}, nil, err
		}
	}
	rc, err := u.submit(ctx, raw)
	return rc, raw, err
}

// await polls GET /v1/responses until a delivery for every command ID has
// arrived, and returns them in the order of ids.
func (u *userClient) await(ctx context.Context, within time.Duration, ids ...string) ([]router.Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		if out, ok := u.collected(ids); ok {
			return out, nil
		}
		var page struct {
			Deliveries []struct {
				Seq       int64           `json:"seq"`
				CommandID string          `json:"commandId"`
				Kind      string          `json:"kind"`
				Body      router.HexBytes `json:"body"`
				Detail    string          `json:"detail"`
				At        time.Time       `json:"at"`
			} `json:"deliveries"`
			Next int64 `json:"next"`
		}
		u.mu.Lock()
		after := u.cursor
		u.mu.Unlock()
		if err := call(ctx, u.http, "GET", fmt.Sprintf("%s/v1/responses?after=%d&limit=1000", u.base, after), "", nil, nil, &page); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %d responses not delivered within %s", ErrAPI, len(ids), within)
			}
			return nil, err
		}
		u.mu.Lock()
		for _, d := range page.Deliveries {
			if _, dup := u.seen[d.CommandID]; !dup && d.Kind == router.DeliveryResponse && u.useCases != nil {
				u.useCases.add(d.Body)
			}
			u.seen[d.CommandID] = router.Delivery{Seq: d.Seq, CommandID: d.CommandID, Kind: d.Kind, Body: d.Body, Detail: d.Detail, At: d.At}
			u.cursor = max(u.cursor, d.Seq)
		}
		u.mu.Unlock()
		if len(page.Deliveries) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			_, missing := u.missing(ids)
			return nil, fmt.Errorf("%w: no response within %s for %d commands (first %s)", ErrAPI, within, len(missing), missing[0])
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (u *userClient) collected(ids []string) ([]router.Delivery, bool) {
	out, missing := u.missing(ids)
	return out, len(missing) == 0
}

func (u *userClient) missing(ids []string) ([]router.Delivery, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []router.Delivery
	var missing []string
	for _, id := range ids {
		d, ok := u.seen[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, d)
	}
	return out, missing
}

// deviceResponse is a device's response as a user reads it: the message,
// its payload read by structure, and the plaintexts of its ciphered blocks.
type deviceResponse struct {
	msg   *commands.Message
	body  commands.Payload
	plain [][]byte
}

// apdu returns the DLMS APDU of an electricity meter's response.
func (d *deviceResponse) apdu() (*dlms.APDU, error) {
	a, ok := d.body.Tree.(*dlms.APDU)
	if !ok {
		return nil, fmt.Errorf("%w: the response payload is %s, not DLMS", ErrAPI, d.body.Structure)
	}
	return a, nil
}

// plainData reads the one decrypted block of a sensitive DLMS response.
func (d *deviceResponse) plainData() (dlms.Data, error) {
	if len(d.plain) != 1 {
		return dlms.Data{}, fmt.Errorf("%w: %d ciphered blocks in the response, want 1", ErrAPI, len(d.plain))
	}
	return dlms.ParseData(d.plain[0])
}

// openResponse checks a device response the way its user does: the
// device's signature when it is signed (a response to a critical command),
// else its MAC with the user's KA key and the device's KA public key; it
// reads the payload and decrypts its ciphered blocks when the use case is
// sensitive. A response to a command the ACB sent on the user's behalf (the
// user is the supplementary remote party) is MAC'd for the ACB, which the
// user cannot check; what the user reads of it is the encrypted content,
// which the GCM tag under the user's own key authenticates.
func openResponse(ctx context.Context, user smki.EUI, ka commands.KeyAgreement, keys meterKeys, body []byte) (*deviceResponse, error) {
	m, err := commands.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	switch {
	case m.Signed():
		if err := commands.VerifySignature(keys.ds, m); err != nil {
			return nil, fmt.Errorf("checking the response signature: %w", err)
		}
	case m.HasMAC() && m.Recipient != user:
		if m.URP == nil || m.URP.EUI != user {
			return nil, fmt.Errorf("%w: a response MAC'd for %s, neither to nor on behalf of %s", ErrAPI, m.Recipient, user)
		}
	case m.HasMAC():
		if err := commands.CheckMAC(ctx, ka, keys.ka, m); err != nil {
			return nil, fmt.Errorf("checking the response MAC: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: the response is neither signed nor MAC'd", ErrAPI)
	}
	d := &deviceResponse{msg: m, body: commands.ReadPayload(m)}
	if !d.body.Decoded {
		return nil, fmt.Errorf("reading the response payload (%s): %s", d.body.Structure, d.body.Error)
	}
	if u, _ := commands.LookupCode(m.Code); u.Sensitive {
		if d.plain, err = commands.OpenPayload(ctx, ka, keys.ka, m); err != nil {
			return nil, fmt.Errorf("decrypting the response: %w", err)
		}
	}
	return d, nil
}

// eventCounter reads a server-sent-event stream and counts events by type.
type eventCounter struct {
	mu     sync.Mutex
	counts map[string]int
	first  map[string]time.Time
}

func (e *eventCounter) count(kind string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[kind]
}

// watch follows the stream at u until ctx ends.
func (e *eventCounter) watch(ctx context.Context, c *http.Client, u string, header http.Header, ready chan<- error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		ready <- err
		return
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		ready <- fmt.Errorf("GET %s: %w", u, err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		ready <- fmt.Errorf("%w: GET %s: %s", ErrAPI, u, res.Status)
		return
	}
	ready <- nil
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if kind, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			e.mu.Lock()
			e.counts[kind]++
			if _, ok := e.first[kind]; !ok {
				e.first[kind] = time.Now()
			}
			e.mu.Unlock()
		}
	}
}

// operatorClient is a DCC operator calling the operator API with a bearer
// token.
type operatorClient struct {
	base  string
	http  *http.Client
	token string
}

func (o *operatorClient) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + o.token}}
}

// quarantineView is the part of a quarantine record the demo reads.
type quarantineView struct {
	Ref        string   `json:"ref"`
	User       smki.EUI `json:"user"`
	ServiceRef string   `json:"serviceRef"`
	Target     smki.EUI `json:"target"`
	Kind       string   `json:"kind"`
	Detail     string   `json:"detail"`
	State      string   `json:"state"`
}

// quarantined lists every quarantined command, following the pages.
func (o *operatorClient) quarantined(ctx context.Context) ([]quarantineView, error) {
	var all []quarantineView
	next := o.base + "/v1/quarantine?state=quarantined&limit=200"
	for next != "" {
		var page struct {
			Items []quarantineView `json:"items"`
			Next  string           `json:"next"`
		}
		if err := call(ctx, o.http, "GET", next, "", o.header(), nil, &page); err != nil {
			return nil, fmt.Errorf("listing the quarantine: %w", err)
		}
		all = append(all, page.Items...)
		next = ""
		if page.Next != "" {
			n, err := url.Parse(page.Next)
			if err != nil {
				return nil, fmt.Errorf("%w: next link %q: %v", ErrAPI, page.Next, err)
			}
			base, _ := url.Parse(o.base)
			next = base.ResolveReference(n).String()
		}
	}
	return all, nil
}

// delete deletes a quarantined command with a reason.
func (o *operatorClient) delete(ctx context.Context, ref, reason string) error {
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return err
	}
	if err := call(ctx, o.http, "POST", o.base+"/v1/quarantine/"+url.PathEscape(ref)+"/delete", "application/json", o.header(), body, nil); err != nil {
		return fmt.Errorf("deleting %s: %w", ref, err)
	}
	return nil
}
