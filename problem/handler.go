package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Handler writes one service's errors as problem details. Its Handle method
// is the service's echo HTTPErrorHandler, the one place where its errors
// become HTTP responses.
type Handler struct {
	// Kinds are the service's kinds. Errors that are not an *Error (echo's
	// routing errors, net/http's body limit, anything unexpected) get the
	// first kind here of the matching standard Type, or of Internal.
	Kinds []*Kind
	// Realm is the WWW-Authenticate realm sent with 401 answers of a
	// service that takes bearer tokens; "" sends no challenge (the router
	// authenticates by TLS client certificate).
	Realm string
	// Logger receives internal errors, in full; nil discards.
	Logger *slog.Logger
	// Body, if set, returns the body to encode for e, usually a service
	// type embedding d with extension members; nil encodes d.
	Body func(d Details, e *Error) any
}

// fallbackInternal classifies errors for a Handler given no internal kind.
var fallbackInternal = NewKind("problem", "internal error", Internal)

// kind returns h's first kind of type t, else its internal kind.
func (h *Handler) kind(t Type) *Kind {
	for _, k := range h.Kinds {
		if k.typ == t {
			return k
		}
	}
	if t != Internal {
		return h.kind(Internal)
	}
	return fallbackInternal
}

// Classify returns err as an *Error: the service's own as they are, echo's
// and net/http's by status, anything else internal.
func (h *Handler) Classify(err error) *Error {
	var pe *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &pe) && pe.Kind != nil:
		return pe
	case errors.As(err, &mbe):
		return Wrap(h.kind(TooLarge), err, "", "request body exceeds %d bytes", mbe.Limit)
	case errors.As(err, &he):
		return h.fromEcho(he)
	}
	return Wrap(h.kind(Internal), err, "", "internal error")
}

func (h *Handler) fromEcho(he *echo.HTTPError) *Error {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return New(h.kind(NotFound), "", "no such route")
	case http.StatusMethodNotAllowed:
		return New(h.kind(MethodNotAllowed), "", "method not allowed on this route")
	case http.StatusRequestEntityTooLarge:
		return New(h.kind(TooLarge), "", "request body too large")
	case http.StatusUnsupportedMediaType:
		return New(h.kind(UnsupportedMediaType), "", "%s", msg)
	case http.StatusBadRequest:
		return New(h.kind(BadRequest), "", "%s", msg)
	case http.StatusUnauthorized:
		return New(h.kind(Unauthenticated), "", "%s", msg)
	case http.StatusForbidden:
		return New(h.kind(Forbidden), "", "%s", msg)
	case http.StatusServiceUnavailable:
		return New(h.kind(Unavailable), "", "%s", msg)
	}
	return Wrap(h.kind(Internal), he, "", "internal error")
}

// Handle writes err as a problem+json response whose type, title and
// status come from its kind, unless the response is already committed. An
// internal error is logged in full and answered with a fixed detail; a 401
// carries a Bearer WWW-Authenticate challenge when h has a Realm; a HEAD
// answer has no body.
func (h *Handler) Handle(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pe := *h.Classify(err)
	t := pe.Kind.typ
	if t == Internal {
		log.ErrorContext(c.Request().Context(), "request failed", "path", c.Request().URL.Path, "err", err)
		pe.Detail, pe.Param = "internal error; see the server log", ""
	}
	if t == Unauthenticated && h.Realm != "" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="`+h.Realm+`"`)
	}
	code := pe.Code
	if code == "" {
		code = pe.Kind.code
	}
	d := Details{Type: t.URI(), Title: t.Title, Status: t.Status, Detail: pe.Detail, Param: pe.Param,
		Instance: c.Request().URL.Path, Code: code}
	var v any = d
	if h.Body != nil {
		v = h.Body(d, &pe)
	}
	body, mErr := json.Marshal(v)
	if mErr != nil {
		log.Error("encoding problem", "err", mErr)
		c.Response().WriteHeader(http.StatusInternalServerError)
		return
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, MediaType)
	hd.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		c.Response().WriteHeader(t.Status)
		return
	}
	if err := c.Blob(t.Status, MediaType, body); err != nil {
		log.Warn("writing problem", "err", err)
	}
}
