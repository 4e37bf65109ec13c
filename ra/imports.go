package ra

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/internal/trunc"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/provision"
)

// Importing provisioning files over the API.
const (
	// ActionImport is the audit action of a provisioning import.
	ActionImport = "ca-api.import"
	// MediaProvisioning is the media type of a provisioning file
	// (docs/provisioning.md): JSON Lines.
	MediaProvisioning = "application/jsonl"
	// SignatureHeader carries the file's detached signature, base64.
	SignatureHeader = "Metertrust-Signature"
	// MaxImportBytes bounds a provisioning file sent over the API, and
	// MaxImportDevices its devices; larger files go through "metertrust
	// ca import" on the CA's data directory.
	MaxImportBytes   = 64 << 20
	MaxImportDevices = 50_000
	// importTime is how long an import may take to read and answer (the
	// API's usual 30 s is too short for tens of thousands of certificates).
	importTime = 15 * time.Minute
)

// ImportView answers a provisioning import: the CA's summary, and the
// device lines refused by the reader in skip-bad mode.
type ImportView struct {
	ca.ImportSummary
	Refused []ca.ImportSkip `json:"refused,omitempty"`
}

// importFile answers POST /v1/imports?batch=NAME[&skipBad=true]: a
// registered manufacturer, identified by its DCCKI client certificate
// alone, sends its provisioning file (the body, application/jsonl) with
// its detached signature (the Metertrust-Signature header). The signature
// is checked against the manufacturer's newest unrevoked digital-signing
// certificate, every entry and the inventory and quota are checked, and
// the whole file is issued under the batch before the answer; a bad entry
// refuses the whole file, naming it, unless skipBad.
func (s *Server) importFile(c echo.Context) error {
	who, err := s.client(c, ActionImport)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	if err := s.manufacturer(ctx, who); err != nil {
		return s.refuse(ctx, who, ActionImport, object, err)
	}
	// One import at a time: each holds its file and signs on the shared
	// cores; a second waits no longer than to be told to come back.
	select {
	case s.importing <- struct{}{}:
		defer func() { <-s.importing }()
	default:
		c.Response().Header().Set("Retry-After", "60")
		return s.refuse(ctx, who, ActionImport, object, problem.New(ErrUnavailable, "", "another import is running: try again later"))
	}
	if err := apiserver.ExtendDeadlines(c.Response(), importTime); err != nil {
		return problem.Wrap(ErrInternal, err, "", "extending the connection's deadlines")
	}
	batch := c.QueryParam("batch")
	if err := checkCAName("batch", batch); err != nil {
		return s.refuse(ctx, who, ActionImport, object, err)
	}
	skipBad := false
	if v := c.QueryParam("skipBad"); v != "" {
		if skipBad, err = strconv.ParseBool(v); err != nil {
			return s.refuse(ctx, who, ActionImport, object, problem.New(ErrBadRequest, "skipBad", "want true or false"))
		}
	}
	if mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); err != nil || mt != MediaProvisioning {
		return s.refuse(ctx, who, ActionImport, object, problem.New(ErrUnsupportedMediaType, "Content-Type", "send the provisioning file as %s", MediaProvisioning))
	}
	// The header is the signature file's text: base64 of the DER
	// ECDSA-Sig-Value, which provision.Open decodes and checks.
	sig := []byte(c.Request().Header.Get(SignatureHeader))
	if der, err := base64.StdEncoding.DecodeString(string(sig)); err != nil || len(der) == 0 || len(der) > 80 {
		return s.refuse(ctx, who, ActionImport, object, problem.New(ErrBadRequest, SignatureHeader, "want the file's detached signature, base64 of the DER ECDSA P-256 signature"))
	}
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.refuse(ctx, who, ActionImport, object, problem.Wrap(ErrTooLarge, err, "body", "a provisioning file over the API is at most %d bytes: use metertrust ca import for larger files", mbe.Limit))
		}
		return s.refuse(ctx, who, ActionImport, object, problem.Wrap(ErrBadRequest, err, "body", "reading the file: %v", err))
	}
	signer, err := s.deps.Authority.SignerCertificate(ctx, nil, who.eui)
	switch {
	case errors.Is(err, ca.ErrNotFound), errors.Is(err, ca.ErrRequest):
		return s.refuse(ctx, who, ActionImport, object, problem.Wrap(ErrForbidden, err, "", "no usable digital-signing certificate of manufacturer %s: %s", who.eui, clipDetail(err.Error())))
	case err != nil:
		return s.refuse(ctx, who, ActionImport, object, fromCA(err))
	}
	pf, err := provision.Open(data, sig, signer, provision.Options{SkipBad: skipBad, MaxBytes: MaxImportBytes, MaxDevices: MaxImportDevices})
	if err != nil {
		kind, param := ErrBadRequest, "body"
		switch {
		case errors.Is(err, provision.ErrSignature):
			param = SignatureHeader
		case errors.Is(err, provision.ErrLimit):
			kind = ErrTooLarge
		case errors.Is(err, provision.ErrCertificate):
			kind, param = ErrForbidden, ""
		}
		return s.refuse(ctx, who, ActionImport, object, problem.Wrap(kind, err, param, "%s", clipDetail(err.Error())))
	}
	req := ca.ImportRequest{Batch: batch, Manufacturer: pf.Header.Manufacturer, FileSHA256: hex.EncodeToString(pf.SHA256[:]), SkipBad: skipBad}
	for _, en := range pf.Entries {
		req.Devices = append(req.Devices, ca.ImportDevice{EUI: en.EUI, Line: en.Line, CSRs: en.CSRs})
	}
	var sum ca.ImportSummary
	if err := s.do(ctx, who, ActionImport, batch, map[string]any{"file_sha256": req.FileSHA256, "devices": len(req.Devices),
		"refused": len(pf.Refused)}, func() error {
		sum, err = s.deps.Authority.ImportDevices(context.WithoutCancel(ctx), req)
		switch {
		case err == nil:
		case sum.Devices > 0:
			// Part of the file was issued: say how far, so that the
			// manufacturer can resend the rest (skipBad skips what is in).
			return problem.Wrap(ErrUnavailable, err, "", "stopped after %d devices (%d certificates, last %s): %s; resend with skipBad=true for the rest",
				sum.Devices, sum.Certificates, sum.LastEUI, clipDetail(err.Error()))
		case errors.Is(err, ca.ErrExists):
			return problem.Wrap(ErrConflict, err, "body", "%s", clipDetail(err.Error()))
		}
		return err
	}); err != nil {
		return err
	}
	v := ImportView{ImportSummary: sum}
	for _, r := range pf.Refused {
		v.Refused = append(v.Refused, ca.ImportSkip{Line: r.Line, EUI: clip(r.EUI), Reason: trunc.String(r.Err.Error(), 256)})
	}
	return c.JSON(http.StatusCreated, v)
}

// importBody is the body limit of an import request.
func importBody(path string) (int64, bool) {
	return MaxImportBytes, path == "/v1/imports"
}
