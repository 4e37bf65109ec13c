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
	if err := apiserver.ExtendDeadlines(c.Response(), importTime); err != nil {
		return problem.Wrap(ErrInternal, err, "", "extending the connection's deadlines")
	}
	if err := s.manufacturer(ctx, who); err != nil {
		return s.refuse(ctx, who, ActionImport, object, err)
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
	if err != nil {
		return s.refuse(ctx, who, ActionImport, object, problem.Wrap(ErrForbidden, err, "", "no usable digital-signing certificate of manufacturer %s: %s", who.eui, clipDetail(err.Error())))
	}
	pf, err := provision.Open(data, sig, signer, provision.Options{SkipBad: skipBad, MaxBytes: MaxImportBytes, MaxDevices: MaxImportDevices})
	if err != nil {
		param := "body"
		if errors.Is(err, provision.ErrSignature) {
			param = SignatureHeader
		}
		return s.refuse(ctx, who, ActionImport, object, problem.Wrap(ErrBadRequest, err, param, "%s", clipDetail(err.Error())))
	}
	req := ca.ImportRequest{Batch: batch, Manufacturer: pf.Header.Manufacturer, FileSHA256: hex.EncodeToString(pf.SHA256[:]), SkipBad: skipBad}
	for _, en := range pf.Entries {
		req.Devices = append(req.Devices, ca.ImportDevice{EUI: en.EUI, Line: en.Line, CSRs: en.CSRs})
	}
	var sum ca.ImportSummary
	if err := s.do(ctx, who, ActionImport, batch, map[string]any{"file_sha256": req.FileSHA256, "devices": len(req.Devices),
		"refused": len(pf.Refused)}, func() error {
		sum, err = s.deps.Authority.ImportDevices(context.WithoutCancel(ctx), req)
		if errors.Is(err, ca.ErrExists) {
			return problem.Wrap(ErrConflict, err, "body", "%s", clipDetail(err.Error()))
		}
		return err
	}); err != nil {
		return err
	}
	v := ImportView{ImportSummary: sum}
	for _, r := range pf.Refused {
		v.Refused = append(v.Refused, ca.ImportSkip{Line: r.Line, EUI: r.EUI, Reason: r.Err.Error()})
	}
	return c.JSON(http.StatusCreated, v)
}

// importBody is the body limit of an import request.
func importBody(path string) (int64, bool) {
	return MaxImportBytes, path == "/v1/imports"
}
