package operator

import (
	"encoding/json"
	"fmt"
	"github.com/metertrust/metertrust/apiserver"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
)

// Server-sent event names on GET /v1/events.
const (
	// EventReady is sent once the subscription is live: every alert raised
	// after it reaches the stream.
	EventReady = "ready"
	// EventAlert carries an anomaly.Alert as JSON.
	EventAlert = "alert"
	// EventHeartbeat is sent every Config.Heartbeat so that the dashboard
	// (and proxies) see the stream is alive.
	EventHeartbeat = "heartbeat"
	// EventDropped ends a stream that fell too far behind; the client
	// should reconnect and re-read the quarantine list.
	EventDropped = "dropped"
)

// streamSlack is added to the heartbeat for the write deadline of each
// event.
const streamSlack = 10 * time.Second

// events answers GET /v1/events?user=: a text/event-stream of alerts
// (quarantined, released, deleted), with heartbeats, until the client goes
// away or the server shuts down.
func (s *Server) events(c echo.Context) error {
	const action = "operator.events"
	if s.deps.Alerts == nil {
		return unavailable("alert source")
	}
	u, err := userQuery(c)
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, err)
	}
	ctx := c.Request().Context()
	ch, err := s.deps.Alerts.Subscribe(ctx, who(c).Actor, anomaly.AlertFilter{User: u})
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, fromAnomaly(err, "user"))
	}
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w.Writer)
	send := func(id, event string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		// Both deadlines: apiserver's read timeout would otherwise end
		// the stream (net/http cancels the request when it passes).
		if err := apiserver.ExtendDeadlines(w.Writer, time.Duration(s.cfg.Heartbeat)+streamSlack); err != nil {
			return err
		}
		if id != "" {
			if _, err := fmt.Fprintf(w, "id: %s\n", id); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	type stamp struct {
		At time.Time `json:"at"`
	}
	if err := send("", EventReady, stamp{s.now().UTC()}); err != nil {
		return nil
	}
	tick := time.NewTicker(time.Duration(s.cfg.Heartbeat))
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-s.streamsDone:
			return nil
		case a, ok := <-ch:
			if !ok {
				s.log.WarnContext(ctx, "event stream dropped for falling behind", "operator", who(c).Name)
				_ = send("", EventDropped, stamp{s.now().UTC()})
				return nil
			}
			a.Origin = ""
			err = send(a.Ref+"/"+string(a.State), EventAlert, a)
		case <-tick.C:
			err = send("", EventHeartbeat, stamp{s.now().UTC()})
		}
		if err != nil {
			s.log.DebugContext(ctx, "event stream ended", "err", err)
			return nil
		}
	}
}
