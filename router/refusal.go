package router

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/metertrust/metertrust/smki"
)

// maxRefusalDetail bounds the detail of a refusal's audit entry: what a
// hostile request puts in an error (an unknown JSON field's name, say)
// must not grow the audit log without bound.
const maxRefusalDetail = 1024

// AuditRefusal appends the audit entry of a refusal that the pipeline did
// not audit itself: an API request refused before or outside Submit (a
// body that is not hex or is too large, a wrong content type or method, a
// service request the caller may not make). action names what was refused,
// such as "command.refused" or "service-request.refused"; target is the
// device concerned, or zero; the entry's kind and detail are err's. The
// write outlives ctx's cancellation (a client that hangs up is still
// audited); a failed write is logged, as the pipeline's are.
func (r *Router) AuditRefusal(ctx context.Context, caller Caller, action string, target smki.EUI, err error) {
	r.audit(context.WithoutCancel(ctx), AuditEvent{Action: action, Caller: caller, Target: target, Kind: KindOf(err).Code(),
		Detail: clip(err.Error(), maxRefusalDetail), At: r.now()})
}

// clip returns s cut to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// auditedError marks a refusal already in the audit log (the pipeline's
// "command.refused", the consent desk's wrong CIN, the anomaly detector's
// refused decision), so that the API's error handler, which audits every
// other refusal, does not audit it twice. It changes nothing else: the
// text, the kind and errors.Is see through it.
type auditedError struct{ error }

func (e auditedError) Unwrap() error { return e.error }

// audited marks err as audited; nil stays nil.
func audited(err error) error {
	if err == nil {
		return nil
	}
	return auditedError{err}
}

// isAudited reports whether err was marked by audited.
func isAudited(err error) bool {
	var a auditedError
	return errors.As(err, &a)
}
