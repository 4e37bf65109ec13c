package ra

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/internal/trunc"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// The audit actions of the API, each written with the outcomes attempt,
// then success or failure; or refused. The CA writes its own entries
// (ca.revoke, ca.crl, ca.issue.*) for the signing itself.
const (
	ActionRevoke   = "ca-api.revoke"
	ActionCRL      = "ca-api.crl"
	ActionIssueDev = "ca-api.issue.device"
	mediaJSON      = "application/json"
	timeFormat     = time.RFC3339
	maxAuditDetail = 512
)

// RevocationRequest is the body of POST /v1/revocations.
type RevocationRequest struct {
	// CA names the CA that issued the certificate.
	CA string `json:"ca"`
	// Serial is the certificate's serial number in hex.
	Serial string `json:"serial"`
	// Reason is the RFC 5280 CRLReason, as a name ("keyCompromise") or a
	// number.
	Reason json.RawMessage `json:"reason"`
}

// DeviceRequest is the body of POST /v1/certificates/device.
type DeviceRequest struct {
	// Batch names the open device CA batch to issue from.
	Batch string `json:"batch"`
	// CSR is the device's PKCS#10 request, PEM or base64 DER (empty
	// subject, the hardwareModuleName SAN naming its EUI-64).
	CSR string `json:"csr"`
}

// CertificateView is a certificate as the API answers it.
type CertificateView struct {
	CA               string `json:"ca"`
	Serial           string `json:"serial"`
	Kind             string `json:"kind"`
	Role             string `json:"role,omitempty"`
	UserRole         string `json:"userRole,omitempty"`
	Usage            string `json:"usage,omitempty"`
	EUI              string `json:"eui,omitempty"`
	NotBefore        string `json:"notBefore"`
	NotAfter         string `json:"notAfter"`
	RevokedAt        string `json:"revokedAt,omitempty"`
	RevocationReason string `json:"revocationReason,omitempty"`
	// Certificate is the certificate, PEM.
	Certificate string `json:"certificate"`
}

// CRLView is a CRL the CA signed.
type CRLView struct {
	CA         string `json:"ca"`
	Number     int64  `json:"number"`
	ThisUpdate string `json:"thisUpdate"`
	NextUpdate string `json:"nextUpdate"`
}

// RevocationView answers a revocation: the certificate as revoked, and the
// CRL signed at once to list it, or why none was (a root's CRL is signed in
// a ceremony, on the machine holding the root key).
type RevocationView struct {
	Certificate CertificateView `json:"certificate"`
	CRL         *CRLView        `json:"crl,omitempty"`
	CRLPending  string          `json:"crlPending,omitempty"`
}

func certView(c store.Certificate) CertificateView {
	v := CertificateView{CA: c.CA, Serial: fmt.Sprintf("%X", c.Serial), Kind: c.Kind, UserRole: c.UserRole, Usage: c.Usage, EUI: c.EUI,
		NotBefore: c.NotBefore.UTC().Format(timeFormat), NotAfter: c.NotAfter.UTC().Format(timeFormat),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))}
	if c.Role >= 0 {
		v.Role = smki.Role(c.Role).String()
	}
	if !c.RevokedAt.IsZero() {
		v.RevokedAt = c.RevokedAt.UTC().Format(timeFormat)
		v.RevocationReason = ca.ReasonName(c.Reason)
	}
	return v
}

func crlView(c store.CRL) *CRLView {
	return &CRLView{CA: c.CA, Number: c.Number, ThisUpdate: c.ThisUpdate.UTC().Format(timeFormat),
		NextUpdate: c.NextUpdate.UTC().Format(timeFormat)}
}

// readJSON reads a JSON request body strictly into v: the media type must be
// application/json, unknown fields and trailing data are errors.
func readJSON(c echo.Context, v any, shape string) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != mediaJSON {
		return problem.New(ErrUnsupportedMediaType, "Content-Type", "send the request as %s", mediaJSON)
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.Wrap(ErrTooLarge, err, "body", "request body exceeds %d bytes", mbe.Limit)
		}
		return problem.Wrap(ErrBadRequest, err, "body", "reading the request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Wrap(ErrBadRequest, err, "body", "want a JSON object %s and nothing else (%s)", shape, clip(err.Error()))
	}
	if dec.More() {
		return problem.New(ErrBadRequest, "body", "trailing data after the JSON object")
	}
	return nil
}

// refuse audits a refusal of an authenticated operator's request and
// returns err.
func (s *Server) refuse(ctx context.Context, who caller, action, object string, err error) error {
	detail := err.Error()
	var pe *problem.Error
	if errors.As(err, &pe) {
		detail = pe.Detail
		if pe.Param != "" {
			detail = pe.Param + ": " + detail
		}
	}
	s.audit(ctx, who.actor(), action, object, OutcomeRefused, map[string]any{"refusal": auditDetail(detail), "client": who.client})
	return err
}

// auditDetail bounds a refusal or error text written to the audit log.
func auditDetail(s string) string { return trunc.String(s, maxAuditDetail) }

// do runs one authorised action: the attempt audited durably first, then
// fn, then its outcome (success or failure, with the error). The CA's error
// is mapped to the API's kinds by fromCA.
func (s *Server) do(ctx context.Context, who caller, action, object string, details map[string]any, fn func() error) error {
	if details == nil {
		details = map[string]any{}
	}
	details["client"] = who.client
	if err := s.auditStrict(ctx, who.actor(), action, object, OutcomeAttempt, details); err != nil {
		return problem.Wrap(ErrInternal, err, "", "writing audit log")
	}
	if err := fn(); err != nil {
		d := make(map[string]any, len(details)+1)
		for k, v := range details {
			d[k] = v
		}
		d["error"] = auditDetail(err.Error())
		s.audit(ctx, who.actor(), action, object, OutcomeFailure, d)
		return fromCA(err)
	}
	s.audit(ctx, who.actor(), action, object, OutcomeSuccess, details)
	return nil
}

// fromCA maps an error of the CA to the API's kinds: an unknown CA or
// certificate 404; a closed or exhausted batch, or a certificate revoked
// meanwhile, 409; a refused request,
// CSR or lint 400; a key that cannot be loaded 503 ("no key", never a bad
// signature); anything else 500.
func fromCA(err error) error {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return err
	}
	detail := clipDetail(err.Error())
	switch {
	case errors.Is(err, ca.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return problem.Wrap(ErrNotFound, err, "", "%s", detail)
	case errors.Is(err, ca.ErrBatchClosed), errors.Is(err, ca.ErrRevoked), errors.Is(err, ca.ErrExists), errors.Is(err, ca.ErrRekey):
		return problem.Wrap(ErrConflict, err, "", "%s", detail)
	case errors.Is(err, ca.ErrKey):
		return problem.Wrap(ErrUnavailable, err, "", "no key: %s", detail)
	case errors.Is(err, ca.ErrRequest), errors.Is(err, ca.ErrCSR), errors.Is(err, ca.ErrLint):
		return problem.Wrap(ErrBadRequest, err, "", "%s", detail)
	}
	return problem.Wrap(ErrInternal, err, "", "internal error")
}

// clipDetail bounds a CA error quoted to the caller.
func clipDetail(s string) string { return trunc.String(s, 1024) }

// revoke answers POST /v1/revocations: the CA revokes the certificate
// (signing its "revoked" OCSP response first) and then signs its issuer's
// CRL at once, unless the issuer is a root.
func (s *Server) revoke(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleRevoke, ActionRevoke)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	var r RevocationRequest
	if err := readJSON(c, &r, "{ca, serial, reason}"); err != nil {
		return s.refuse(ctx, who, ActionRevoke, object, err)
	}
	serial, reason, err := checkRevocation(r)
	if err != nil {
		return s.refuse(ctx, who, ActionRevoke, object, err)
	}
	object = r.CA + "/" + fmt.Sprintf("%X", serial)
	cert, err := s.deps.Store.Certificate(ctx, r.CA, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.refuse(ctx, who, ActionRevoke, object, problem.New(ErrNotFound, "serial", "no certificate with serial %X from CA %q", serial, r.CA))
	case err != nil:
		s.audit(ctx, who.operator, ActionRevoke, object, OutcomeFailure, map[string]any{"error": auditDetail(err.Error()), "client": who.client})
		return problem.Wrap(ErrInternal, err, "", "reading the certificate")
	case !cert.RevokedAt.IsZero():
		return s.refuse(ctx, who, ActionRevoke, object, problem.New(ErrConflict, "serial", "certificate %X from CA %q was revoked at %s", serial, r.CA, cert.RevokedAt.UTC().Format(timeFormat)))
	}
	var out RevocationView
	err = s.do(ctx, who, ActionRevoke, object, map[string]any{"reason": ca.ReasonName(reason), "kind": cert.Kind, "eui": cert.EUI}, func() error {
		revoked, err := s.deps.Authority.Revoke(ctx, r.CA, serial, reason)
		if err != nil {
			return err
		}
		out.Certificate = certView(revoked)
		return nil
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "certificate revoked", "operator", who.operator, "ca", r.CA, "serial", fmt.Sprintf("%X", serial), "reason", ca.ReasonName(reason))
	// The CRL follows the revocation at once. A failure here leaves the
	// revocation done and served by OCSP; the refresher signs the CRL later.
	issuer, err := s.deps.Store.CA(ctx, r.CA)
	switch {
	case err != nil:
		out.CRLPending = "the issuing CA could not be read: the next refresh signs its CRL"
	case issuer.Kind == store.CAKindRoot || issuer.Kind == store.CAKindDCCKIRoot:
		out.CRLPending = fmt.Sprintf("%s is a root: sign its CRL in a ceremony where its key is (metertrust ca crl --ca %s)", r.CA, r.CA)
	case issuer.State != store.CAStateActive:
		out.CRLPending = fmt.Sprintf("%s is closed: its final CRL cannot change; its OCSP responder's answer is authoritative", r.CA)
	default:
		crl, err := s.deps.Authority.CRL(ctx, r.CA)
		if err != nil {
			s.log.WarnContext(ctx, "CRL after revocation not signed", "ca", r.CA, "err", err)
			out.CRLPending = "the CRL could not be signed now (" + clipDetail(err.Error()) + "): the next refresh signs it"
		} else {
			out.CRL = crlView(crl)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// checkRevocation checks a revocation request's fields.
func checkRevocation(r RevocationRequest) (serial []byte, reason int, err error) {
	if err := checkCAName("ca", r.CA); err != nil {
		return nil, 0, err
	}
	if r.Serial == "" {
		return nil, 0, problem.New(ErrBadRequest, "serial", "missing: give the certificate's serial number in hex")
	}
	serial, err = smki.ParseSerial(r.Serial)
	if err != nil {
		return nil, 0, problem.Wrap(ErrBadRequest, err, "serial", "%q is not a serial number: want hex digits", clip(r.Serial))
	}
	if len(r.Reason) == 0 {
		return nil, 0, problem.New(ErrBadRequest, "reason", "missing: give an RFC 5280 CRLReason name or code")
	}
	var text string
	if err := json.Unmarshal(r.Reason, &text); err != nil {
		var num json.Number
		if err := json.Unmarshal(r.Reason, &num); err != nil {
			return nil, 0, problem.New(ErrBadRequest, "reason", "must be a CRLReason name or code")
		}
		text = num.String()
	}
	reason, err = ca.ParseReason(text)
	if err != nil {
		return nil, 0, problem.Wrap(ErrBadRequest, err, "reason", "%s", strings.TrimPrefix(err.Error(), ca.ErrRequest.Error()+": "))
	}
	return serial, reason, nil
}

// checkCAName accepts the names CAs are recorded under: 1 to 64 letters,
// digits and ._- characters.
func checkCAName(param, s string) error {
	if s == "" {
		return problem.New(ErrBadRequest, param, "missing: name the CA")
	}
	if len(s) > 64 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return problem.New(ErrBadRequest, param, "%q is not a CA name: 1 to 64 letters, digits and ._-", clip(s))
	}
	return nil
}

// crl answers POST /v1/crls/{ca}: a new CRL signed now. Roots' CRLs are
// ceremonies: the service holds no root key and refuses them.
func (s *Server) crl(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleRevoke, ActionCRL)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	name := c.Param("ca")
	if err := checkCAName("ca", name); err != nil {
		return s.refuse(ctx, who, ActionCRL, c.Request().URL.Path, err)
	}
	rec, err := s.deps.Store.CA(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.refuse(ctx, who, ActionCRL, name, problem.New(ErrNotFound, "ca", "no CA %q", name))
	case err != nil:
		s.audit(ctx, who.operator, ActionCRL, name, OutcomeFailure, map[string]any{"error": auditDetail(err.Error()), "client": who.client})
		return problem.Wrap(ErrInternal, err, "", "reading the CA")
	case rec.Kind == store.CAKindRoot || rec.Kind == store.CAKindDCCKIRoot:
		return s.refuse(ctx, who, ActionCRL, name, problem.New(ErrConflict, "ca", "%s is a root: its CRL is signed in a ceremony where its key is (metertrust ca crl --ca %s)", name, name))
	case rec.State != store.CAStateActive:
		return s.refuse(ctx, who, ActionCRL, name, problem.New(ErrConflict, "ca", "%s is closed: its final CRL cannot change", name))
	}
	var out store.CRL
	if err := s.do(ctx, who, ActionCRL, name, nil, func() error {
		out, err = s.deps.Authority.CRL(ctx, name)
		if errors.Is(err, ca.ErrLint) || errors.Is(err, ca.ErrReadBack) {
			// The CA's own CRL failed its checks: not the caller's doing.
			return problem.Wrap(ErrInternal, err, "", "the CRL failed the CA's checks")
		}
		return err
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, crlView(out))
}

// issueDevice answers POST /v1/certificates/device.
func (s *Server) issueDevice(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleIssue, ActionIssueDev)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var r DeviceRequest
	if err := readJSON(c, &r, "{batch, csr}"); err != nil {
		return s.refuse(ctx, who, ActionIssueDev, c.Request().URL.Path, err)
	}
	if err := checkCAName("batch", r.Batch); err != nil {
		return s.refuse(ctx, who, ActionIssueDev, c.Request().URL.Path, err)
	}
	csr, err := csrBytes(r.CSR)
	if err != nil {
		return s.refuse(ctx, who, ActionIssueDev, r.Batch, err)
	}
	out, err := s.issueDeviceAs(ctx, who, ActionIssueDev, r.Batch, csr)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, certView(out))
}

// csrBytes reads a request's csr field: PEM, or base64 of the DER.
func csrBytes(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, problem.New(ErrBadRequest, "csr", "missing: give the PKCS#10 request as PEM or base64 DER")
	case strings.HasPrefix(s, "-----BEGIN"):
		der, err := ca.DecodePEMOrDER([]byte(s), "CERTIFICATE REQUEST")
		if err != nil {
			return nil, problem.Wrap(ErrBadRequest, err, "csr", "%s", strings.TrimPrefix(err.Error(), ca.ErrRequest.Error()+": "))
		}
		return der, nil
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(der) == 0 {
		return nil, problem.New(ErrBadRequest, "csr", "neither a PEM CERTIFICATE REQUEST nor base64 DER")
	}
	return der, nil
}

// issueDeviceAs issues one device certificate from batch for who, audited
// under action. Once the CA is asked, the issuance finishes whatever the
// client does. A certificate issued and stored whose batch then failed to
// close at its quota is a success (the CA logs it; a later request closes
// the batch).
func (s *Server) issueDeviceAs(ctx context.Context, who caller, action, batch string, csr []byte) (store.Certificate, error) {
	var out store.Certificate
	err := s.do(ctx, who, action, batch, nil, func() error {
		var err error
		out, err = s.deps.Authority.IssueDevice(context.WithoutCancel(ctx), batch, csr)
		if err != nil && len(out.DER) > 0 {
			s.log.WarnContext(ctx, "certificate issued, batch not closed at its quota", "batch", batch, "err", err)
			return nil
		}
		return err
	})
	return out, err
}
