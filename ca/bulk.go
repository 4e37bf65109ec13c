package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// BulkRequest asks for simulated devices: for each, a DS and a KA key pair
// and their device certificates from a batch Device CA.
type BulkRequest struct {
	Batch string
	Count int
	// OutDir receives one file per device and usage, <EUI>-ds.pem and
	// <EUI>-ka.pem, each holding the PKCS#8 private key and the certificate
	// (mode 0600; existing files are never overwritten). Empty: keys are
	// not kept (certificates are still stored).
	OutDir string
	// FirstEUI is the EUI-64 of the first device; the others follow
	// consecutively. Zero: F0-00-00-00-00-00-00-01 plus the devices the
	// batch already issued, so repeated runs do not collide.
	FirstEUI smki.EUI
	// HWType is the hwType of the hardwareModuleName (default: the
	// metertrust reference meter).
	HWType x509.OID
	// Workers is the number of signing goroutines (default GOMAXPROCS).
	Workers int
	// Chunk is the number of devices reserved, signed and stored together
	// (default 256). Memory use is bounded by it, not by Count.
	Chunk int
	// Progress, when set, is called after each chunk with the devices done.
	Progress func(done, total int)
}

// BulkSummary reports a bulk run.
type BulkSummary struct {
	Batch        string        `json:"batch"`
	Devices      int           `json:"devices"`
	Certificates int           `json:"certificates"`
	FirstEUI     string        `json:"first_eui,omitempty"`
	LastEUI      string        `json:"last_eui,omitempty"`
	OutDir       string        `json:"out_dir,omitempty"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	BatchClosed  bool          `json:"batch_closed"`
}

// IssueDevices issues req.Count simulated devices (two certificates each)
// from a batch, streaming: each chunk reserves its quota, is signed by a
// small worker pool (each certificate with its first OCSP response),
// written to the out directory and stored (the certificates in one
// transaction, then their OCSP responses in another) before the next
// starts. Device i always gets EUI FirstEUI+i
// and its files, whatever the scheduling. When the batch's quota is used up
// the batch is closed and its key destroyed. On error the summary says how
// many devices were completed.
func (a *Authority) IssueDevices(ctx context.Context, req BulkRequest) (BulkSummary, error) {
	start := time.Now()
	sum := BulkSummary{Batch: req.Batch, OutDir: req.OutDir}
	if req.Count <= 0 {
		return sum, fmt.Errorf("%w: device count %d: must be positive", ErrRequest, req.Count)
	}
	if req.Workers <= 0 {
		req.Workers = runtime.GOMAXPROCS(0)
	}
	if req.Chunk <= 0 {
		req.Chunk = 256
	}
	if b, _ := req.HWType.MarshalBinary(); len(b) == 0 {
		req.HWType = smki.OIDHWTypeReferenceMeter
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
	if req.FirstEUI.IsZero() {
		rec, err := a.st.CA(ctx, req.Batch)
		if err != nil {
			return sum, fmt.Errorf("ca: batch %s: %w", req.Batch, err)
		}
		req.FirstEUI = euiAdd(smki.EUI{0xF0, 0, 0, 0, 0, 0, 0, 1}, uint64(rec.Issued/2))
	}
	if req.OutDir != "" {
		if err := os.MkdirAll(req.OutDir, 0o700); err != nil {
			return sum, fmt.Errorf("ca: creating %s: %w", req.OutDir, err)
		}
	}
	sum.FirstEUI = req.FirstEUI.String()
	var full bool
	err = a.step(ctx, "ca.issue.devices", req.Batch, map[string]any{"count": req.Count, "first_eui": sum.FirstEUI}, func() (map[string]any, error) {
		var err error
		full, err = a.chunked(ctx, iss, req.Count, req.Chunk,
			func(_, n int) int64 { return int64(2 * n) },
			func(first, n int) ([]store.Certificate, []store.OCSPResponse, error) {
				return a.bulkChunk(ctx, iss, req, first, n)
			},
			func(first, n int, _ []store.Certificate) error {
				done := first + n
				sum.Devices, sum.Certificates = done, 2*done
				sum.LastEUI = euiAdd(req.FirstEUI, uint64(done-1)).String()
				if req.Progress != nil {
					req.Progress(done, req.Count)
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
		return map[string]any{"devices": sum.Devices, "certificates": sum.Certificates, "last_eui": sum.LastEUI}, nil
	})
	sum.Elapsed = time.Since(start)
	a.metrics.issued("ca.issue.devices", "issued", sum.Certificates)
	if err != nil {
		a.metrics.issued("ca.issue.devices", issueOutcome(err), 1)
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

// chunked is the streaming pipeline of the bulk paths. Units (devices)
// [0, total) go in chunks of size: for each chunk in turn it reserves the
// chunk's certificates (certs) from the batch's quota, signs them (sign),
// and hands them to a goroutine that stores the certificates in one
// transaction and their OCSP responses in another, then calls stored.
// Storing one chunk overlaps signing the next, so at most two chunks are in
// memory. It reports whether the last reservation used up the quota.
func (a *Authority) chunked(ctx context.Context, iss *issuer, total, size int,
	certs func(first, n int) int64,
	sign func(first, n int) ([]store.Certificate, []store.OCSPResponse, error),
	stored func(first, n int, recs []store.Certificate) error) (bool, error) {
	type chunk struct {
		recs     []store.Certificate
		resps    []store.OCSPResponse
		first, n int
	}
	toStore := make(chan chunk, 1)
	done := make(chan error, 1)
	var failed atomic.Bool
	go func() {
		var err error
		for c := range toStore {
			if err != nil {
				continue
			}
			if err = a.st.PutCertificates(ctx, c.recs...); err != nil {
				err = fmt.Errorf("ca: storing devices %d-%d: %w", c.first, c.first+c.n-1, err)
				failed.Store(true)
				continue
			}
			if err = a.st.PutOCSPResponses(ctx, c.resps...); err != nil {
				err = fmt.Errorf("ca: storing the OCSP responses of devices %d-%d: %w", c.first, c.first+c.n-1, err)
				failed.Store(true)
				continue
			}
			if err = stored(c.first, c.n, c.recs); err != nil {
				failed.Store(true)
			}
		}
		done <- err
	}()
	var full bool
	var signErr error
	iss.inflight.RLock()
	defer iss.inflight.RUnlock()
	for first := 0; first < total && !failed.Load(); {
		n := min(size, total-first)
		issued, err := a.reserve(ctx, iss, certs(first, n))
		if err != nil {
			signErr = err
			break
		}
		full = iss.rec.Quota > 0 && issued == iss.rec.Quota
		recs, resps, err := sign(first, n)
		if err != nil {
			signErr = err
			break
		}
		toStore <- chunk{recs: recs, resps: resps, first: first, n: n}
		first += n
	}
	close(toStore)
	return full, errors.Join(signErr, <-done)
}

// parallel runs fn(0), ..., fn(n-1) on up to workers goroutines and returns
// the context's error or the errors of fn, joined.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	errs := make([]error, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				errs[i] = fn(i)
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// bulkChunk signs devices [first, first+n) with the worker pool and returns
// their records and their first OCSP responses in device order (DS then KA).
func (a *Authority) bulkChunk(ctx context.Context, iss *issuer, req BulkRequest, first, n int) ([]store.Certificate, []store.OCSPResponse, error) {
	recs := make([]store.Certificate, 2*n)
	resps := make([]store.OCSPResponse, 2*n)
	err := parallel(ctx, req.Workers, n, func(i int) error {
		eui := euiAdd(req.FirstEUI, uint64(first+i))
		for j, u := range []Usage{UsageDS, UsageKA} {
			rec, resp, err := a.bulkOne(ctx, iss, req, eui, u)
			if err != nil {
				return fmt.Errorf("device %s %s: %w", eui, u, err)
			}
			recs[2*i+j], resps[2*i+j] = rec, resp
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return recs, resps, nil
}

func (a *Authority) bulkOne(ctx context.Context, iss *issuer, req BulkRequest, eui smki.EUI, u Usage) (store.Certificate, store.OCSPResponse, error) {
	k, err := custody.Generate(a.rand)
	if err != nil {
		return store.Certificate{}, store.OCSPResponse{}, fmt.Errorf("ca: generating device key: %w", err)
	}
	t, err := deviceTemplate(k.Public().(*ecdsa.PublicKey), req.HWType, eui, u, a.now())
	if err != nil {
		return store.Certificate{}, store.OCSPResponse{}, err
	}
	is, err := a.sign(ctx, iss, nil, t)
	if err != nil {
		return store.Certificate{}, store.OCSPResponse{}, err
	}
	resp, err := a.signOCSP(iss.ocspSigner(), is.record)
	if err != nil {
		return store.Certificate{}, store.OCSPResponse{}, err
	}
	if req.OutDir != "" {
		buf, err := k.MarshalPEM()
		if err != nil {
			return store.Certificate{}, store.OCSPResponse{}, fmt.Errorf("ca: encoding device key: %w", err)
		}
		buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.der})...)
		err = WriteNewFile(filepath.Join(req.OutDir, eui.String()+"-"+string(u)+".pem"), buf, 0o600)
		clear(buf)
		if err != nil {
			return store.Certificate{}, store.OCSPResponse{}, err
		}
	}
	return is.record, resp, nil
}

// euiAdd returns e + n, as a 64-bit big-endian number.
func euiAdd(e smki.EUI, n uint64) smki.EUI {
	var out smki.EUI
	binary.BigEndian.PutUint64(out[:], binary.BigEndian.Uint64(e[:])+n)
	return out
}
