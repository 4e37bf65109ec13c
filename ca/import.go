package ca

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// ImportDevice is one device of a manufacturer's provisioning file: its
// EUI-64 and its checked device requests (smki.ParseCSR), at most one per
// key usage.
type ImportDevice struct {
	EUI smki.EUI
	// Line is the device's line in the file, for messages (0: none).
	Line int
	CSRs []*smki.CSR
}

// ImportRequest asks for the device certificates of a provisioning file,
// all from one batch.
type ImportRequest struct {
	Batch   string
	Devices []ImportDevice
	// Manufacturer and FileSHA256 (hex) identify the file in the audit log.
	Manufacturer smki.EUI
	FileSHA256   string
	// SkipBad skips the devices the inventory already holds instead of
	// refusing the import.
	SkipBad bool
	// Workers is the number of signing goroutines (default GOMAXPROCS).
	Workers int
	// Chunk is the number of devices reserved, signed and stored together
	// (default 256).
	Chunk int
	// Progress, when set, is called after each chunk is stored with the
	// devices done and the devices to issue.
	Progress func(done, total int)
	// Stored, when set, is called after each chunk is stored with its
	// certificates, in device order; an error stops the import.
	Stored func(recs []store.Certificate) error
}

// ImportSkip is a device an import skipped, and why.
type ImportSkip struct {
	Line   int    `json:"line,omitempty"`
	EUI    string `json:"eui"`
	Reason string `json:"reason"`
}

// ImportSummary reports an import.
type ImportSummary struct {
	Batch        string        `json:"batch"`
	Manufacturer string        `json:"manufacturer"`
	FileSHA256   string        `json:"file_sha256"`
	Devices      int           `json:"devices"`
	Certificates int           `json:"certificates"`
	Skipped      []ImportSkip  `json:"skipped,omitempty"`
	FirstEUI     string        `json:"first_eui,omitempty"`
	LastEUI      string        `json:"last_eui,omitempty"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	BatchClosed  bool          `json:"batch_closed"`
}

// ImportDevices issues the device certificates of a manufacturer's
// provisioning file from one batch Device CA, every request of every
// device. Before anything is issued it checks each device against the
// inventory (a device that already holds an unrevoked device certificate
// of a usage it asks for again is refused with ErrExists, or skipped, whole,
// with req.SkipBad) and the batch's remaining quota (the whole file must
// fit, or nothing is issued: ErrRequest). Issuance then streams as
// IssueDevices does: each chunk of devices reserves its quota, is signed
// by a worker pool (each certificate with its first OCSP response) and
// stored together. The import is one audited step, "ca.import.devices",
// whose events carry the file's SHA-256, the manufacturer and the counts.
// When the import uses up the quota the batch is closed and its key
// destroyed. On error the summary says how many devices were completed.
func (a *Authority) ImportDevices(ctx context.Context, req ImportRequest) (ImportSummary, error) {
	start := time.Now()
	sum := ImportSummary{Batch: req.Batch, Manufacturer: req.Manufacturer.String(), FileSHA256: req.FileSHA256}
	if req.Workers <= 0 {
		req.Workers = runtime.GOMAXPROCS(0)
	}
	if req.Chunk <= 0 {
		req.Chunk = 256
	}
	if err := checkImport(req.Devices); err != nil {
		return sum, err
	}
	iss, err := a.onlineIssuer(ctx, req.Batch)
	if err != nil {
		return sum, err
	}
	if iss.rec.Kind != store.CAKindDCA {
		return sum, fmt.Errorf("%w: %s is not a batch Device CA", ErrRequest, req.Batch)
	}
	if iss.rec.Purpose != PurposeNew {
		return sum, fmt.Errorf("%w: batch %s is opened for %s certificates, not new devices", ErrRequest, req.Batch, iss.rec.Purpose)
	}
	details := map[string]any{"file_sha256": req.FileSHA256, "manufacturer": sum.Manufacturer,
		"devices": len(req.Devices), "certificates": countCSRs(req.Devices), "skip_bad": req.SkipBad}
	var full bool
	err = a.step(ctx, "ca.import.devices", req.Batch, details, func() (map[string]any, error) {
		devs, skipped, err := a.notInInventory(ctx, req.Devices, req.SkipBad)
		if err != nil {
			return nil, err
		}
		sum.Skipped = skipped
		need := countCSRs(devs)
		rec, err := a.st.CA(ctx, req.Batch)
		if err != nil {
			return nil, fmt.Errorf("ca: batch %s: %w", req.Batch, err)
		}
		if rec.Quota > 0 && rec.Issued+int64(need) > rec.Quota {
			return nil, fmt.Errorf("%w: the file needs %d certificates (%d devices), batch %s has %d left (quota %d, issued %d); nothing issued",
				ErrRequest, need, len(devs), req.Batch, rec.Quota-rec.Issued, rec.Quota, rec.Issued)
		}
		if len(devs) > 0 {
			sum.FirstEUI = devs[0].EUI.String()
		}
		// Certificates of device i go at offsets[i] in its chunk's slices.
		offsets := make([]int, len(devs)+1)
		for i, d := range devs {
			offsets[i+1] = offsets[i] + len(d.CSRs)
		}
		full, err = a.chunked(ctx, iss, len(devs), req.Chunk,
			func(first, n int) int64 { return int64(offsets[first+n] - offsets[first]) },
			func(first, n int) ([]store.Certificate, []store.OCSPResponse, error) {
				return a.importChunk(ctx, iss, req.Workers, devs[first:first+n], offsets[first:first+n+1])
			},
			func(first, n int, recs []store.Certificate) error {
				done := first + n
				sum.Devices, sum.Certificates = done, offsets[done]
				sum.LastEUI = devs[done-1].EUI.String()
				if req.Progress != nil {
					req.Progress(done, len(devs))
				}
				if req.Stored != nil {
					return req.Stored(recs)
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
		return map[string]any{"file_sha256": req.FileSHA256, "manufacturer": sum.Manufacturer, "devices": sum.Devices,
			"certificates": sum.Certificates, "skipped": len(sum.Skipped), "first_eui": sum.FirstEUI, "last_eui": sum.LastEUI}, nil
	})
	sum.Elapsed = time.Since(start)
	if err != nil {
		return sum, err
	}
	if full {
		if err := a.CloseBatch(ctx, req.Batch, "quota reached"); err != nil && !errors.Is(err, ErrBatchClosed) {
			return sum, fmt.Errorf("ca: closing batch %s at its quota: %w", req.Batch, err)
		}
		sum.BatchClosed = true
	}
	return sum, nil
}

// checkImport re-checks what the file reader checked, since the requests
// reach the CA through a type anyone can fill: device requests naming
// their device, at most one per usage, no device twice.
func checkImport(devs []ImportDevice) error {
	if len(devs) == 0 {
		return fmt.Errorf("%w: no devices to import", ErrRequest)
	}
	seen := make(map[smki.EUI]int, len(devs))
	for _, d := range devs {
		if first, dup := seen[d.EUI]; dup {
			return fmt.Errorf("%w: line %d: device %s listed twice (first on line %d)", ErrRequest, d.Line, d.EUI, first)
		}
		seen[d.EUI] = d.Line
		if len(d.CSRs) == 0 {
			return fmt.Errorf("%w: line %d: device %s has no request", ErrRequest, d.Line, d.EUI)
		}
		usages := map[Usage]bool{}
		for _, c := range d.CSRs {
			switch {
			case c == nil || c.Kind != smki.KindDevice || c.PublicKey == nil:
				return fmt.Errorf("%w: line %d: device %s: not a device request", ErrCSR, d.Line, d.EUI)
			case c.EUI != d.EUI:
				return fmt.Errorf("%w: line %d: device %s: a request for %s", ErrCSR, d.Line, d.EUI, c.EUI)
			case usages[usageOf(c.KeyUsage)]:
				return fmt.Errorf("%w: line %d: device %s: two %s requests", ErrCSR, d.Line, d.EUI, usageOf(c.KeyUsage))
			}
			usages[usageOf(c.KeyUsage)] = true
		}
	}
	return nil
}

func countCSRs(devs []ImportDevice) int {
	n := 0
	for _, d := range devs {
		n += len(d.CSRs)
	}
	return n
}

// notInInventory returns the devices that hold no unrevoked device
// certificate of a usage they ask for. A device that does is refused with
// ErrExists, or with skip returned among the skipped.
func (a *Authority) notInInventory(ctx context.Context, devs []ImportDevice, skip bool) ([]ImportDevice, []ImportSkip, error) {
	out := make([]ImportDevice, 0, len(devs))
	var skipped []ImportSkip
	for _, d := range devs {
		have, err := a.st.FindCertificates(ctx, store.CertQuery{EUI: d.EUI.String(), Kind: store.KindDevice})
		if err != nil {
			return nil, nil, fmt.Errorf("ca: looking up device %s in the inventory: %w", d.EUI, err)
		}
		reason := ""
		for _, c := range d.CSRs {
			u := usageOf(c.KeyUsage)
			for _, h := range have {
				if h.Usage == string(u) {
					reason = fmt.Sprintf("already holds a %s device certificate (%s serial %X)", u, h.CA, h.Serial)
					break
				}
			}
			if reason != "" {
				break
			}
		}
		switch {
		case reason == "":
			out = append(out, d)
		case skip:
			skipped = append(skipped, ImportSkip{Line: d.Line, EUI: d.EUI.String(), Reason: reason})
		default:
			return nil, nil, fmt.Errorf("%w: line %d: device %s %s; nothing issued", ErrExists, d.Line, d.EUI, reason)
		}
	}
	return out, skipped, nil
}

// importChunk signs the requests of devs with the worker pool and returns
// their records and first OCSP responses in device and request order;
// offsets[i]-offsets[0] is where device i's certificates start.
func (a *Authority) importChunk(ctx context.Context, iss *issuer, workers int, devs []ImportDevice, offsets []int) ([]store.Certificate, []store.OCSPResponse, error) {
	n := offsets[len(devs)] - offsets[0]
	recs := make([]store.Certificate, n)
	resps := make([]store.OCSPResponse, n)
	err := parallel(ctx, workers, len(devs), func(i int) error {
		d := devs[i]
		for j, c := range d.CSRs {
			u := usageOf(c.KeyUsage)
			t, err := deviceTemplate(c.PublicKey, c.HWType, d.EUI, u, a.now())
			if err != nil {
				return fmt.Errorf("line %d: device %s %s: %w", d.Line, d.EUI, u, err)
			}
			is, err := a.sign(ctx, iss, nil, t)
			if err != nil {
				return fmt.Errorf("line %d: device %s %s: %w", d.Line, d.EUI, u, err)
			}
			resp, err := a.signOCSP(iss.ocspSigner(), is.record)
			if err != nil {
				return fmt.Errorf("line %d: device %s %s: %w", d.Line, d.EUI, u, err)
			}
			k := offsets[i] - offsets[0] + j
			recs[k], resps[k] = is.record, resp
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return recs, resps, nil
}

// SignerCertificate checks an organisation certificate offered as the
// signer of a provisioning file: it must validate to the store's SMKI root
// at the CA's clock (smki.VerifyPath, strict, with the published CRLs) and
// be unrevoked in the store. der is the certificate (PEM or DER); nil looks
// up the newest unrevoked digital-signing organisation certificate of eui
// in the store instead. Whether it may sign is the caller's check
// (provision.CheckSigner).
func (a *Authority) SignerCertificate(ctx context.Context, der []byte, eui smki.EUI) (*smki.Certificate, error) {
	if der == nil {
		recs, err := a.st.FindCertificates(ctx, store.CertQuery{EUI: eui.String(), Kind: store.KindOrg, Usage: string(UsageDS)})
		if err != nil {
			return nil, fmt.Errorf("ca: looking up organisation certificates of %s: %w", eui, err)
		}
		var newest *store.Certificate
		for i, r := range recs {
			if newest == nil || r.NotBefore.After(newest.NotBefore) || (r.NotBefore.Equal(newest.NotBefore) && r.ID > newest.ID) {
				newest = &recs[i]
			}
		}
		if newest == nil {
			return nil, fmt.Errorf("%w: no unrevoked digital-signing organisation certificate of %s in the store", ErrNotFound, eui)
		}
		der = newest.DER
	}
	raw, err := DecodePEMOrDER(der, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := smki.ParseCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: signer certificate: %w", ErrRequest, err)
	}
	opts, err := VerifyOptions(ctx, a.st, a.now())
	if err != nil {
		return nil, err
	}
	opts.Strict = true
	if _, err := smki.VerifyPath(c, opts); err != nil {
		return nil, fmt.Errorf("%w: signer certificate %s (serial %X) does not validate to this SMKI: %w", ErrRequest, c.EUI, c.SerialNumber, err)
	}
	recs, err := a.st.FindCertificates(ctx, store.CertQuery{EUI: c.EUI.String(), Serial: c.SerialNumber.Bytes(), IncludeRevoked: true})
	if err != nil {
		return nil, fmt.Errorf("ca: looking up certificate %X: %w", c.SerialNumber, err)
	}
	for _, r := range recs {
		if r.Kind == store.KindOrg && !r.RevokedAt.IsZero() {
			return nil, fmt.Errorf("%w: signer certificate %s (serial %X) was revoked at %s", ErrRequest, c.EUI, c.SerialNumber, r.RevokedAt.UTC().Format(time.RFC3339))
		}
	}
	return c, nil
}

// CheckNewDevice refuses, with ErrExists, a device CSR whose device already
// holds an unrevoked device certificate of the usage it asks for: the
// inventory check of ImportDevices, for single requests from manufacturers,
// so that no one certifies a second key for a device in service.
func (a *Authority) CheckNewDevice(ctx context.Context, csr []byte) error {
	der, err := DecodePEMOrDER(csr, "CERTIFICATE REQUEST")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCSR, err)
	}
	r, err := parseCSR(der)
	if err != nil {
		return err
	}
	if r.Kind != smki.KindDevice {
		return fmt.Errorf("%w: not a device request (the subject must be empty)", ErrCSR)
	}
	_, _, err = a.notInInventory(ctx, []ImportDevice{{EUI: r.EUI, CSRs: []*smki.CSR{r}}}, false)
	return err
}
